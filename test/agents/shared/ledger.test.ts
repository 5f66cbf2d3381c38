import { beforeAll, describe, expect, it } from "vitest";
import { initBackend } from "../../../agents/shared/backend.ts";
import type { AgentEnvInfo, Transition } from "../../../agents/core.ts";
import { Ledger, LedgerBuilder, emptyLedger, mergeLedger } from "../../../agents/shared/ledger.ts";
import { PPOAgent, ppoConfigSchema, type PPOConfig } from "../../../agents/model-free/ppo.ts";
import { ReinforceAgent, reinforceConfigSchema, type ReinforceConfig } from "../../../agents/model-free/reinforce.ts";
import { logSoftmax } from "../../../agents/shared/networks.ts";
import { validate } from "../../../envs/schema.ts";

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
  const oneHot = Float32Array.from([1, 0, 0, 0, 1, 0, 0, 0, 1]);
  // four one-step episodes on two envs: states and rewards
  const states = [0, 1, 0, 2];
  const rewards = [1, -2, 3, 0.5];
  /** REINFORCE at lr 0.01, 4 episodes per update, with or without the baseline and return scaling. */
  const reinforce = (baseline: boolean) =>
    new ReinforceAgent(
      info,
      validate<ReinforceConfig>(
        reinforceConfigSchema,
        { numEnvs: 2, episodesPerUpdate: 4, baseline, normalizeReturns: baseline, learningRate: 0.01, hiddenSizes: [4] },
        "config",
      ),
      0,
    );

  it("REINFORCE: lr x (return - baseline) / batch size, summed per (state, action)", () => {
    const agent = reinforce(false);
    const actions = oneStep(agent, states, rewards, 2);
    const stats = agent.learn();
    // no baseline, one-step episodes: each sample's weight is its reward; the loss is a mean over 4 samples
    const expected: Record<string, number[]> = { "0": [0, 0], "1": [0, 0], "2": [0, 0] };
    expected["0"]![actions[0]!]! += (0.01 * 1) / 4;
    expected["1"]![actions[1]!]! += (0.01 * -2) / 4;
    expected["0"]![actions[2]!]! += (0.01 * 3) / 4;
    expected["2"]![actions[3]!]! += (0.01 * 0.5) / 4;
    const got = stats.ledger!;
    expect(Object.keys(got.entries).sort()).toEqual(["0", "1", "2"]);
    for (const k of Object.keys(expected)) for (let a = 0; a < 2; a++) expect(got.entries[k]![a]).toBeCloseTo(expected[k]![a]!, 12);
    expect(got.total).toBeCloseTo(0.0025 * 2.5, 12);
    expect(agent.ledger.total.entries).toEqual(got.entries);
    agent.dispose();
  });

  it("REINFORCE: with a baseline and return scaling, lr x (G - V(s)) / std / batch size", () => {
    const agent = reinforce(true);
    // V(s) before the update, from the baseline network, and the population std of the 4 returns
    const v = agent.critic!.forwardJS(oneHot, 3);
    const actions = oneStep(agent, states, rewards, 2);
    const mean = (1 - 2 + 3 + 0.5) / 4;
    const std = Math.sqrt(rewards.reduce((a, r) => a + (r - mean) ** 2, 0) / 4);
    const stats = agent.learn();
    const expected: Record<string, number[]> = { "0": [0, 0], "1": [0, 0], "2": [0, 0] };
    states.forEach((s, k) => {
      expected[String(s)]![actions[k]!]! += (0.01 * ((rewards[k]! - v[s]!) / std)) / 4;
    });
    for (const k of Object.keys(expected))
      for (let a = 0; a < 2; a++) expect(stats.ledger!.entries[k]![a]).toBeCloseTo(expected[k]![a]!, 6);
    agent.dispose();
  });

  const ppo = (over: Partial<PPOConfig>) =>
    new PPOAgent(
      info,
      validate<PPOConfig>(
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
          ...over,
        },
        "config",
      ),
      0,
    );

  it("PPO: lr x ratio x advantage / minibatch size; in the first minibatch the ratio is 1", () => {
    const agent = ppo({});
    const states = [0, 1, 2, 1];
    const rewards = [1, -2, 3, 0.5];
    // terminated one-step episodes: advantage = reward - V(s)
    const v = agent.critic.forwardJS(oneHot, 3);
    const actions = oneStep(agent, states, rewards, 2);
    const stats = agent.learn();
    const expected: Record<string, number[]> = { "0": [0, 0], "1": [0, 0], "2": [0, 0] };
    states.forEach((s, k) => {
      expected[String(s)]![actions[k]!]! += (0.02 * (rewards[k]! - v[s]!)) / 4;
    });
    for (const k of Object.keys(expected))
      for (let a = 0; a < 2; a++) expect(stats.ledger!.entries[k]![a]).toBeCloseTo(expected[k]![a]!, 6);
    agent.dispose();
  });

  /**
   * Two epochs of one minibatch: the second epoch's ratio is pi_1(a|s) / pi_0(a|s),
   * where pi_1 is the policy after one epoch. An identical agent (same seed,
   * same rollout) that learns one epoch gives pi_1.
   */
  function twoEpochs(clipCoef: number, normAdv: boolean) {
    const states = [0, 1, 2, 1];
    const rewards = [1, -2, 3, 0.5];
    const one = ppo({ updateEpochs: 1, clipCoef, normAdv, learningRate: 0.05 });
    const two = ppo({ updateEpochs: 2, clipCoef, normAdv, learningRate: 0.05 });
    const v = one.critic.forwardJS(oneHot, 3);
    const logp0 = logSoftmax(one.actor.forwardJS(oneHot, 3), 3, 2);
    const actions = oneStep(one, states, rewards, 2);
    expect(oneStep(two, states, rewards, 2)).toEqual(actions);
    one.learn();
    const logp1 = logSoftmax(one.actor.forwardJS(oneHot, 3), 3, 2);
    const got = two.learn().ledger!;
    let adv = states.map((s, k) => rewards[k]! - v[s]!);
    if (normAdv) {
      const mean = adv.reduce((a, b) => a + b, 0) / 4;
      const std = Math.sqrt(adv.reduce((a, b) => a + (b - mean) ** 2, 0) / 3);
      adv = adv.map((x) => (x - mean) / (std + 1e-8));
    }
    const expected: Record<string, number[]> = { "0": [0, 0], "1": [0, 0], "2": [0, 0] };
    let passed = 0;
    states.forEach((s, k) => {
      const a = actions[k]!;
      expected[String(s)]![a]! += (0.05 * adv[k]!) / 4; // epoch 1: ratio 1
      const ratio = Math.exp(logp1[s * 2 + a]! - logp0[s * 2 + a]!);
      const inside = ratio >= 1 - clipCoef && ratio <= 1 + clipCoef;
      // outside the clip range the gradient survives only where the unclipped term is the smaller one
      const passes = inside || (adv[k]! > 0 && ratio < 1) || (adv[k]! < 0 && ratio > 1);
      if (passes) {
        passed++;
        expected[String(s)]![a]! += (0.05 * ratio * adv[k]!) / 4;
      }
    });
    for (const k of Object.keys(expected)) for (let a = 0; a < 2; a++) expect(got.entries[k]![a]).toBeCloseTo(expected[k]![a]!, 6);
    one.dispose();
    two.dispose();
    return passed;
  }

  it("PPO: a later epoch counts ratio x advantage while the clip passes gradient", () => {
    expect(twoEpochs(10, false)).toBe(4);
  });

  it("PPO: a binding clip removes samples from later epochs (normalised advantages)", () => {
    // a tiny clip range: after one step most samples move outside it, on the side that stops their gradient
    expect(twoEpochs(1e-4, true)).toBeLessThan(4);
  });
});
