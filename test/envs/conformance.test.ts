/**
 * One conformance test over every registered environment: envs/check.ts's
 * checkRegisteredEnv (the public checker behind `rewardlab check-env`) run
 * on each, check by check; and the checker itself shown to catch broken envs.
 */
import { describe, expect, it } from "vitest";
import { checkEnv, checkRegisteredEnv, formatEnvCheck } from "../../envs/check.ts";
import { UnknownIdError, make, registered, type Env, type StepResult } from "../../envs/index.ts";

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

describe.each(envs.map((r) => [r.id] as [string]))("%s", (id) => {
  const report = checkRegisteredEnv(id);
  it.each(report.checks.map((c) => [c.name, c] as const))("%s", (_name, check) => {
    // a failing check fails with the checker's own message
    expect(check.message ?? "").toBe("");
    expect(check.ok).toBe(true);
  });
  it("covers the spec, order, determinism, spaces, render, snapshot, stateKey and episode end of every variant", () => {
    const variants = registered().find((r) => r.id === id)!.variants;
    expect(report.checks.length).toBe(3 + 8 * variants.length);
    expect(report.ok).toBe(true);
  });
});

describe.each(envs.map((r) => [r.id, r] as const))("%s: how it was made", (id, reg) => {
  it("clone() builds a twin (a new time limit if asked), stepsLeft() counts down", () => {
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
});

/** Wraps an env, changing one thing about it. */
function broken(base: () => Env, change: { step?: (r: StepResult, env: Env) => StepResult; stateKey?: (env: Env) => number }): () => Env {
  return () => {
    const env = base();
    return new Proxy(env, {
      get(target, prop, receiver) {
        if (prop === "step" && change.step) return (a: number) => change.step!(target.step(a), target);
        if (prop === "stateKey" && change.stateKey) return () => change.stateKey!(target);
        const v = Reflect.get(target, prop, receiver);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
  };
}

describe("checkEnv catches a broken environment", () => {
  const base = () => make("GoalShift-v0");
  const failed = (checks: ReturnType<typeof checkEnv>) => checks.filter((c) => c.ok === false).map((c) => c.name);

  it("passes the real one", () => {
    expect(failed(checkEnv(base))).toEqual([]);
  });

  it("an undeclared event", () => {
    const checks = checkEnv(broken(base, { step: (r) => ({ ...r, info: { ...r.info, events: [...r.info.events, "surprise"] } }) }));
    expect(failed(checks)).toContain("spaces, rewards, events");
    expect(checks.find((c) => c.name === "spaces, rewards, events")!.message).toMatch(/"surprise" is not declared/);
  });

  it("randomness outside the seed", () => {
    const checks = checkEnv(broken(base, { step: (r) => ({ ...r, reward: r.reward + (Math.random() < 0.5 ? 0 : 1e-3) }) }));
    expect(failed(checks)).toContain("determinism (same seed, same trajectory)");
  });

  it("a stateKey that does not encode the agent's cell", () => {
    const checks = checkEnv(broken(base, { stateKey: (e) => e.stateKey() + 1 }));
    expect(failed(checks)).toContain("stateKey (stable integer; cellOfKey(stateKey) is the agent's cell)");
  });

  it("an instance skips what needs a fresh env, and the text report says so", () => {
    const checks = checkEnv(make("GoalShift-v0"));
    expect(checks.find((c) => c.name.startsWith("order"))!.ok).toBeNull();
    const text = formatEnvCheck({ env: "GoalShift-v0", ok: true, checks });
    expect(text).toMatch(/^skip {2}order/m);
    expect(text).toMatch(/GoalShift-v0: conforms \(7 checks passed, 1 skipped\)/);
  });
});
