/** Request and socket-message schemas: everything from outside is validated here (ajv). */
import { runRequestSchema } from "../experiments/run.ts";

export { runRequestSchema };

export const idParamsSchema = {
  type: "object",
  required: ["id"],
  properties: { id: { type: "string", pattern: "^[A-Za-z0-9-]{1,64}$" } },
} as const;

export const interveneSchema = {
  type: "object",
  additionalProperties: false,
  minProperties: 1,
  properties: {
    variant: { type: "string", minLength: 1, maxLength: 100 },
    learning: { type: "boolean" },
    reward: { enum: ["keep", "removed", "negated"] },
  },
} as const;

export const episodesQuerySchema = {
  type: "object",
  additionalProperties: false,
  properties: {
    from: { type: "string", pattern: "^[0-9]{1,9}$" },
    limit: { type: "string", pattern: "^[0-9]{1,6}$" },
  },
} as const;

export const emptyQuerySchema = { type: "object", additionalProperties: false, properties: {} } as const;

/** `gc=1` collects garbage first when the server runs with --expose-gc (benchmarks read memory after a collection). */
export const healthQuerySchema = { type: "object", additionalProperties: false, properties: { gc: { enum: ["1"] } } } as const;

export const trajectoryParamsSchema = {
  type: "object",
  required: ["id", "episode"],
  properties: {
    id: { type: "string", pattern: "^[A-Za-z0-9-]{1,64}$" },
    episode: { type: "string", pattern: "^[0-9]{1,9}$" },
  },
} as const;

export const probeRequestSchema = {
  type: "object",
  additionalProperties: false,
  required: ["probe", "agents"],
  properties: {
    probe: { type: "string", minLength: 1, maxLength: 64 },
    agents: { type: "array", minItems: 1, maxItems: 8, uniqueItems: true, items: { type: "string", minLength: 1, maxLength: 64 } },
    seeds: { type: "integer", minimum: 1, maximum: 100, default: 3 },
    steps: { type: "integer", minimum: 1, maximum: 5000000 },
    episodes: { type: "integer", minimum: 1, maximum: 1000, default: 50 },
    env: { type: "string", minLength: 1, maxLength: 100 },
    // the shift probe's variants and event (checked against the env when the probe is planned)
    train: { type: "string", minLength: 1, maxLength: 100 },
    test: { type: "string", minLength: 1, maxLength: 100 },
    event: { type: "string", minLength: 1, maxLength: 100 },
    // each agent's config is checked against that agent's own schema when the probe is planned
    configs: { type: "object", maxProperties: 8, additionalProperties: { type: "object" } },
  },
} as const;

export const subscribeSchema = {
  type: "object",
  additionalProperties: false,
  required: ["runId"],
  properties: { runId: { type: "string", pattern: "^[A-Za-z0-9-]{1,64}$" } },
} as const;
