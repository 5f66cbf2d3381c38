/**
 * Sweep specs: a grid (or list) over environments, variants, agents, agent
 * configs, seeds and step budgets, plus probes over seeds. Each job gets a
 * stable key, the hash of its resolved config and seed, so re-running a
 * sweep skips what the store already has and a retried job never counts twice.
 */
import { createHash } from "node:crypto";
import { BACKENDS } from "../../agents/shared/backendnames.ts";
import { type Static, type TSchema, Type } from "@sinclair/typebox";
import { StringEnum, cloneInput, validate } from "../../envs/schema.ts";
import { ValidationError } from "../../envs/errors.ts";
import {
  type RunRequest,
  agentNameSchema,
  envIdSchema,
  evalEpisodesSchema,
  resolveRunSpec,
  seedSchema,
  stepsSchema,
  variantSchema,
} from "../runspec.ts";
import type { RunSpec } from "../events.ts";
import { planProbe, type ProbePlan, type ProbeRequest, probes } from "../probes/index.ts";
import { probeSpecSchema } from "../probes/request.ts";
import type { SweepJob } from "../jobs.ts";
import { LIMITS, LimitError } from "../limits.ts";

const list = <T extends TSchema>(items: T, min = 1) => Type.Array(items, { minItems: min, maxItems: 1000 });

/** A sweep as a user writes it (CLI file, POST /api/sweeps); SweepSpec is derived from this one declaration. */
export const sweepSpecSchema = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 100 }),
    /** Cartesian product of every list; one run per combination and seed. */
    grid: Type.Optional(
      Type.Object(
        {
          env: list(envIdSchema),
          variant: Type.Optional(list(variantSchema)),
          agent: list(agentNameSchema),
          config: Type.Optional(list(Type.Record(Type.String(), Type.Unknown()))),
          seeds: Type.Union([Type.Integer({ minimum: 1, maximum: 10000, description: "Seeds 0 .. N-1" }), list(seedSchema)]),
          steps: list(stepsSchema),
          evalEpisodes: Type.Optional(evalEpisodesSchema),
        },
        { additionalProperties: false },
      ),
    ),
    /** Runs listed one by one, each a run request (checked, with its env and agent configs, when the sweep is expanded). */
    runs: Type.Optional(list(Type.Unsafe<RunRequest>({ type: "object" }))),
    probes: Type.Optional(list(probeSpecSchema)),
    /** Backend for every job (cpu: bit-identical results wherever a job runs). */
    backend: Type.Optional(StringEnum(BACKENDS)),
  },
  { additionalProperties: false, anyOf: [{ required: ["grid"] }, { required: ["runs"] }, { required: ["probes"] }] },
);
export type SweepSpec = Static<typeof sweepSpecSchema>;

export type { SweepJob } from "../jobs.ts";

export interface ExpandedSweep {
  id: string;
  spec: SweepSpec;
  jobs: SweepJob[];
  probePlans: ProbePlan[];
}

/** JSON with object keys sorted at every depth: equal values hash equally. */
export function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value && typeof value === "object") {
    return `{${Object.keys(value as object)
      .sort()
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(value);
}

export function keyOf(value: unknown): string {
  return keyOfCanonical(canonical(value));
}

/** keyOf of a value given its canonical text. */
function keyOfCanonical(text: string): string {
  return createHash("sha256").update(text).digest("hex").slice(0, 32);
}

/** Stands for the seed in a grid combination's canonical text (a JSON string no seed can be). */
const SEED_MARK = "\u0000seed\u0000";

/** Validates the spec (naming the bad field) and expands it into keyed jobs. */
export function expandSweep(input: unknown, probeExtras: ProbeExtras = {}): ExpandedSweep {
  const p = planExpansion(input, probeExtras);
  for (const step of p.work) step();
  return p.finish();
}

/**
 * expandSweep in slices of about `sliceMs` of work, yielding to the event
 * loop between them: a 10,000-job sweep costs a few hundred ms of CPU to
 * resolve, which a server must not spend in one piece. Rejects with the
 * signal's reason once it aborts.
 */
export async function expandSweepAsync(input: unknown, opts: { sliceMs?: number; signal?: AbortSignal } = {}): Promise<ExpandedSweep> {
  const p = planExpansion(input);
  let slice = performance.now();
  for (const step of p.work) {
    step();
    if (performance.now() - slice > (opts.sliceMs ?? 10)) {
      await new Promise((r) => setImmediate(r));
      opts.signal?.throwIfAborted();
      slice = performance.now();
    }
  }
  return p.finish();
}

/** What a probe's jobs take from the command line rather than the spec: where to save the trained policies (ProbeRequest.saveAgents). */
export type ProbeExtras = Pick<ProbeRequest, "saveAgents">;

/** The spec validated and sized, and one step per job to resolve (each cheap), then the sweep. */
function planExpansion(input: unknown, probeExtras: ProbeExtras = {}): { work: (() => void)[]; finish: () => ExpandedSweep } {
  const spec = validate<SweepSpec>(sweepSpecSchema, cloneInput(input, "sweep spec"), "sweep spec");
  checkSweepSize(spec);
  const out = new SweepJobs(spec.backend ?? null, probeExtras);
  const work: (() => void)[] = [];
  if (spec.grid) for (const { req, where } of gridRuns(spec.grid)) work.push(() => out.addRun(req, where, true));
  (spec.runs ?? []).forEach((r, i) => work.push(() => out.addRun(r, `/runs/${i}`)));
  (spec.probes ?? []).forEach((p, i) => work.push(() => out.addProbe(p, i)));
  return { work, finish: () => out.sweep(spec) };
}

/** A grid's run requests, one per combination and seed, each with where it comes from in the spec. */
function* gridRuns(g: NonNullable<SweepSpec["grid"]>): Generator<{ req: RunRequest; where: string }> {
  const seeds = typeof g.seeds === "number" ? Array.from({ length: g.seeds }, (_, i) => i) : g.seeds;
  for (const env of g.env)
    for (const variant of g.variant ?? [undefined])
      for (const agent of g.agent)
        for (const [ci, config] of (g.config ?? [{}]).entries())
          for (const steps of g.steps)
            for (const seed of seeds) {
              const req: RunRequest = {
                env,
                agent,
                config,
                steps,
                seed,
                ...(variant ? { variant } : {}),
                ...(g.evalEpisodes !== undefined ? { evalEpisodes: g.evalEpisodes } : {}),
              };
              yield { req, where: `/grid (env ${env}, agent ${agent}, config ${ci})` };
            }
}

/** A sweep's keyed jobs as they are resolved, each key once, in the order they were added, and its probes' plans. */
class SweepJobs {
  private readonly jobs: SweepJob[] = [];
  private readonly seen = new Set<string>();
  private readonly probePlans: ProbePlan[] = [];
  /**
   * A grid's runs differ by seed alone within one combination: resolved
   * (validated, defaults filled) and written canonically once per
   * combination; each seed's key is that text with its seed put in.
   */
  private readonly resolved = new Map<string, { rs: RunSpec; text: [string, string] }>();

  constructor(
    private readonly backend: NonNullable<SweepSpec["backend"]> | null,
    private readonly probeExtras: ProbeExtras = {},
  ) {}

  private add(key: string, job: () => SweepJob): void {
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.jobs.push(job());
  }

  /** Resolves a run request (errors name `where`) and adds its job; `seedOnly`: a grid run, resolved once per combination. */
  addRun(req: RunRequest, where: string, seedOnly = false): void {
    const combination = seedOnly ? canonical({ ...req, seed: null }) : "";
    let known = seedOnly ? this.resolved.get(combination) : undefined;
    let rs: RunSpec;
    try {
      rs = known ? { ...known.rs, seed: req.seed! } : resolveRunSpec({ recordEveryMs: 0, checkpointEvery: 0, ...req });
    } catch (e) {
      throw Object.assign(e as Error, { message: `sweep spec ${where}: ${(e as Error).message}` });
    }
    if (seedOnly && !known) {
      const marked = canonical({ kind: "run", spec: { ...rs, seed: SEED_MARK }, backend: this.backend });
      const at = marked.indexOf(JSON.stringify(SEED_MARK));
      known = { rs, text: [marked.slice(0, at), marked.slice(at + JSON.stringify(SEED_MARK).length)] };
      this.resolved.set(combination, known);
    }
    const key = known
      ? keyOfCanonical(`${known.text[0]}${JSON.stringify(rs.seed)}${known.text[1]}`)
      : keyOf({ kind: "run", spec: rs, backend: this.backend });
    this.add(key, () => ({ kind: "run", key, spec: rs }));
  }

  /** Plans the spec's probe `i` (errors name /probes/i) and adds one job per probe job. */
  addProbe(p: NonNullable<SweepSpec["probes"]>[number], i: number): void {
    let plan: ProbePlan;
    try {
      plan = planProbe({ ...p, ...(this.backend ? { backend: this.backend } : {}), ...this.probeExtras });
    } catch (e) {
      if (!(e instanceof ValidationError)) throw e;
      throw new ValidationError(
        `sweep spec /probes/${i}: ${e.message}`,
        e.errors.map((x) => ({ ...x, path: `/probes/${i}${x.path}` })),
      );
    }
    this.probePlans.push(plan);
    for (const job of plan.jobs) {
      const key = keyOf({ kind: "probe", job, backend: this.backend });
      this.add(key, () => ({ kind: "probe", key, probeIndex: i, job }));
    }
  }

  /** The expanded sweep: its id hashes the name and the jobs' keys. */
  sweep(spec: SweepSpec): ExpandedSweep {
    const id = keyOf({ name: spec.name, jobs: this.jobs.map((j) => j.key) }).slice(0, 16);
    return { id, spec, jobs: this.jobs, probePlans: this.probePlans };
  }
}

/**
 * The number of jobs a (validated) sweep spec expands to at most, from the
 * lengths of its lists alone: a 500-byte grid can name a million jobs, and
 * expanding it first would block the event loop for tens of seconds.
 */
export function sweepJobCount(spec: SweepSpec): number {
  let n = 0;
  const g = spec.grid;
  if (g) {
    const seeds = typeof g.seeds === "number" ? g.seeds : g.seeds.length;
    n += g.env.length * (g.variant?.length ?? 1) * g.agent.length * (g.config?.length ?? 1) * g.steps.length * seeds;
  }
  n += spec.runs?.length ?? 0;
  for (const p of spec.probes ?? []) {
    const def = Object.hasOwn(probes, p.probe) ? probes[p.probe] : undefined;
    n += p.agents.length * Math.max(1, def?.arms?.length ?? 1) * p.seeds;
  }
  return n;
}

/** Throws a LimitError naming maxSweepJobs when a sweep would expand past it. */
export function checkSweepSize(spec: SweepSpec): void {
  const n = sweepJobCount(spec);
  if (n > LIMITS.maxSweepJobs) {
    throw new LimitError(
      "maxSweepJobs",
      LIMITS.maxSweepJobs,
      `sweep ${JSON.stringify(spec.name)} would expand to ${n.toLocaleString("en-US")} jobs; at most ${LIMITS.maxSweepJobs.toLocaleString("en-US")} per sweep (split it into several)`,
    );
  }
}
