/**
 * One definition per type: every request body and config is one TypeBox
 * schema. Checked here: each compiles under ajv's strict mode (plain JSON
 * Schema, TypeBox's symbol marks unseen), survives the JSON round trip the
 * client and /api/agents see, documents and defaults every hyperparameter,
 * keeps the project's error messages, and states each limit once, so that a
 * probe is bounded the same way from the CLI, a sweep and POST /api/probes.
 */
import { Ajv } from "ajv";
import { describe, expect, it } from "vitest";
import "../../envs/index.ts";
import "../../agents/index.ts";
import { ValidationError } from "../../envs/errors.ts";
import { registration, rewardTransformSchema } from "../../envs/registry.ts";
import { defaults, validate } from "../../envs/schema.ts";
import { type PPOConfig, ppoConfigSchema } from "../../agents/model-free/ppo.ts";
import { reinforceConfigSchema } from "../../agents/model-free/reinforce.ts";
import { planProbe } from "../../experiments/probes/index.ts";
import { MAX_PROBE_AGENTS, MAX_PROBE_SEEDS, probeSpecSchema, probeStartSchema } from "../../experiments/probes/request.ts";
import { interventionSchema, MAX_STEPS, resolveRunSpec, runRequestSchema } from "../../experiments/runspec.ts";
import { runRequestSchema as runRequestFromRun } from "../../experiments/run.ts";
import { expandSweep, sweepSpecSchema } from "../../experiments/sweeps/spec.ts";
import * as serverSchemas from "../../server/schemas.ts";

const ours: Record<string, object> = {
  ppoConfigSchema,
  reinforceConfigSchema,
  runRequestSchema,
  interventionSchema,
  probeSpecSchema,
  probeStartSchema,
  sweepSpecSchema,
  rewardTransformSchema,
  ...Object.fromEntries(Object.entries(serverSchemas).filter(([, v]) => typeof v === "object")),
};

/** The message validate() throws, or "" when the value is accepted. */
function problem(schema: object, value: unknown): string {
  try {
    validate(schema, structuredClone(value), "x");
    return "";
  } catch (e) {
    if (!(e instanceof ValidationError)) throw e;
    return e.message;
  }
}

describe("schemas written once with TypeBox", () => {
  it.each(Object.keys(ours))("%s compiles under ajv's strict mode, before and after a JSON round trip", (name) => {
    // ajv's own strict defaults, with its warnings made errors (anyOf: [{required: [...]}] is the one idiom it leaves to us)
    const strict = new Ajv({ strict: true, strictRequired: false, allowUnionTypes: true, useDefaults: true, allErrors: true });
    expect(() => strict.compile(ours[name]!)).not.toThrow();
    expect(() => strict.compile(JSON.parse(JSON.stringify(ours[name])))).not.toThrow();
  });

  it("shows the client the same schema ajv validates with (TypeBox's marks are symbols, dropped by JSON)", () => {
    for (const schema of [ppoConfigSchema, reinforceConfigSchema]) {
      const wire = JSON.parse(JSON.stringify(schema)) as object;
      expect(Object.getOwnPropertySymbols(schema).length).toBeGreaterThan(0);
      expect(defaults(wire)).toEqual(defaults(schema));
    }
    const request = { env: "BoatRace-v0", agent: "ppo", steps: 1000 };
    const wire = JSON.parse(JSON.stringify(runRequestSchema)) as object;
    expect(validate(wire, { ...request }, "run request")).toEqual(validate(runRequestSchema, { ...request }, "run request"));
  });

  it.each([
    ["ppo", ppoConfigSchema],
    ["reinforce", reinforceConfigSchema],
  ] as const)("every %s hyperparameter has a type, a default and a description; unknown keys are refused", (_name, schema) => {
    expect(schema.additionalProperties).toBe(false);
    expect(schema.required ?? []).toEqual([]);
    for (const [key, prop] of Object.entries(schema.properties as Record<string, Record<string, unknown>>)) {
      expect(prop.type, key).toBeDefined();
      expect(prop.default, key).toBeDefined();
      expect(String(prop.description ?? ""), key).not.toBe("");
    }
  });

  it("derives the config type from the schema: defaults fill every field the type names", () => {
    const c = defaults<PPOConfig>(ppoConfigSchema);
    expect(Object.keys(c).sort()).toEqual(Object.keys(ppoConfigSchema.properties).sort());
    expect(c.targetKl).toBeNull();
    expect(c.hiddenSizes).toEqual([64, 64]);
  });

  it("keeps one message per problem: enums list their values, nullable numbers read as one type", () => {
    expect(problem(runRequestSchema, { env: "BoatRace-v0", agent: "ppo", reward: "doubled" })).toMatch(
      /\/reward must be one of "keep", "removed", "negated"/,
    );
    expect(problem(ppoConfigSchema, { targetKl: "x" })).toBe("invalid x: /targetKl must be number,null");
    expect(problem(ppoConfigSchema, { bogus: 1 })).toMatch(/unknown key "bogus"/);
    expect(problem(interventionSchema, {})).toMatch(/must NOT have fewer than 1 properties/);
  });

  it("moved the run request without changing it: run.ts re-exports the one schema, and resolution fills the same defaults", () => {
    expect(runRequestFromRun).toBe(runRequestSchema);
    expect(serverSchemas.runRequestSchema).toBe(runRequestSchema);
    const spec = resolveRunSpec({ env: "GoalShift-v0", agent: "reinforce" });
    expect(spec).toMatchObject({ variant: "train", seed: 0, steps: 100000, evalEpisodes: 100, checkpointEvery: 10, reward: "keep" });
    expect(problem(runRequestSchema, { env: "GoalShift-v0", agent: "ppo", steps: MAX_STEPS + 1 })).toMatch(
      new RegExp(`/steps must be <= ${MAX_STEPS}`),
    );
  });
});

describe("an env's recommended agent config", () => {
  it("fills a run's config under the user's own fields (Maze-v0's PPO: the CNN); other agents and envs keep the agent's defaults", () => {
    const recommended = registration("Maze-v0").agentDefaults!.ppo!;
    expect(recommended.network).toBe("cnn");
    expect(resolveRunSpec({ env: "Maze-v0", agent: "ppo" }).config).toMatchObject(recommended);
    const own = resolveRunSpec({ env: "Maze-v0", agent: "ppo", config: { network: "mlp", gamma: 0.5 } });
    expect(own.config).toMatchObject({ ...recommended, network: "mlp", gamma: 0.5 });
    expect(resolveRunSpec({ env: "Maze-v0", agent: "reinforce" }).config.network).toBe("mlp");
    expect(resolveRunSpec({ env: "GoalShift-v0", agent: "ppo" }).config).toMatchObject({ network: "mlp", gamma: 0.99, numEnvs: 4 });
  });
});

describe("a probe's limits, stated once", () => {
  const probe = { probe: "tamper", agents: ["planner"], seeds: 1 };
  const tooMany = {
    seeds: { ...probe, seeds: MAX_PROBE_SEEDS + 1 },
    agents: { ...probe, agents: Array.from({ length: MAX_PROBE_AGENTS + 1 }, (_, i) => `agent${i}`) },
    steps: { ...probe, steps: MAX_STEPS + 1 },
  };

  it.each(Object.keys(tooMany) as (keyof typeof tooMany)[])(
    "too many %s: refused alike from the command line, a sweep and REST",
    (field) => {
      const bad = tooMany[field];
      const direct = problem(probeSpecSchema, bad);
      const rest = problem(probeStartSchema, bad);
      expect(direct).toMatch(new RegExp(`/${field} must NOT have more|/${field} must be <=`));
      expect(rest).toBe(direct);
      expect(() => expandSweep({ name: "s", probes: [bad] })).toThrow(new RegExp(`/probes/0/${field} must`));
      // the command line plans without a schema pass of its own: planProbe checks the same fields
      expect(() => planProbe({ ...bad, inline: true, workers: 1 })).toThrow(direct.replace("invalid x", "invalid probe request"));
    },
  );

  it("fills the quick-probe defaults only over REST; a sweep's probe must say its seeds", () => {
    expect(validate(probeStartSchema, { probe: "tamper", agents: ["ppo"] }, "probe request")).toMatchObject({ seeds: 3, episodes: 50 });
    expect(problem(probeSpecSchema, { probe: "tamper", agents: ["ppo"] })).toMatch(/must have required property 'seeds'/);
    expect(problem(probeStartSchema, { ...probe, firstSeed: 4 })).toMatch(/unknown key "firstSeed"/);
    expect(problem(probeSpecSchema, { ...probe, firstSeed: 4 })).toBe("");
  });
});
