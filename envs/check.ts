/**
 * The environment checker (in the spirit of Gymnasium's check_env): runs an
 * environment through rewardlab's contract and says, check by check, what
 * holds and what does not. Plug-in authors call it on their env (or run
 * `rewardlab check-env <id>`); test/envs/conformance.test.ts runs it over
 * every registered environment.
 *
 *   checkEnv(() => make("IcyPond-v0"))       every instance check
 *   checkRegisteredEnv("IcyPond-v0")         + registration checks, every variant
 */
import { type Env, type StepResult, contains, spaceSize } from "./core.ts";
import { OrderError } from "./errors.ts";
import { make, registration } from "./registry.ts";
import { Rng } from "./rng.ts";

export interface EnvCheck {
  /** Short name of what was checked ("determinism", "spaces", ...). */
  name: string;
  /** True: holds; false: broken (see message); null: skipped (see message). */
  ok: boolean | null;
  /** What went wrong (or why it was skipped), with the step where it showed. */
  message?: string;
}

export interface EnvCheckReport {
  env: string;
  /** Every check passed or was skipped. */
  ok: boolean;
  checks: EnvCheck[];
}

export interface CheckOptions {
  /** Random steps per trace (default 300). */
  steps?: number;
  /** Variant name to prefix check names with (checkRegisteredEnv sets it). */
  label?: string;
}

/** Doc sections every environment's spec.doc carries (Gymnasium's fixed doc block, plus Performance). */
export const DOC_SECTIONS = ["Description", "Actions", "Observations", "Rewards", "Performance", "Episode end", "Variants"];

class CheckFailure extends Error {}

function expect(cond: boolean, message: string): void {
  if (!cond) throw new CheckFailure(message);
}

function run(name: string, fn: () => void): EnvCheck {
  try {
    fn();
    return { name, ok: true };
  } catch (e) {
    const m =
      e instanceof CheckFailure ? e.message : `threw ${(e as Error).name ?? "Error"}: ${String((e as Error).message ?? e).split("\n")[0]}`;
    return { name, ok: false, message: m };
  }
}

interface Trace {
  obs: number[][];
  rewards: number[];
  perf: number[];
  events: string[][];
  ends: string[];
  keys: number[];
}

/** `n` seeded-random steps with auto-reset (unseeded resets continue the env's own RNG). */
function trace(env: Env, n: number, actionSeed: number, resetSeed?: number): Trace {
  const t: Trace = { obs: [], rewards: [], perf: [], events: [], ends: [], keys: [] };
  const rng = new Rng(actionSeed);
  if (resetSeed !== undefined) t.obs.push(Array.from(env.reset({ seed: resetSeed }).obs));
  for (let i = 0; i < n; i++) {
    const r: StepResult = env.step(rng.int(env.actionSpace.n));
    t.obs.push(Array.from(r.obs));
    t.rewards.push(r.reward);
    t.perf.push(r.info.performance);
    t.events.push([...r.info.events]);
    t.ends.push(`${r.terminated}/${r.truncated}`);
    t.keys.push(env.stateKey());
    if (r.terminated || r.truncated) t.obs.push(Array.from(env.reset().obs));
  }
  return t;
}

/** Where two traces first differ, for a message ("step 17: rewards differ (1 vs 0)"). */
function firstDifference(a: Trace, b: Trace): string | null {
  for (const k of ["obs", "rewards", "perf", "events", "ends", "keys"] as const) {
    const x = a[k];
    const y = b[k];
    for (let i = 0; i < Math.max(x.length, y.length); i++) {
      const u = JSON.stringify(x[i]);
      const v = JSON.stringify(y[i]);
      if (u !== v) return `step ${i}: ${k} differ (${u?.slice(0, 40)} vs ${v?.slice(0, 40)})`;
    }
  }
  return null;
}

/**
 * `n` steps of seeded-random actions with auto-reset, after a reset with
 * `resetSeed` (none if undefined); `before(i)` runs before step i, `after(i, r)`
 * after it (before the auto-reset).
 */
function walk(
  env: Env,
  resetSeed: number | undefined,
  actionSeed: number,
  n: number,
  hooks: { before?: (i: number) => void; after?: (i: number, r: StepResult) => void } = {},
): void {
  if (resetSeed !== undefined) env.reset({ seed: resetSeed });
  const rng = new Rng(actionSeed);
  for (let i = 0; i < n; i++) {
    hooks.before?.(i);
    const r = env.step(rng.int(env.actionSpace.n));
    hooks.after?.(i, r);
    if (r.terminated || r.truncated) env.reset();
  }
}

/** One check of checkEnv: `env` is the instance under test, `fresh` makes new ones (null when given an instance), `n` steps per trace. */
interface InstanceCheck {
  name: string;
  /** Skipped without a factory. */
  needsFresh?: boolean;
  run: (env: Env, fresh: (() => Env) | null, n: number) => void;
}

function specAndDoc(env: Env): void {
  const spec = env.spec;
  expect(typeof spec.id === "string" && /-v\d+$/.test(spec.id), `spec.id "${spec.id}" should end in a version, like "MyEnv-v0"`);
  for (const s of DOC_SECTIONS) expect(spec.doc.includes(`## ${s}`), `spec.doc has no "## ${s}" section`);
  expect(spec.events.length > 0, "spec.events is empty: declare the event tags the env emits");
  expect(spec.maxEpisodeSteps > 0, "spec.maxEpisodeSteps must be positive");
  expect(spec.rewardRange[0] <= spec.rewardRange[1], "spec.rewardRange must be [low, high]");
}

function orderEnforced(_env: Env, fresh: (() => Env) | null): void {
  const e = fresh!();
  const thrown = (f: () => unknown) => {
    try {
      f();
    } catch (err) {
      return err;
    }
    return null;
  };
  expect(thrown(() => e.step(0)) instanceof OrderError, "step() before reset() must throw OrderError");
  expect(thrown(() => e.render()) instanceof OrderError, "render() before reset() must throw OrderError");
}

function deterministic(env: Env, fresh: (() => Env) | null, n: number): void {
  const a = trace(fresh ? fresh() : env, n, 1, 42);
  const b = trace(fresh ? fresh() : env, n, 1, 42);
  const diff = firstDifference(a, b);
  expect(diff === null, `reset({seed: 42}) twice gave different trajectories: ${diff}; draw all randomness from the seeded RNG`);
}

function spacesRewardsEvents(env: Env, _fresh: unknown, n: number): void {
  const { obs } = env.reset({ seed: 42 });
  expect(contains(env.observationSpace, obs), "the reset observation is outside observationSpace");
  walk(env, undefined, 9, n, {
    after: (i, r) => {
      expect(contains(env.observationSpace, r.obs), `step ${i}: observation outside observationSpace`);
      expect(Number.isFinite(r.reward), `step ${i}: reward ${r.reward} is not finite`);
      expect(Number.isFinite(r.info.performance), `step ${i}: info.performance ${r.info.performance} is not finite`);
      const [lo, hi] = env.spec.rewardRange;
      expect(r.reward >= lo - 1e-9 && r.reward <= hi + 1e-9, `step ${i}: reward ${r.reward} outside spec.rewardRange [${lo}, ${hi}]`);
      for (const ev of r.info.events) expect(env.spec.events.includes(ev), `step ${i}: event "${ev}" is not declared in spec.events`);
      const out = new Float32Array(r.obs.length + 3);
      env.writeObs(out, 3);
      expect(
        Array.from(out.subarray(3)).every((v, j) => v === r.obs[j]),
        `step ${i}: writeObs() disagrees with the observation step() returned`,
      );
    },
  });
}

function renderable(env: Env, _fresh: unknown, n: number): void {
  walk(env, 3, 4, Math.min(n, 30), {
    before: (i) => {
      const f = env.render();
      expect(JSON.stringify(JSON.parse(JSON.stringify(f))) === JSON.stringify(f), `step ${i}: the frame does not survive JSON`);
      expect(f.rows.length === f.height, `step ${i}: frame has ${f.rows.length} rows, height says ${f.height}`);
      for (const row of f.rows) {
        expect(row.length === f.width, `step ${i}: a frame row has ${row.length} cells, width says ${f.width}`);
        for (const ch of row) expect(typeof f.legend[ch] === "string", `step ${i}: character '${ch}' has no legend entry`);
      }
      expect(f.agent !== undefined && f.agent !== null, `step ${i}: the frame has no agent position`);
      expect(
        f.agent!.x >= 0 && f.agent!.x < f.width && f.agent!.y >= 0 && f.agent!.y < f.height,
        `step ${i}: the agent is outside the grid`,
      );
      const size = spaceSize(env.observationSpace);
      const cells = f.width * f.height;
      expect(
        size % cells === 0 || (size - 1) % cells === 0,
        `the observation size ${size} is not a multiple of the ${cells} cells (plus one)`,
      );
    },
  });
}

function snapshotRestore(env: Env, fresh: (() => Env) | null, n: number): void {
  walk(env, 5, 6, 37);
  const snap = structuredClone(env.snapshot());
  const key = env.stateKey();
  const first = trace(env, Math.min(n, 250), 7);
  env.restore(snap);
  expect(env.stateKey() === key, "stateKey() after restore() differs from before the snapshot");
  const again = firstDifference(first, trace(env, Math.min(n, 250), 7));
  expect(again === null, `after restore() the continuation differs: ${again}`);
  if (fresh) {
    const other = fresh();
    other.restore(snap);
    const moved = firstDifference(first, trace(other, Math.min(n, 250), 7));
    expect(moved === null, `restoring into a new instance continues differently: ${moved}`);
  }
}

function stableStateKey(env: Env, _fresh: unknown, n: number): void {
  walk(env, 8, 10, n, {
    before: (i) => {
      const key = env.stateKey();
      const f = env.render();
      expect(Number.isInteger(key) && key >= 0 && key < 2 ** 31, `step ${i}: stateKey() ${key} is not an integer in [0, 2^31)`);
      expect(key === env.stateKey(), `step ${i}: stateKey() changes between two calls`);
      if (env.cellOfKey && f.agent) {
        const cell = f.agent.y * f.width + f.agent.x;
        const said = env.cellOfKey(key);
        expect(said === cell, `step ${i}: cellOfKey(stateKey()) is ${said}, the agent's cell in render() is ${cell}`);
      }
    },
  });
}

function episodeEnds(env: Env): void {
  env.reset({ seed: 2 });
  const rng = new Rng(3);
  let steps = 0;
  for (;;) {
    const r = env.step(rng.int(env.actionSpace.n));
    steps++;
    if (r.terminated) break;
    if (r.truncated) {
      expect(steps === env.spec.maxEpisodeSteps, `truncated after ${steps} steps, spec.maxEpisodeSteps is ${env.spec.maxEpisodeSteps}`);
      break;
    }
    expect(steps <= env.spec.maxEpisodeSteps, `no end after spec.maxEpisodeSteps = ${env.spec.maxEpisodeSteps} steps`);
  }
}

/** checkEnv's checks, in the order they run. */
const INSTANCE_CHECKS: InstanceCheck[] = [
  { name: "spec and doc", run: specAndDoc },
  { name: "order (step and render before reset throw OrderError)", needsFresh: true, run: orderEnforced },
  { name: "determinism (same seed, same trajectory)", run: deterministic },
  { name: "spaces, rewards, events", run: spacesRewardsEvents },
  { name: "render (serialisable frame, agent inside the grid)", run: renderable },
  { name: "snapshot/restore (exact continuation, randomness included)", run: snapshotRestore },
  { name: "stateKey (stable integer; cellOfKey(stateKey) is the agent's cell)", run: stableStateKey },
  { name: "episode end (within spec.maxEpisodeSteps, truncated at the limit)", run: episodeEnds },
];

/**
 * Checks one environment against the contract. Given a factory, every check
 * runs (the order check and restoring into a new instance need fresh envs);
 * given an instance, the order check is reported as skipped and restoring
 * into a new instance is left out.
 */
export function checkEnv(target: Env | (() => Env), opts: CheckOptions = {}): EnvCheck[] {
  const fresh = typeof target === "function" ? target : null;
  const env = fresh ? fresh() : (target as Env);
  const n = opts.steps ?? 300;
  return INSTANCE_CHECKS.map((c) => {
    const name = opts.label ? `${opts.label}: ${c.name}` : c.name;
    if (c.needsFresh && !fresh) return { name, ok: null, message: "skipped: needs a fresh instance (pass a factory, () => make(id))" };
    return run(name, () => c.run(env, fresh, n));
  });
}

/**
 * Checks a registered environment: its registration (config schema, the
 * time limit make() adds, the did-you-mean for a misspelt id) and
 * checkEnv() on a fresh instance of every variant.
 */
export function checkRegisteredEnv(id: string, opts: Omit<CheckOptions, "label"> = {}): EnvCheckReport {
  const reg = registration(id);
  const checks: EnvCheck[] = [];
  checks.push(
    run("config schema (closed; variant enum with the first as default)", () => {
      const env = make(id);
      expect(env.spec.id === id, `make("${id}").spec.id is "${env.spec.id}"`);
      expect(JSON.stringify(env.spec.variants) === JSON.stringify(reg.variants), "spec.variants differ from the registration's variants");
      const schema = reg.configSchema as {
        properties?: { variant?: { enum?: string[]; default?: string } };
        additionalProperties?: boolean;
      };
      expect(schema.additionalProperties === false, "the config schema must set additionalProperties: false");
      expect(
        JSON.stringify(schema.properties?.variant?.enum) === JSON.stringify(reg.variants),
        "the config schema's variant enum must list the variants",
      );
      expect(schema.properties?.variant?.default === reg.variants[0], "the config schema's variant default must be the first variant");
      let refused = "";
      try {
        make(id, { nonsense: 1 });
      } catch (e) {
        refused = (e as Error).message;
      }
      expect(/nonsense/.test(refused), "make() accepted an unknown config key (or did not name it in the error)");
    }),
  );
  checks.push(
    run("unknown id names the closest", () => {
      const typo = id.slice(0, 2) + id.slice(3);
      let message = "";
      try {
        make(typo);
      } catch (e) {
        message = (e as Error).message;
      }
      expect(message.includes(id), `make("${typo}") should fail naming ${id}`);
    }),
  );
  checks.push(
    run("time limit (make() truncates, then refuses to step)", () => {
      let truncatedOnce = false;
      for (let a = 0; a < make(id).actionSpace.n; a++) {
        const env = make(id, {}, { maxEpisodeSteps: 1 });
        env.reset({ seed: 1 });
        const r = env.step(a);
        expect(r.truncated === !r.terminated, `with maxEpisodeSteps 1, action ${a} neither terminated nor truncated (or both)`);
        truncatedOnce ||= r.truncated;
        let refused = false;
        try {
          env.step(a);
        } catch (e) {
          refused = e instanceof OrderError;
        }
        expect(refused, "step() after the episode ended must throw OrderError");
      }
      expect(truncatedOnce, "no action led to truncation at a 1-step limit");
    }),
  );
  for (const variant of reg.variants) checks.push(...checkEnv(() => make(id, { variant }), { ...opts, label: `variant ${variant}` }));
  return { env: id, ok: checks.every((c) => c.ok !== false), checks };
}

/** The report as text: one line per check, failures with their message. */
export function formatEnvCheck(report: EnvCheckReport): string {
  const lines = report.checks.map(
    (c) => `${c.ok === true ? "ok  " : c.ok === null ? "skip" : "FAIL"}  ${c.name}${c.message ? `\n        ${c.message}` : ""}`,
  );
  const count = (ok: boolean | null) => report.checks.filter((c) => c.ok === ok).length;
  const skipped = count(null) ? `, ${count(null)} skipped` : "";
  lines.push(
    count(false) === 0
      ? `${report.env}: conforms (${count(true)} checks passed${skipped})`
      : `${report.env}: ${count(false)} of ${report.checks.length} checks FAILED (${count(true)} passed${skipped})`,
  );
  return lines.join("\n");
}
