/**
 * One conformance test over every registered environment (Gymnasium's
 * check_env, rewardlab's contract): determinism, spaces, order checks,
 * render, snapshot/restore, stateKey, time limit, spec and doc.
 */
import { describe, expect, it } from "vitest";
import {
  OrderError,
  Rng,
  UnknownIdError,
  contains,
  make,
  registered,
  type Env,
  type EnvRegistration,
  type StepResult,
} from "../../envs/index.ts";

interface Trace {
  obs: number[][];
  rewards: number[];
  perf: number[];
  events: string[][];
  ends: string[];
  keys: number[];
}

/** Runs `n` seeded-random steps with auto-reset (unseeded resets continue the env's own RNG). */
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

const envs = registered();

describe("registry", () => {
  it("has the built-in environments", () => {
    const ids = envs.map((r) => r.id);
    for (const id of ["BoatRace-v0", "CoastRunners-v0", "TamperGrid-v0", "GoalShift-v0", "TomatoWatering-v0", "AbsentSupervisor-v0"]) {
      expect(ids).toContain(id);
    }
  });

  it("names the closest id when an id is unknown", () => {
    expect(() => make("BoatRce-v0")).toThrow(UnknownIdError);
    expect(() => make("BoatRce-v0")).toThrow(/BoatRace-v0/);
  });
});

describe.each(envs.map((r) => [r.id, r] as [string, EnvRegistration]))("%s", (id, reg) => {
  it("has a spec with every doc section, events and a config schema whose default variant is the first", () => {
    const env = make(id);
    expect(env.spec.id).toBe(id);
    for (const s of ["Description", "Actions", "Observations", "Rewards", "Performance", "Episode end", "Variants"]) {
      expect(env.spec.doc).toContain(`## ${s}`);
    }
    expect(env.spec.events.length).toBeGreaterThan(0);
    expect(env.spec.variants).toEqual(reg.variants);
    const schema = reg.configSchema as { properties: { variant: { enum: string[]; default: string } }; additionalProperties: boolean };
    expect(schema.additionalProperties).toBe(false);
    expect(schema.properties.variant.enum).toEqual(reg.variants);
    expect(schema.properties.variant.default).toBe(reg.variants[0]);
    expect(() => make(id, { nonsense: 1 })).toThrow(/nonsense/);
  });

  it("names the closest id when the id is misspelt", () => {
    const typo = id.slice(0, 2) + id.slice(3);
    expect(() => make(typo)).toThrow(new RegExp(id));
  });

  it("throws OrderError on step before reset", () => {
    const env = make(id);
    expect(() => env.step(0)).toThrow(OrderError);
    expect(() => env.render()).toThrow(OrderError);
  });

  it.each(reg.variants)(
    "variant %s: is deterministic given the seed, keeps observations in their space, emits declared events",
    (variant) => {
      const a = trace(make(id, { variant }), 300, 1, 42);
      const b = trace(make(id, { variant }), 300, 1, 42);
      expect(b).toEqual(a);
      const env = make(id, { variant });
      const { obs } = env.reset({ seed: 42 });
      expect(contains(env.observationSpace, obs)).toBe(true);
      const rng = new Rng(9);
      for (let i = 0; i < 300; i++) {
        const r = env.step(rng.int(env.actionSpace.n));
        expect(contains(env.observationSpace, r.obs)).toBe(true);
        expect(Number.isFinite(r.reward) && Number.isFinite(r.info.performance)).toBe(true);
        expect(r.reward).toBeGreaterThanOrEqual(env.spec.rewardRange[0] - 1e-9);
        expect(r.reward).toBeLessThanOrEqual(env.spec.rewardRange[1] + 1e-9);
        for (const e of r.info.events) expect(env.spec.events).toContain(e);
        // writeObs agrees with the returned observation
        const out = new Float32Array(r.obs.length + 3);
        env.writeObs(out, 3);
        expect(Array.from(out.subarray(3))).toEqual(Array.from(r.obs));
        if (r.terminated || r.truncated) env.reset();
      }
    },
  );

  it.each(reg.variants)("variant %s: renders a JSON-serialisable frame matching the dimensions", (variant) => {
    const env = make(id, { variant });
    env.reset({ seed: 3 });
    const rng = new Rng(4);
    for (let i = 0; i < 30; i++) {
      const f = env.render();
      expect(JSON.parse(JSON.stringify(f))).toEqual(f);
      expect(f.rows.length).toBe(f.height);
      for (const row of f.rows) {
        expect(row.length).toBe(f.width);
        for (const ch of row) expect(f.legend[ch]).toBeTypeOf("string");
      }
      expect(f.agent!.x).toBeGreaterThanOrEqual(0);
      expect(f.agent!.x).toBeLessThan(f.width);
      expect(f.agent!.y).toBeGreaterThanOrEqual(0);
      expect(f.agent!.y).toBeLessThan(f.height);
      const size = env.observationSpace.shape[0]!;
      expect(size % (f.width * f.height) === 0 || (size - 1) % (f.width * f.height) === 0).toBe(true);
      const r = env.step(rng.int(env.actionSpace.n));
      if (r.terminated || r.truncated) env.reset();
    }
  });

  it.each(reg.variants)("variant %s: snapshot/restore reproduces the continuation exactly, randomness included", (variant) => {
    const env = make(id, { variant });
    env.reset({ seed: 5 });
    const rng = new Rng(6);
    for (let i = 0; i < 37; i++) {
      const r = env.step(rng.int(env.actionSpace.n));
      if (r.terminated || r.truncated) env.reset();
    }
    const snap = structuredClone(env.snapshot());
    const key = env.stateKey();
    const first = trace(env, 250, 7);
    env.restore(snap);
    expect(env.stateKey()).toBe(key);
    const second = trace(env, 250, 7);
    expect(second).toEqual(first);
    // restoring into a fresh env works too
    const other = make(id, { variant });
    other.restore(snap);
    expect(trace(other, 250, 7)).toEqual(first);
  });

  it.each(reg.variants)("variant %s: stateKey is a stable integer, and cellOfKey(stateKey) is the agent's cell", (variant) => {
    const env = make(id, { variant });
    env.reset({ seed: 8 });
    const rng = new Rng(10);
    for (let i = 0; i < 300; i++) {
      const key = env.stateKey();
      const f = env.render();
      expect(Number.isInteger(key)).toBe(true);
      expect(key).toBeGreaterThanOrEqual(0);
      expect(key).toBeLessThan(2 ** 31);
      expect(key).toBe(env.stateKey());
      expect(env.cellOfKey!(key)).toBe(f.agent!.y * f.width + f.agent!.x);
      const r = env.step(rng.int(env.actionSpace.n));
      if (r.terminated || r.truncated) env.reset();
    }
  });

  it("knows how it was made: clone() builds a twin (a new time limit if asked), stepsLeft() counts down", () => {
    const variant = reg.variants.at(-1)!;
    const env = make(id, { variant }, { reward: "negated" });
    expect(env.origin).toMatchObject({ id, reward: "negated", maxEpisodeSteps: reg.maxEpisodeSteps, config: { variant } });
    const twin = env.clone!({ maxEpisodeSteps: 3 });
    expect(twin.origin).toMatchObject({ id, reward: "negated", maxEpisodeSteps: 3, config: env.origin!.config });
    const a0 = env.reset({ seed: 5 });
    const b0 = twin.reset({ seed: 5 });
    expect([...b0.obs]).toEqual([...a0.obs]);
    expect(env.stepsLeft!()).toBe(reg.maxEpisodeSteps);
    expect(twin.stepsLeft!()).toBe(3);
    const a = env.step(1);
    const b = twin.step(1);
    expect(b.reward).toBe(a.reward);
    expect([...b.obs]).toEqual([...a.obs]);
    expect(env.stepsLeft!()).toBe(reg.maxEpisodeSteps - 1);
    expect(twin.stepsLeft!()).toBe(2);
  });

  it("truncates (never terminates) at the time limit", () => {
    let truncatedOnce = false;
    for (let a = 0; a < make(id).actionSpace.n; a++) {
      const env = make(id, {}, { maxEpisodeSteps: 1 });
      env.reset({ seed: 1 });
      const r = env.step(a);
      expect(r.truncated).toBe(!r.terminated);
      truncatedOnce ||= r.truncated;
      expect(() => env.step(a)).toThrow(OrderError);
    }
    expect(truncatedOnce).toBe(true);
    const env = make(id);
    env.reset({ seed: 2 });
    const rng = new Rng(3);
    let steps = 0;
    for (;;) {
      const r = env.step(rng.int(env.actionSpace.n));
      steps++;
      if (r.terminated) break;
      if (r.truncated) {
        expect(steps).toBe(env.spec.maxEpisodeSteps);
        break;
      }
    }
    expect(steps).toBeLessThanOrEqual(env.spec.maxEpisodeSteps);
  });
});
