/**
 * A probe request, written once with its limits: what the CLI, a sweep's
 * `probes` and POST /api/probes (and so the client's form) accept. The
 * TypeScript types are derived from the schemas (TypeBox), validated by ajv.
 */
import { CloneType, type Static, Type } from "@sinclair/typebox";
import { cloneInput, validate } from "../../envs/schema.ts";
import { agentNameSchema, envIdSchema, seedSchema, stepsSchema } from "../runspec.ts";

/** Route syntax (knowledge.ts parses it): action letters, each optionally followed by a count. */
export const ROUTE_PATTERN = "^([a-z][0-9]{0,3}){1,200}$";

/** Named bounds of one probe: every loop a probe request starts is bounded by these. */
export const MAX_PROBE_AGENTS = 8;
export const MAX_PROBE_SEEDS = 1000;
export const MAX_PROBE_EPISODES = 10_000;

const probeSeedsSchema = Type.Integer({
  minimum: 1,
  maximum: MAX_PROBE_SEEDS,
  description: "Training runs per agent (and arm); the seed is the unit of the 95% interval",
});
const probeEpisodesSchema = Type.Integer({
  minimum: 1,
  maximum: MAX_PROBE_EPISODES,
  description: "Test episodes per seed, learning off (and as many train-side episodes)",
});

/**
 * A probe's agent entry: a registered agent's name (`planner`), or the name
 * and a tag (`planner:neural`) for a further configuration of the same agent
 * in the same probe; `configs` are keyed by entry.
 */
export const AGENT_ENTRY_PATTERN = "^[A-Za-z0-9_-]+(:[A-Za-z0-9_-]+)?$";
const agentEntrySchema = CloneType(agentNameSchema, {
  pattern: AGENT_ENTRY_PATTERN,
  description: "An agent's name, or name:tag for another configuration of it (configs keyed by the entry), e.g. planner:neural",
});

/** The registered agent an entry names: `planner:neural` -> `planner`. */
export function entryAgent(entry: string): string {
  const colon = entry.indexOf(":");
  return colon < 0 ? entry : entry.slice(0, colon);
}

const probeFields = {
  probe: Type.String({ minLength: 1, maxLength: 64, description: "Probe name (GET /api/probes/definitions)" }),
  agents: Type.Array(agentEntrySchema, { minItems: 1, maxItems: MAX_PROBE_AGENTS, uniqueItems: true }),
  seeds: probeSeedsSchema,
  steps: Type.Optional(
    CloneType(stepsSchema, { description: "Training budget per run (env steps); the probe's per-agent default if absent" }),
  ),
  episodes: Type.Optional(probeEpisodesSchema),
  env: Type.Optional(CloneType(envIdSchema, { description: "Another environment, for generic probes (required by shift)" })),
  // the shift probe's variants and event (checked against the env when the probe is planned)
  train: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: "Train variant of a generic probe (required by shift)" })),
  test: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: "Test variant of a generic probe (required by shift)" })),
  event: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: "Event of a generic probe (required by shift)" })),
  // scripted routes on the test variant for the knowledge columns (checked against the env's actions when planned)
  eventRoute: Type.Optional(
    Type.String({
      pattern: ROUTE_PATTERN,
      maxLength: 800,
      description: "Route to the event on the test variant: action letters with counts, e.g. d2r2r10",
    }),
  ),
  reinforcedRoute: Type.Optional(
    Type.String({ pattern: ROUTE_PATTERN, maxLength: 800, description: "Route training reinforced, on the test variant, e.g. r5" }),
  ),
  // each agent's config is checked against that agent's own schema when the probe is planned
  configs: Type.Optional(
    Type.Record(Type.String(), Type.Record(Type.String(), Type.Unknown()), {
      maxProperties: MAX_PROBE_AGENTS,
      description: 'Agent configs by agent entry, e.g. {"planner": {"model": "learned"}} or {"planner:neural": {"model": "neural"}}',
    }),
  ),
};

/** A probe over seeds as the CLI and a sweep's `probes` give it. */
export const probeSpecSchema = Type.Object(
  {
    ...probeFields,
    firstSeed: Type.Optional(CloneType(seedSchema, { description: "Seed of the first run (seeds firstSeed, firstSeed + 1, ...)" })),
  },
  { additionalProperties: false },
);
export type ProbeSpec = Static<typeof probeSpecSchema>;

/** POST /api/probes: the same fields and limits; seeds and episodes default to a quick probe (3 seeds, 50 test episodes). */
export const probeStartSchema = Type.Object(
  {
    ...probeFields,
    seeds: Type.Optional(CloneType(probeSeedsSchema, { default: 3 })),
    episodes: Type.Optional(CloneType(probeEpisodesSchema, { default: 50 })),
  },
  { additionalProperties: false },
);
/** The body of POST /api/probes, as a client sends it. */
export type ProbeStartRequest = Static<typeof probeStartSchema>;

/**
 * Checks the user's fields of a probe request against probeSpecSchema, for
 * callers that did not validate (the command line); what the caller adds
 * about how to run it (workers, backend, ...) is not the user's and not checked here.
 */
export function checkProbeSpec(req: ProbeSpec): void {
  const given = req as Record<string, unknown>;
  const fields = Object.fromEntries(
    Object.keys(probeSpecSchema.properties).flatMap((k) => (given[k] === undefined ? [] : [[k, given[k]]])),
  );
  validate(probeSpecSchema, cloneInput(fields, "probe request"), "probe request");
}
