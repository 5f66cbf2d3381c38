/**
 * Sweep specs: a grid (or list) over environments, variants, agents, agent
 * configs, seeds and step budgets, plus probes over seeds. Each job gets a
 * stable key, the hash of its resolved config and seed, so re-running a
 * sweep skips what the store already has and a retried job never counts twice.
 */
import { createHash } from "node:crypto";
import { cloneInput, validate } from "../../envs/schema.ts";
import { ValidationError } from "../../envs/errors.ts";
import { resolveRunSpec, type RunRequest } from "../run.ts";
import type { RunSpec } from "../events.ts";
import { planProbe, type ProbePlan, type ProbeRequest } from "../probes/index.ts";
import type { ProbeJob } from "../probes/job.ts";
import { checkSweepSize } from "../limits.ts";

export interface SweepSpec {
  name: string;
  /** Cartesian product of every list; one run per combination and seed. */
  grid?: {
    env: string[];
    variant?: string[];
    agent: string[];
    config?: Record<string, unknown>[];
    seeds: number | number[];
    steps: number[];
    evalEpisodes?: number;
  };
  /** Runs listed one by one (RunRequest each). */
  runs?: RunRequest[];
  probes?: Pick<ProbeRequest, "probe" | "agents" | "seeds" | "steps" | "episodes" | "env" | "firstSeed" | "configs">[];
  /** Backend for every job (cpu: bit-identical results wherever a job runs). */
  backend?: "tensorflow" | "wasm" | "cpu";
}

const list = (items: object, min = 1) => ({ type: "array", minItems: min, maxItems: 1000, items });

export const sweepSpecSchema = {
  type: "object",
  additionalProperties: false,
  required: ["name"],
  anyOf: [{ required: ["grid"] }, { required: ["runs"] }, { required: ["probes"] }],
  properties: {
    name: { type: "string", minLength: 1, maxLength: 100 },
    grid: {
      type: "object",
      additionalProperties: false,
      required: ["env", "agent", "seeds", "steps"],
      properties: {
        env: list({ type: "string", minLength: 1, maxLength: 100 }),
        variant: list({ type: "string", minLength: 1, maxLength: 100 }),
        agent: list({ type: "string", minLength: 1, maxLength: 64 }),
        config: list({ type: "object" }),
        seeds: { oneOf: [{ type: "integer", minimum: 1, maximum: 10000 }, list({ type: "integer", minimum: 0, maximum: 4294967295 })] },
        steps: list({ type: "integer", minimum: 1, maximum: 50_000_000 }),
        evalEpisodes: { type: "integer", minimum: 0, maximum: 10000 },
      },
    },
    runs: list({ type: "object" }),
    probes: list({
      type: "object",
      additionalProperties: false,
      required: ["probe", "agents", "seeds"],
      properties: {
        probe: { type: "string", minLength: 1, maxLength: 64 },
        agents: list({ type: "string", minLength: 1, maxLength: 64 }),
        seeds: { type: "integer", minimum: 1, maximum: 1000 },
        steps: { type: "integer", minimum: 1, maximum: 50_000_000 },
        episodes: { type: "integer", minimum: 1, maximum: 10000 },
        env: { type: "string", minLength: 1, maxLength: 100 },
        firstSeed: { type: "integer", minimum: 0 },
        configs: { type: "object", maxProperties: 16, additionalProperties: { type: "object" } },
      },
    }),
    backend: { enum: ["tensorflow", "wasm", "cpu"] },
  },
} as const;

export type SweepJob = { kind: "run"; key: string; spec: RunSpec } | { kind: "probe"; key: string; probeIndex: number; job: ProbeJob };

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
  return createHash("sha256").update(canonical(value)).digest("hex").slice(0, 32);
}

/** Validates the spec (naming the bad field) and expands it into keyed jobs. */
export function expandSweep(input: unknown): ExpandedSweep {
  const spec = validate<SweepSpec>(sweepSpecSchema, cloneInput(input, "sweep spec"), "sweep spec");
  checkSweepSize(spec);
  const jobs: SweepJob[] = [];
  const seen = new Set<string>();
  const addRun = (req: RunRequest, where: string) => {
    let rs: RunSpec;
    try {
      rs = resolveRunSpec({ recordEveryMs: 0, checkpointEvery: 0, ...req });
    } catch (e) {
      throw Object.assign(e as Error, { message: `sweep spec ${where}: ${(e as Error).message}` });
    }
    const key = keyOf({ kind: "run", spec: rs, backend: spec.backend ?? null });
    if (!seen.has(key)) {
      seen.add(key);
      jobs.push({ kind: "run", key, spec: rs });
    }
  };
  if (spec.grid) {
    const g = spec.grid;
    const seeds = typeof g.seeds === "number" ? Array.from({ length: g.seeds }, (_, i) => i) : g.seeds;
    for (const env of g.env)
      for (const variant of g.variant ?? [undefined])
        for (const agent of g.agent)
          for (const [ci, config] of (g.config ?? [{}]).entries())
            for (const steps of g.steps)
              for (const seed of seeds) {
                addRun(
                  {
                    env,
                    agent,
                    config,
                    steps,
                    seed,
                    ...(variant ? { variant } : {}),
                    ...(g.evalEpisodes !== undefined ? { evalEpisodes: g.evalEpisodes } : {}),
                  },
                  `/grid (env ${env}, agent ${agent}, config ${ci})`,
                );
              }
  }
  (spec.runs ?? []).forEach((r, i) => addRun(r, `/runs/${i}`));
  const probePlans: ProbePlan[] = [];
  (spec.probes ?? []).forEach((p, i) => {
    let plan: ProbePlan;
    try {
      plan = planProbe({ ...p, ...(spec.backend ? { backend: spec.backend } : {}) });
    } catch (e) {
      if (!(e instanceof ValidationError)) throw e;
      throw new ValidationError(
        `sweep spec /probes/${i}: ${e.message}`,
        e.errors.map((x) => ({ ...x, path: `/probes/${i}${x.path}` })),
      );
    }
    probePlans.push(plan);
    for (const job of plan.jobs) {
      const key = keyOf({ kind: "probe", job, backend: spec.backend ?? null });
      if (!seen.has(key)) {
        seen.add(key);
        jobs.push({ kind: "probe", key, probeIndex: i, job });
      }
    }
  });
  const id = keyOf({ name: spec.name, jobs: jobs.map((j) => j.key) }).slice(0, 16);
  return { id, spec, jobs, probePlans };
}
