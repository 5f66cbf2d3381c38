import { beforeAll, describe, expect, it } from "vitest";
import { initBackend } from "../../agents/backend.ts";
import type { AgentEnvInfo, Transition } from "../../agents/core.ts";
import { Ledger, LedgerBuilder, emptyLedger, mergeLedger } from "../../agents/ledger.ts";
import { PPOAgent, ppoConfigSchema, type PPOConfig } from "../../agents/ppo.ts";
import { ReinforceAgent, reinforceConfigSchema, type ReinforceConfig } from "../../agents/reinforce.ts";
import { validate } from "../../envs/schema.ts";

beforeAll(async () => {
  await initBackend("cpu");
});

describe("LedgerBuilder", () => {
  it("sums lr x weight per (state, action) and skips state key -1", () => {
    const b = new LedgerBuilder(3);
    b.addBatch([4, 4, 7, -1, 4], [0, 0, 2, 1, 1], [1, 0.5, -2, 100, 3], 0.1);
    const d = b.build();
    expect(d.entries).toEqual({ "4": [0.15000000000000002, 0.30000000000000004, 0], "7": [0, 0, -0.2] });
    expect(d.total).toBeCloseTo(0.15 + 0.3 - 0.2, 12);
    expect(d.totalAbs).toBeCloseTo(0.15 + 0.3 + 0.2, 12);
    expect(() => b.add(1, 3, 1, 1)).toThrow(RangeError);
  });

  it("merges deltas into a running total and round-trips through JSON", () => {
    const a = new LedgerBuilder(2);
    a.add(1, 0, 2, 0.5);
    const b = new LedgerBuilder(2);
    b.add(1, 0, -1, 0.5);
    b.add(2, 1, 4, 0.5);
    const ledger = new Ledger();
    ledger.record(a.build());
    ledger.record(b.build());
    expect(ledger.updates).toBe(2);
    expect(ledger.total.entries).toEqual({ "1": [0.5, 0], "2": [0, 2] });
    expect(ledger.total.total).toBe(2.5);
    expect(ledger.total.totalAbs).toBe(2.5);
    const copy = Ledger.fromJSON(JSON.parse(JSON.stringify(ledger)));
    expect(copy.toJSON()).toEqual(ledger.toJSON());
    // merging is associative on entries
    const m = mergeLedger(mergeLedger(emptyLedger(), a.build()), b.build());
    expect(m.entries).toEqual(ledger.total.entries);
  });
});

/** One-step transitions on a 3-state, 2-action space: obs one-hot of the state key. */
function oneStep(
  agent: { act: PPOAgent["act"]; observe: PPOAgent["observe"] },
  states: number[],
  rewards: number[],
  numEnvs: number,
): number[] {
  const actions: number[] = [];
  for (let t = 0; t < states.length; t += numEnvs) {
    const obs = new Float32Array(numEnvs * 3);
    const keys = new Int32Array(numEnvs);
    for (let i = 0; i < numEnvs; i++) {
      obs[i * 3 + states[t + i]!] = 1;
      keys[i] = states[t + i]!;
    }
    const act = agent.act(obs, { explore: true });
    actions.push(...act.actions);
    const tr: Transition = {
      obs,
      act,
      rewards: Float32Array.from(rewards.slice(t, t + numEnvs)),
      terminated: new Uint8Array(numEnvs).fill(1),
      truncated: new Uint8Array(numEnvs),
      nextObs: obs,
      finalObs: obs,
      stateKeys: keys,
      nextStateKeys: new Int32Array(numEnvs).fill(-1),
    };
    agent.observe(tr);
  }
  return actions;
}

describe("ledger of the learners, by hand on a tiny batch", () => {
  const info: AgentEnvInfo = { envId: "hand", envConfig: {}, obsSize: 3, nActions: 2, numEnvs: 2, maxEpisodeSteps: 1 };

  it("REINFORCE: lr x (return - baseline), without normalisation, summed per (state, action)", () => {
    const config = validate<ReinforceConfig>(
      reinforceConfigSchema,
      { numEnvs: 2, episodesPerUpdate: 4, baseline: false, normalizeReturns: false, learningRate: 0.01, hiddenSizes: [4] },
      "config",
    );
    const agent = new ReinforceAgent(info, config, 0);
    const states = [0, 1, 0, 2];
    const rewards = [1, -2, 3, 0.5];
    const actions = oneStep(agent, states, rewards, 2);
    const stats = agent.learn();
    // no baseline, one-step episodes: each sample's weight is its reward
    const expected: Record<string, number[]> = {};
    states.forEach((s, k) => {
      expected[s] ??= [0, 0];
      expected[s]![actions[k]!]! += 0.01 * rewards[k]!;
    });
    const got = stats.ledger!;
    expect(Object.keys(got.entries).sort()).toEqual(Object.keys(expected).sort());
    for (const k of Object.keys(expected)) for (let a = 0; a < 2; a++) expect(got.entries[k]![a]).toBeCloseTo(expected[k]![a]!, 9);
    expect(got.total).toBeCloseTo(0.01 * (1 - 2 + 3 + 0.5), 9);
    expect(agent.ledger.total.entries).toEqual(got.entries);
    agent.dispose();
  });

  it("PPO: lr x advantage where the clip passes gradient (one epoch, one minibatch: all of them)", () => {
    const config = validate<PPOConfig>(
      ppoConfigSchema,
      {
        numEnvs: 2,
        numSteps: 2,
        numMinibatches: 1,
        updateEpochs: 1,
        normAdv: false,
        annealLr: false,
        learningRate: 0.02,
        hiddenSizes: [4],
      },
      "config",
    );
    const agent = new PPOAgent(info, config, 0);
    const states = [0, 1, 2, 1];
    const rewards = [1, -2, 3, 0.5];
    const actions = oneStep(agent, states, rewards, 2);
    const { advantages } = agent.rolloutTargets();
    // terminated one-step episodes: advantage = reward - V(s)
    const values = agent.critic.forwardJS(Float32Array.from([1, 0, 0, 0, 1, 0, 0, 0, 1]), 3);
    states.forEach((s, k) => expect(advantages[k]).toBeCloseTo(rewards[k]! - values[s]!, 5));
    const stats = agent.learn();
    const expected: Record<string, number[]> = {};
    states.forEach((s, k) => {
      expected[s] ??= [0, 0];
      expected[s]![actions[k]!]! += 0.02 * advantages[k]!;
    });
    for (const k of Object.keys(expected))
      for (let a = 0; a < 2; a++) expect(stats.ledger!.entries[k]![a]).toBeCloseTo(expected[k]![a]!, 6);
    agent.dispose();
  });

  it("PPO: several epochs count a sample once per epoch while the clip passes it", () => {
    const config = validate<PPOConfig>(
      ppoConfigSchema,
      {
        numEnvs: 2,
        numSteps: 2,
        numMinibatches: 1,
        updateEpochs: 3,
        normAdv: false,
        annealLr: false,
        learningRate: 0.02,
        hiddenSizes: [4],
        clipCoef: 10,
      },
      "config",
    );
    const agent = new PPOAgent(info, config, 0);
    oneStep(agent, [0, 1, 2, 1], [1, -2, 3, 0.5], 2);
    const { advantages } = agent.rolloutTargets();
    const stats = agent.learn();
    // a clip of 10 never binds: every sample is counted in all 3 epochs
    const sum = advantages.reduce((a, b) => a + b, 0);
    expect(stats.ledger!.total).toBeCloseTo(3 * 0.02 * sum, 5);
    agent.dispose();
  });
});
