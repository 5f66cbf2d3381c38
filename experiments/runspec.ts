/**
 * What a run is, written once: the run request a user gives (CLI, POST
 * /api/runs, a sweep's `runs`), its limits and defaults, and the RunSpec it
 * resolves to once the env and agent configs are validated too. The type is
 * derived from the schema (TypeBox), so the two cannot drift.
 */
import { CloneType, type Static, Type } from "@sinclair/typebox";
import { ValidationError } from "../envs/errors.ts";
import { type EnvConfig, registration, resolveEnvConfig, rewardTransformSchema } from "../envs/registry.ts";
import { cloneInput, validate } from "../envs/schema.ts";
import { agentRegistration, resolveAgentConfig } from "../agents/registry.ts";

/** The largest step budget of one run (and of one probe run). */
export const MAX_STEPS = 50_000_000;

/** An environment id as requests give it (the registry checks that it exists). */
export const envIdSchema = Type.String({ minLength: 1, maxLength: 100 });
/** A variant name (the env's config schema checks that it is one of the env's). */
export const variantSchema = Type.String({ minLength: 1, maxLength: 100 });
/** An agent name (the agent registry checks that it exists). */
export const agentNameSchema = Type.String({ minLength: 1, maxLength: 64 });
/** A seed: any unsigned 32-bit integer. */
export const seedSchema = Type.Integer({ minimum: 0, maximum: 4294967295 });

/** A run's env step budget (over all copies). */
export const stepsSchema = Type.Integer({ minimum: 1, maximum: MAX_STEPS, description: "Env step budget (over all copies)" });
/** Episodes evaluated with learning off at the end of a run. */
export const evalEpisodesSchema = Type.Integer({
  minimum: 0,
  maximum: 10000,
  description: "Episodes evaluated with learning off at the end (0: none)",
});

/** What a user may give; resolveRunSpec fills the rest. Nested env and agent configs are checked against their own schemas. */
export const runRequestSchema = Type.Object(
  {
    env: envIdSchema,
    variant: Type.Optional(variantSchema),
    envConfig: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), { maxProperties: 32, description: "Env config besides the variant (e.g. exposure)" }),
    ),
    agent: agentNameSchema,
    config: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), {
        maxProperties: 64,
        description: "Agent config; defaults filled from the agent's schema",
      }),
    ),
    seed: Type.Optional(CloneType(seedSchema, { default: 0 })),
    steps: Type.Optional(CloneType(stepsSchema, { default: 100000 })),
    evalEpisodes: Type.Optional(CloneType(evalEpisodesSchema, { default: 100 })),
    evalGreedy: Type.Optional(
      Type.Boolean({ default: false, description: "Evaluate acting greedily (true) or sampling the policy (false)" }),
    ),
    checkpointEvery: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 1000000, default: 10, description: "Save a checkpoint every N updates (0: only at the end)" }),
    ),
    recordEveryMs: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 3600000,
        default: 1000,
        description: "Record one whole episode of copy 0 at most this often (ms), for live frames and replay",
      }),
    ),
    reward: Type.Optional(CloneType(rewardTransformSchema, { default: "keep", description: "Generic reward wrapper for training" })),
    label: Type.Optional(Type.String({ maxLength: 200, description: 'Free-form label (probe name, sweep key, "demo")' })),
  },
  { additionalProperties: false },
);
export type RunRequest = Static<typeof runRequestSchema>;

/** What a run is: the request with every default filled and the env and agent configs resolved; stored with the run. */
export interface RunSpec extends Required<Omit<RunRequest, "label">> {
  label?: string;
}

/** A change to a live run (POST /api/runs/:id/intervene): from the next step on. */
export const interventionSchema = Type.Object(
  {
    variant: Type.Optional(variantSchema),
    learning: Type.Optional(Type.Boolean({ description: "Keep learning (true) or freeze the agent (false)" })),
    reward: Type.Optional(rewardTransformSchema),
  },
  { additionalProperties: false, minProperties: 1 },
);
export type Intervention = Static<typeof interventionSchema>;

/** Validates a run request against the run, env and agent schemas; fills every default. */
export function resolveRunSpec(request: unknown): RunSpec {
  const req = validate<Required<Omit<RunRequest, "variant" | "envConfig" | "config" | "label">> & RunRequest>(
    runRequestSchema,
    cloneInput(request, "run request"),
    "run request",
  );
  const envConfig: EnvConfig = { ...(req.envConfig ?? {}) };
  if (req.variant !== undefined) envConfig.variant = req.variant;
  const resolvedEnv = prefixed(
    () => resolveEnvConfig(req.env, envConfig),
    (path) => (path === "/variant" ? "/variant" : `/envConfig${path}`),
  );
  const reg = agentRegistration(req.agent);
  // the env's recommended fields for this agent (envs/registry.ts agentDefaults), under the user's own
  const userConfig = { ...structuredClone(registration(req.env).agentDefaults?.[req.agent] ?? {}), ...(req.config ?? {}) };
  // annealing schedules run over the run's budget unless the user pins them
  const props = (reg.configSchema as { properties?: Record<string, unknown> }).properties ?? {};
  if ("totalSteps" in props && userConfig.totalSteps === undefined) userConfig.totalSteps = req.steps;
  const config = prefixed(
    () => resolveAgentConfig<Record<string, unknown>>(req.agent, userConfig),
    (path) => `/config${path === "/" ? "" : path}`,
  );
  const { variant, ...rest } = resolvedEnv;
  return {
    env: req.env,
    variant: String(variant),
    envConfig: rest,
    agent: req.agent,
    config,
    seed: req.seed,
    steps: req.steps,
    evalEpisodes: req.evalEpisodes,
    evalGreedy: req.evalGreedy,
    checkpointEvery: req.checkpointEvery,
    recordEveryMs: req.recordEveryMs,
    reward: req.reward,
    ...(req.label !== undefined ? { label: req.label } : {}),
  };
}

/** Re-roots a nested schema's error paths in the request ("/numEnvs" -> "/config/numEnvs"), for forms. */
function prefixed<T>(f: () => T, path: (p: string) => string): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof ValidationError) {
      const errors = e.errors.map((x) => ({ ...x, path: path(x.path) }));
      throw new ValidationError(
        e.message.replace(/(\s)(\/[^\s]*)/g, (_m, sp: string, p: string) => `${sp}${path(p)}`),
        errors,
      );
    }
    throw e;
  }
}
