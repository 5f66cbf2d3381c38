import { beforeAll, describe, expect, it } from "vitest";
import type { ActContext, Agent, Transition, UpdateStats } from "../../agents/core.ts";
import { Stepper, collectRollout, playEpisodes, train } from "../../experiments/loop.ts";
import { registerTestEnvs } from "../agents/testing.ts";

beforeAll(() => registerTestEnvs());

/** A scripted agent on TestChain-v0 (one-hot position): `policy(pos)` picks the action; records what the loop hands it. */
function scripted(policy: (pos: number) => number, learnEvery = Infinity) {
  const seen: { ctx: ActContext[]; transitions: { keys: number[]; next: number[]; ended: boolean[] }[]; learned: number } = {
    ctx: [],
    transitions: [],
    learned: 0,
  };
  let steps = 0;
  let sinceLearn = 0;
  const agent: Agent = {
    name: "scripted",
    config: {},
    needs: { stateKeys: true, simulator: true },
    get envSteps() {
      return steps;
    },
    act(obs, ctx) {
      seen.ctx.push(ctx);
      const n = obs.length / 6;
      return { actions: Int32Array.from({ length: n }, (_, i) => policy(obs.subarray(i * 6, i * 6 + 6).indexOf(1))) };
    },
    actionProbs: (_obs, batch) => new Float32Array(batch * 2).fill(0.5),
    observe(t: Transition) {
      seen.transitions.push({
        keys: [...t.stateKeys],
        next: [...t.nextStateKeys],
        ended: [...t.terminated].map((x, i) => x === 1 || t.truncated[i] === 1),
      });
      steps += t.rewards.length;
      sinceLearn += t.rewards.length;
    },
    readyToLearn: () => sinceLearn >= learnEvery,
    learn(): UpdateStats {
      sinceLearn = 0;
      return { update: ++seen.learned, envSteps: steps, metrics: {} };
    },
    save: async () => {},
    dispose: () => {},
  };
  return { agent, seen };
}

const chain = (numEnvs: number) => ({ env: "TestChain-v0", config: {}, reward: "keep" as const, numEnvs, seed: 1 });

describe("the shared step loop", () => {
  it("hands observe() the ended episode's last state key, at termination and at truncation", () => {
    // right to the goal: 5 steps, terminated in cell 5
    const right = scripted(() => 1);
    const r = train(new Stepper(right.agent, chain(1)), 10);
    expect(r.episodes.map((e) => [e.length, e.return, e.terminated])).toEqual([
      [5, 1, true],
      [5, 1, true],
    ]);
    const ends = right.seen.transitions.filter((t) => t.ended[0]);
    expect(ends.map((t) => t.next[0])).toEqual([5, 5]);
    // 2 <-> 3 until the time limit (12 steps) truncates in cell 2, not in the reset cell 0
    const dither = scripted((pos) => (pos < 3 ? 1 : 0));
    const d = train(new Stepper(dither.agent, chain(1)), 12);
    expect(d.episodes).toEqual([expect.objectContaining({ length: 12, return: 0, terminated: false, envSteps: 12 })]);
    const last = dither.seen.transitions.at(-1)!;
    expect(last.ended[0]).toBe(true);
    expect(last.keys[0]).toBe(3);
    expect(last.next[0]).toBe(2);
  });

  it("passes the act context the agent asked for, and learns only when asked to and ready", () => {
    const { agent, seen } = scripted(() => 1, 4);
    const stepper = new Stepper(agent, chain(2));
    stepper.step({ explore: false, learn: false });
    expect(seen.transitions).toHaveLength(0);
    const ctx = seen.ctx[0]!;
    expect(ctx.explore).toBe(false);
    expect([...ctx.stateKeys!]).toEqual([0, 0]);
    expect(ctx.envs).toBe(stepper.vec.envs);
    expect(ctx.simulator).toEqual({ envId: "TestChain-v0", envConfig: {}, reward: "keep" });
    stepper.step({ explore: true, learn: true });
    expect(stepper.update).toBeNull();
    stepper.step({ explore: true, learn: true });
    expect(stepper.update?.update).toBe(1);
    expect(stepper.envSteps).toBe(6);
  });

  it("collects a rollout up to the agent's readiness and leaves learn() to the caller", () => {
    const { agent, seen } = scripted(() => 1, 6);
    const stepper = new Stepper(agent, chain(2), { timed: true });
    collectRollout(stepper);
    expect(seen.transitions).toHaveLength(3);
    expect(agent.readyToLearn()).toBe(true);
    expect(seen.learned).toBe(0);
    // train's timings are this call's own, not the stepper's since it was made
    const r = train(stepper, 4);
    expect(seen.learned).toBe(1);
    const total = stepper.timings!;
    expect(r.timings!.actMs).toBeGreaterThan(0);
    expect(r.timings!.actMs).toBeLessThan(total.actMs);
    expect(train(new Stepper(agent, chain(1)), 2).timings).toBeNull();
    stepper.close();
  });

  it("plays exactly the episodes asked for, spread over at most one copy per episode", () => {
    const { agent, seen } = scripted(() => 1);
    const seenCopies: number[] = [];
    const eps = playEpisodes(agent, chain(4), { episodes: 6, explore: false, onEpisode: (e) => seenCopies.push(e.copy) });
    expect(eps).toHaveLength(6);
    expect(seenCopies.sort()).toEqual([0, 0, 1, 1, 2, 3]);
    expect(seen.transitions).toHaveLength(0); // learning off
    expect(playEpisodes(agent, chain(4), { episodes: 2, explore: false })).toHaveLength(2);
    expect(seen.ctx.at(-1)!.stateKeys).toHaveLength(2); // two copies for two episodes
  });
});
