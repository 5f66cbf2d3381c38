import * as tf from "@tensorflow/tfjs";
import { describe, expect, it } from "vitest";
import { initBackend } from "../../../agents/shared/backend.ts";
import type { Agent, AgentEnvInfo, Transition } from "../../../agents/core.ts";
import {
  PPOAgent,
  annealedLearningRate,
  bootstrappedReward,
  clipPassesGradient,
  computeGAE,
  explainedVariance,
  ppoComputed,
  ppoConfigSchema,
  ppoLoss,
  ppoLossGrad,
  ppoLossJS,
  type PPOConfig,
} from "../../../agents/model-free/ppo.ts";
import { logSoftmax } from "../../../agents/shared/networks.ts";
import { createAgent, loadAgent, resolveAgentConfig } from "../../../agents/registry.ts";
import { agentOn, builtinEnvIds, envInfo, payingArm, trainedOnChain, runLoop, setUpAgentTests, tempDir } from "../testing.ts";
import { Stepper, collectRollout } from "../../../experiments/loop.ts";
import "../../../agents/model-free/reinforce.ts";
import { defaults } from "../../../envs/schema.ts";
import { makeVector } from "../../../envs/vector.ts";
import "../../../envs/index.ts";

/** Small, fast settings: the maths is the same, the rollouts are short. */
const tiny: Partial<PPOConfig> = { numEnvs: 2, numSteps: 16, numMinibatches: 2, updateEpochs: 2, hiddenSizes: [16, 16] };

function ppoConfig(over: Partial<PPOConfig> = {}): PPOConfig {
  return resolveAgentConfig<PPOConfig>("ppo", over);
}

setUpAgentTests();

describe("PPO config", () => {
  it("fills CleanRL's defaults and rejects unknown keys", () => {
    const c = defaults<PPOConfig>(ppoConfigSchema);
    expect(c).toMatchObject({
      learningRate: 2.5e-4,
      numEnvs: 4,
      numSteps: 128,
      annealLr: true,
      totalSteps: 500000,
      gamma: 0.99,
      gaeLambda: 0.95,
      numMinibatches: 4,
      updateEpochs: 4,
      normAdv: true,
      clipCoef: 0.2,
      clipVloss: true,
      entCoef: 0.01,
      vfCoef: 0.5,
      maxGradNorm: 0.5,
      targetKl: null,
      hiddenSizes: [64, 64],
      adamEps: 1e-5,
    });
    expect(() => resolveAgentConfig("ppo", { learningrate: 1 })).toThrow(/learningrate/);
    const k = ppoComputed(c, 4);
    expect(k).toEqual({ numEnvs: 4, batchSize: 512, minibatchSize: 128, numIterations: 976 });
  });

  it("anneals the learning rate linearly over the budget, then holds the configured rate", () => {
    const c = ppoConfig({ totalSteps: 2048 });
    const k = ppoComputed(c, 4); // 4 iterations
    expect([1, 2, 3, 4, 5, 9].map((i) => annealedLearningRate(c, k, i))).toEqual([2.5e-4, 1.875e-4, 1.25e-4, 0.625e-4, 2.5e-4, 2.5e-4]);
    expect(annealedLearningRate({ ...c, annealLr: false }, k, 3)).toBe(2.5e-4);
  });
});

// ---------------------------------------------------------------- GAE

/**
 * Reference: for each step, sum (gamma lambda)^k delta_{t+k} over the rest of
 * its episode inside the rollout, where the value after a step is V(next obs)
 * inside an episode, V(final obs) at a truncation, and 0 at a termination.
 */
function referenceGAE(
  raw: number[][],
  values: number[][],
  terminated: number[][],
  truncated: number[][],
  finalValues: number[][],
  nextValues: number[],
  gamma: number,
  lambda: number,
): number[][] {
  const T = raw.length;
  const N = raw[0]!.length;
  const out = Array.from({ length: T }, () => new Array<number>(N).fill(0));
  for (let i = 0; i < N; i++) {
    const delta = (t: number) => {
      let after: number;
      if (terminated[t]![i]) after = 0;
      else if (truncated[t]![i]) after = finalValues[t]![i]!;
      else after = t === T - 1 ? nextValues[i]! : values[t + 1]![i]!;
      return raw[t]![i]! + gamma * after - values[t]![i]!;
    };
    for (let t = 0; t < T; t++) {
      let sum = 0;
      let w = 1;
      for (let u = t; u < T; u++) {
        sum += w * delta(u);
        if (terminated[u]![i] || truncated[u]![i]) break;
        w *= gamma * lambda;
      }
      out[t]![i] = sum;
    }
  }
  return out;
}

describe("GAE", () => {
  // 5 steps x 3 envs: env 0 terminates at t=1, env 1 truncates at t=2, env 2 runs through
  const raw = [
    [1, 0, 0.5],
    [2, -1, 0],
    [0, 3, 1],
    [-1, 0, 0],
    [0.5, 1, 2],
  ];
  const values = [
    [0.3, 0.1, -0.2],
    [0.7, 0.4, 0.9],
    [-0.5, 1.1, 0.6],
    [0.2, -0.3, 0.1],
    [0.8, 0.5, 0.4],
  ];
  /** A 5 x 3 table of zeros with `value` at step t, env i. */
  const only = (t: number, i: number, value = 1) =>
    Array.from({ length: 5 }, (_, u) => [0, 0, 0].map((zero, j) => (u === t && j === i ? value : zero)));
  const terminated = only(1, 0);
  const truncated = only(2, 1);
  const finalValues = only(2, 1, 2.5);
  const nextValues = [0.25, -0.75, 1.5];
  const gamma = 0.9;
  const lambda = 0.8;

  it("matches the reference sum, bootstrapping at truncation and not at termination", () => {
    const rewards = raw.flatMap((row, t) =>
      row.map((r, i) => bootstrappedReward(r, terminated[t]![i] === 1, truncated[t]![i] === 1, finalValues[t]![i]!, gamma)),
    );
    const dones = terminated.flatMap((row, t) => row.map((x, i) => x | truncated[t]![i]!));
    const { advantages, returns } = computeGAE({
      rewards,
      values: values.flat(),
      dones,
      nextValues,
      numSteps: 5,
      numEnvs: 3,
      gamma,
      gaeLambda: lambda,
    });
    const ref = referenceGAE(raw, values, terminated, truncated, finalValues, nextValues, gamma, lambda);
    for (let t = 0; t < 5; t++) {
      for (let i = 0; i < 3; i++) {
        expect(advantages[t * 3 + i]).toBeCloseTo(ref[t]![i]!, 5);
        expect(returns[t * 3 + i]).toBeCloseTo(ref[t]![i]! + values[t]![i]!, 5);
      }
    }
    // by hand: env 1 truncated at t=2: delta = 3 + 0.9 * 2.5 - 1.1
    expect(advantages[2 * 3 + 1]).toBeCloseTo(3 + 0.9 * 2.5 - 1.1, 5);
    // env 0 terminated at t=1: delta = 2 - 0.7, no bootstrap
    expect(advantages[1 * 3 + 0]).toBeCloseTo(2 - 0.7, 5);
    // the last step bootstraps from nextValues
    expect(advantages[4 * 3 + 2]).toBeCloseTo(2 + 0.9 * 1.5 - 0.4, 5);
  });

  it("bootstrappedReward adds gamma V(final) only when truncated and not terminated", () => {
    expect(bootstrappedReward(1, false, true, 2, 0.5)).toBe(2);
    expect(bootstrappedReward(1, true, false, 2, 0.5)).toBe(1);
    expect(bootstrappedReward(1, true, true, 2, 0.5)).toBe(1);
    expect(bootstrappedReward(1, false, false, 2, 0.5)).toBe(1);
  });

  it("the agent stores truncation bootstraps from V(final obs) and carries episodes across rollouts", () => {
    const info: AgentEnvInfo = { envId: "hand", envConfig: {}, obsSize: 3, nActions: 2, numEnvs: 2, maxEpisodeSteps: 10 };
    const agent = new PPOAgent(info, ppoConfig({ numEnvs: 2, numSteps: 3, hiddenSizes: [8] }), 5);
    const oh = (a: number, b: number) =>
      Float32Array.from([a === 0 ? 1 : 0, a === 1 ? 1 : 0, a === 2 ? 1 : 0, b === 0 ? 1 : 0, b === 1 ? 1 : 0, b === 2 ? 1 : 0]);
    const V = (s: number) => agent.critic.forwardJS(Float32Array.from([s === 0 ? 1 : 0, s === 1 ? 1 : 0, s === 2 ? 1 : 0]), 1)[0]!;
    // env 0: 0 -> 1 -> 2 (terminates) ; env 1: 0 -> 1 (truncated, final obs 2) -> 0
    const steps = [
      { obs: oh(0, 0), next: oh(1, 1), r: [1, 1], term: [0, 0], trunc: [0, 0], final: oh(0, 0) },
      { obs: oh(1, 1), next: oh(2, 0), r: [0, 0.5], term: [0, 0], trunc: [0, 1], final: oh(0, 2) },
      { obs: oh(2, 0), next: oh(0, 1), r: [2, 0], term: [1, 0], trunc: [0, 0], final: oh(2, 0) },
    ];
    for (const s of steps) {
      const act = agent.act(s.obs, { explore: true });
      agent.observe(transition(s.obs, act, s.r, s.term, s.trunc, s.next, s.final));
    }
    const { advantages } = agent.rolloutTargets();
    const g = 0.99;
    const lam = 0.95;
    const raw = [
      [1, 1],
      [0, 0.5],
      [2, 0],
    ];
    const vals = [
      [V(0), V(0)],
      [V(1), V(1)],
      [V(2), V(0)],
    ];
    const ref = referenceGAE(
      raw,
      vals,
      [
        [0, 0],
        [0, 0],
        [1, 0],
      ],
      [
        [0, 0],
        [0, 1],
        [0, 0],
      ],
      [
        [0, 0],
        [0, V(2)],
        [0, 0],
      ],
      [V(0), V(1)],
      g,
      lam,
    );
    for (let t = 0; t < 3; t++) for (let i = 0; i < 2; i++) expect(advantages[t * 2 + i]).toBeCloseTo(ref[t]![i]!, 5);
    agent.dispose();
  });

  it("a gap in the transition stream ends the cut episode with a bootstrap", () => {
    const info: AgentEnvInfo = { envId: "hand", envConfig: {}, obsSize: 2, nActions: 2, numEnvs: 1, maxEpisodeSteps: 10 };
    const agent = new PPOAgent(info, ppoConfig({ numEnvs: 1, numSteps: 3, hiddenSizes: [8] }), 5);
    const a = Float32Array.from([1, 0]);
    const b = Float32Array.from([0, 1]);
    const V = (o: Float32Array) => agent.critic.forwardJS(o, 1)[0]!;
    const send = (obs: Float32Array, next: Float32Array, r: number) =>
      agent.observe(transition(obs, agent.act(obs, { explore: true }), [r], [0], [0], next, obs));
    send(a, b, 1); // then the run loop paused: the next transition starts from a, not b
    send(a, a, 0);
    send(a, a, 0);
    const { returns } = agent.rolloutTargets();
    // step 0 ended at the gap: its return is 1 + gamma V(b), nothing from later steps
    expect(returns[0]).toBeCloseTo(1 + 0.99 * V(b), 5);
    agent.dispose();
  });
});

function transition(
  obs: Float32Array,
  act: ReturnType<PPOAgent["act"]>,
  r: number[],
  term: number[],
  trunc: number[],
  next: Float32Array,
  final: Float32Array,
): Transition {
  const n = r.length;
  return {
    obs,
    act,
    rewards: Float32Array.from(r),
    terminated: Uint8Array.from(term),
    truncated: Uint8Array.from(trunc),
    nextObs: next,
    finalObs: final,
    stateKeys: new Int32Array(n).fill(-1),
    nextStateKeys: new Int32Array(n).fill(-1),
  };
}

// ---------------------------------------------------------------- losses

describe("clipped losses", () => {
  const s = {
    newLogp: [-0.1, -1.2, -0.7, -2.0, -0.3, -0.9],
    oldLogp: [-0.5, -1.0, -0.7, -1.5, -0.05, -1.3],
    advantages: [1.0, -0.5, 2.0, 0.8, -1.5, 0.3],
    entropy: [0.6, 0.5, 0.7, 0.4, 0.65, 0.3],
    newValue: [0.5, 1.4, -0.2, 0.0, 2.0, 0.9],
    oldValue: [0.2, 1.0, 0.1, 0.5, 1.0, 0.95],
    returns: [1.0, 1.2, -0.5, 0.4, 0.0, 1.5],
  };
  for (const clipVloss of [true, false]) {
    it(`tfjs losses match the reference loop (clipVloss ${clipVloss})`, () => {
      const coefs = { clipCoef: 0.2, clipVloss, entCoef: 0.01, vfCoef: 0.5 };
      const ref = ppoLossJS(s, coefs);
      const got = tf.tidy(() => {
        const t = Object.fromEntries(Object.entries(s).map(([k, v]) => [k, tf.tensor1d(v)])) as Parameters<typeof ppoLoss>[0];
        const l = ppoLoss(t, coefs);
        return [l.loss, l.policyLoss, l.valueLoss, l.entropy].map((x) => x.dataSync()[0]!);
      });
      expect(got[0]).toBeCloseTo(ref.loss, 5);
      expect(got[1]).toBeCloseTo(ref.policyLoss, 5);
      expect(got[2]).toBeCloseTo(ref.valueLoss, 5);
      expect(got[3]).toBeCloseTo(ref.entropy, 5);
    });
  }

  for (const backend of ["cpu", "wasm"] as const) {
    for (const clipVloss of [true, false]) {
      it(`ppoLossGrad: loss and gradients equal tfjs autodiff through log-softmax, entropy and ppoLoss (${backend}, clipVloss ${clipVloss})`, async () => {
        await initBackend(backend);
        const m = 8;
        const A = 3;
        const coefs = { clipCoef: 0.2, clipVloss, entCoef: 0.05, vfCoef: 0.5 };
        const logits = Float32Array.from({ length: m * A }, (_, i) => Math.sin(1.7 * i) * 1.5);
        const values = Float32Array.from({ length: m }, (_, j) => Math.cos(j) * 2);
        const actions = Int32Array.from({ length: m }, (_, j) => (j * 2) % A);
        const logp = logSoftmax(logits, m, A);
        // old log-probabilities around the new ones: ratios inside and outside [0.8, 1.2], both signs of advantage
        const shifts = [0, 0.5, -0.5, 0.1, -0.1, 0.4, -0.35, 0.05];
        const oldLogp = Float32Array.from({ length: m }, (_, j) => logp[j * A + actions[j]!]! - shifts[j]!);
        const advantages = Float32Array.from([1, 1, -1, -0.5, 0.7, -1.2, 0.9, 0.3]);
        const returns = Float32Array.from({ length: m }, (_, j) => values[j]! + [0.5, -0.5, 0.05, -0.1, 1, -1, 0.15, 0][j]!);
        const oldValues = Float32Array.from({ length: m }, (_, j) => values[j]! + [0.3, -0.3, 0, 0.1, -0.25, 0.25, 0.05, -0.4][j]!);
        const out = {
          dLogits: new Float32Array(m * A),
          dValues: new Float32Array(m),
          logratio: new Float32Array(m),
          ratio: new Float32Array(m),
          pgCoef: new Float32Array(m),
        };
        const got = ppoLossGrad({ logits, values, actions, oldLogp, advantages, returns, oldValues, m, nActions: A }, coefs, out);
        // reference: the tfjs graph the agent differentiated before (log-softmax, masked log-prob, entropy, ppoLoss)
        const ref = tf.tidy(() => {
          const mask = tf.oneHot(tf.tensor1d(actions, "int32"), A);
          const f = (lg: tf.Tensor, v: tf.Tensor) => {
            const lpAll = tf.logSoftmax(lg as tf.Tensor2D);
            return ppoLoss(
              {
                newLogp: tf.sum(tf.mul(lpAll, mask), 1) as tf.Tensor1D,
                oldLogp: tf.tensor1d(oldLogp),
                advantages: tf.tensor1d(advantages),
                entropy: tf.neg(tf.sum(tf.mul(tf.exp(lpAll), lpAll), 1)) as tf.Tensor1D,
                newValue: v as tf.Tensor1D,
                oldValue: tf.tensor1d(oldValues),
                returns: tf.tensor1d(returns),
              },
              coefs,
            );
          };
          const lg = tf.tensor2d(logits, [m, A]);
          const v = tf.tensor1d(values);
          const [dl, dv] = tf.grads((a, b) => f(a!, b!).loss)([lg, v]);
          const l = f(lg, v);
          return {
            losses: [l.loss, l.policyLoss, l.valueLoss, l.entropy].map((x) => x.dataSync()[0]!),
            ratio: Array.from(l.ratio.dataSync()),
            dl: Array.from(dl!.dataSync()),
            dv: Array.from(dv!.dataSync()),
          };
        });
        [got.loss, got.policyLoss, got.valueLoss, got.entropy].forEach((x, i) => expect(x).toBeCloseTo(ref.losses[i]!, 5));
        out.ratio.forEach((x, j) => expect(x).toBeCloseTo(ref.ratio[j]!, 5));
        out.dLogits.forEach((x, i) => expect(x).toBeCloseTo(ref.dl[i]!, 6));
        out.dValues.forEach((x, j) => expect(x).toBeCloseTo(ref.dv[j]!, 6));
        // the ledger's coefficient: ratio x advantage / m where the clip passes gradient, else 0
        out.pgCoef.forEach((x, j) => {
          const passes = clipPassesGradient(out.ratio[j]!, advantages[j]!, 0.2);
          expect(x).toBeCloseTo(passes ? (out.ratio[j]! * advantages[j]!) / m : 0, 7);
        });
        expect(out.pgCoef.filter((x) => x === 0).length).toBeGreaterThan(0);
        await initBackend("cpu");
      });
    }
  }

  it("by hand: one sample in range, one clipped above, one clipped below", () => {
    // ratios e^0.1, e^0.5 (> 1.2), e^-0.5 (< 0.8)
    const coefs = { clipCoef: 0.2, clipVloss: false, entCoef: 0, vfCoef: 0 };
    const r = ppoLossJS(
      {
        newLogp: [0.1, 0.5, -0.5],
        oldLogp: [0, 0, 0],
        advantages: [1, 1, -1],
        entropy: [0, 0, 0],
        newValue: [0, 0, 0],
        oldValue: [0, 0, 0],
        returns: [0, 0, 0],
      },
      coefs,
    );
    // max(-A r, -A clip(r)): -e^0.1 ; -1.2 (clipped) ; max(e^-0.5, 0.8) = 0.8 (clipped)
    expect(r.policyLoss).toBeCloseTo((-Math.exp(0.1) - 1.2 + 0.8) / 3, 10);
  });

  it("clipPassesGradient is true exactly where the surrogate's gradient is non-zero", () => {
    const ratios = [0.5, 0.79, 0.95, 1.0, 1.1, 1.21, 1.6];
    const advs = [1.5, -0.7];
    for (const A of advs) {
      const grads = tf.tidy(() => {
        const adv = tf.fill([ratios.length], A) as tf.Tensor1D;
        const zeros = tf.zeros([ratios.length]) as tf.Tensor1D;
        const f = (newLogp: tf.Tensor) =>
          ppoLoss(
            {
              newLogp: newLogp as tf.Tensor1D,
              oldLogp: zeros,
              advantages: adv,
              entropy: zeros,
              newValue: zeros,
              oldValue: zeros,
              returns: zeros,
            },
            { clipCoef: 0.2, clipVloss: true, entCoef: 0, vfCoef: 0 },
          ).policyLoss;
        return tf
          .grad(f)(tf.tensor1d(ratios.map(Math.log)))
          .dataSync();
      });
      ratios.forEach((r, i) => expect(grads[i] !== 0).toBe(clipPassesGradient(r, A, 0.2)));
    }
    // by hand
    expect(clipPassesGradient(1.3, 1, 0.2)).toBe(false);
    expect(clipPassesGradient(1.3, -1, 0.2)).toBe(true);
    expect(clipPassesGradient(0.7, 1, 0.2)).toBe(true);
    expect(clipPassesGradient(0.7, -1, 0.2)).toBe(false);
  });

  it("explained variance", () => {
    expect(explainedVariance([1, 2, 3], [1, 2, 3])).toBe(1);
    expect(explainedVariance([0, 0, 0], [1, 2, 3])).toBeCloseTo(0, 10);
    expect(explainedVariance([1, 2], [5, 5])).toBeNaN();
  });
});

// ---------------------------------------------------------------- the agent

describe("PPO agent", () => {
  const dir = tempDir("rewardlab-ppo-");

  it("reports CleanRL's metrics, a ledger, and leaks no tensors over updates", () => {
    const config = ppoConfig({ ...tiny, totalSteps: 1000 });
    const { agent, vec } = agentOn("ppo", "TestChain-v0", 2, config, 3);
    runLoop(agent, vec, 32); // one update: first-call allocations settle
    const before = tf.memory().numTensors;
    const r = runLoop(agent, vec, 32 * 4);
    expect(tf.memory().numTensors).toBe(before);
    expect(r.updates).toHaveLength(4);
    const m = r.updates.at(-1)!.metrics;
    for (const k of [
      "losses/policy_loss",
      "losses/value_loss",
      "losses/entropy",
      "losses/approx_kl",
      "losses/old_approx_kl",
      "losses/clipfrac",
      "losses/explained_variance",
      "charts/learning_rate",
    ]) {
      expect(m).toHaveProperty([k]);
    }
    expect(m["losses/entropy"]).toBeGreaterThan(0);
    expect(r.updates.map((u) => u.update)).toEqual([2, 3, 4, 5]);
    expect(r.updates.at(-1)!.envSteps).toBe(160);
    const ledger = r.updates.at(-1)!.ledger!;
    expect(Object.keys(ledger.entries).length).toBeGreaterThan(0);
    for (const row of Object.values(ledger.entries)) expect(row).toHaveLength(2);
    vec.close();
    agent.dispose();
  });

  it("keeps learning past the annealing horizon (continued learning changes the weights)", () => {
    const config = ppoConfig({ ...tiny, totalSteps: 64 }); // 2 updates of 32 steps
    const { agent, vec } = agentOn<PPOAgent>("ppo", "TestChain-v0", 2, config, 5);
    runLoop(agent, vec, 64);
    expect(agent.updates).toBe(2);
    const weights = () => [...agent.actor.variables, ...agent.critic.variables].map((v) => Array.from(v.dataSync()));
    const before = weights();
    agent.resetRollout();
    const r = runLoop(agent, vec, 64);
    expect(r.updates.map((u) => u.metrics["charts/learning_rate"])).toEqual([config.learningRate, config.learningRate]);
    const after = weights();
    const changed = before.map((w, i) => w.reduce((n, x, j) => n + (x !== after[i]![j] ? 1 : 0), 0));
    // every weight tensor of both networks moved
    for (const n of changed) expect(n).toBeGreaterThan(0);
    vec.close();
    agent.dispose();
  });

  for (const backend of ["cpu", "wasm"] as const) {
    it(`one update of the fast path equals the tfjs reference update (autodiff through ppoLoss, the Adam class) (${backend})`, async () => {
      await initBackend(backend);
      const config = ppoConfig({ numEnvs: 2, numSteps: 8, numMinibatches: 1, updateEpochs: 1, hiddenSizes: [8, 8], learningRate: 0.01 });
      const info = envInfo("TestChain-v0", 2);
      const [fast, ref] = [new PPOAgent(info, config, 9), new PPOAgent(info, config, 9)];
      // the same rollout for both, collected by the run loop: `fast` acts, `ref` acts on the same observations (same seed, same
      // acting stream) and both observe the same transitions
      const obsRows: number[][] = [];
      const acts: number[] = [];
      const both: Agent = {
        name: "fast+ref",
        config: fast.config,
        needs: fast.needs,
        envSteps: 0,
        act(obs, ctx) {
          const act = fast.act(obs, ctx);
          ref.act(obs, ctx);
          for (let i = 0; i < 2; i++) obsRows.push(Array.from(obs.subarray(i * info.obsSize, (i + 1) * info.obsSize)));
          acts.push(...act.actions);
          return act;
        },
        actionProbs: (obs, batch) => fast.actionProbs(obs, batch),
        observe(t) {
          fast.observe(t);
          ref.observe(t);
        },
        readyToLearn: () => fast.readyToLearn(),
        learn: () => fast.learn(),
        save: (d) => fast.save(d),
        dispose: () => {},
      };
      const stepper = new Stepper(both, { env: "TestChain-v0", config: {}, reward: "keep", numEnvs: 2, seed: 9 });
      collectRollout(stepper);
      stepper.close();
      const { advantages, returns } = ref.rolloutTargets();
      const B = 16;
      const S = info.obsSize;
      const obsAll = Float32Array.from(obsRows.flat());
      const oldLogp = logSoftmax(ref.actor.forwardJS(obsAll, B), B, 2);
      const oldValues = ref.critic.forwardJS(obsAll, B);
      let mean = 0;
      for (const a of advantages) mean += a / B;
      const std = Math.sqrt(advantages.reduce((s, a) => s + (a - mean) ** 2, 0) / (B - 1));
      // the reference: the tfjs graph and the Adam class the agent used before its fast path
      tf.tidy(() => {
        const x = tf.tensor2d(obsAll, [B, S]);
        const mask = tf.oneHot(tf.tensor1d(acts, "int32"), 2);
        const params = [...ref.actor.variables, ...ref.critic.variables];
        const { grads } = tf.variableGrads(() => {
          const lp = tf.logSoftmax(ref.actor.apply(x));
          return ppoLoss(
            {
              newLogp: tf.sum(tf.mul(lp, mask), 1) as tf.Tensor1D,
              oldLogp: tf.tensor1d(Float32Array.from(acts, (a, j) => oldLogp[j * 2 + a]!)),
              advantages: tf.tensor1d(advantages.map((a) => (a - mean) / (std + 1e-8))),
              entropy: tf.neg(tf.sum(tf.mul(tf.exp(lp), lp), 1)) as tf.Tensor1D,
              newValue: tf.reshape(ref.critic.apply(x), [-1]) as tf.Tensor1D,
              oldValue: tf.tensor1d(oldValues),
              returns: tf.tensor1d(returns),
            },
            config,
          ).loss;
        }, params);
        ref.optimizer.step(
          params.map((p) => grads[p.name]!),
          annealedLearningRate(config, ref.computed, 1),
          config.maxGradNorm,
        );
      });
      fast.learn();
      const weights = (a: PPOAgent) =>
        [...a.actor.variables, ...a.critic.variables, a.optimizer.m, a.optimizer.v].map((v) => Array.from(v.dataSync()));
      const [got, want] = [weights(fast), weights(ref)];
      got.forEach((w, i) => w.forEach((x, j) => expect(x).toBeCloseTo(want[i]![j]!, 5)));
      // and the weights did move
      expect(got[2]).not.toEqual(weights(new PPOAgent(info, config, 9))[2]);
      fast.dispose();
      ref.dispose();
      await initBackend("cpu");
    });
  }

  it("resetRollout: the next update learns only from transitions observed after it", () => {
    const info: AgentEnvInfo = { envId: "hand", envConfig: {}, obsSize: 3, nActions: 2, numEnvs: 2, maxEpisodeSteps: 5 };
    const agent = new PPOAgent(info, ppoConfig({ numEnvs: 2, numSteps: 4, numMinibatches: 1, updateEpochs: 1, hiddenSizes: [4] }), 0);
    const feed = (key: number, reward: number) => {
      const obs = Float32Array.from([1, 0, 0, 0, 1, 0]);
      agent.observe({
        obs,
        act: agent.act(obs, { explore: true }),
        rewards: Float32Array.from([reward, reward]),
        terminated: new Uint8Array(2),
        truncated: new Uint8Array(2),
        nextObs: obs,
        finalObs: obs,
        stateKeys: Int32Array.from([key, key]),
        nextStateKeys: Int32Array.from([key, key]),
      });
    };
    // three steps of the old phase (rewarded, state key 7), then a new phase (zero reward, key 1)
    for (let t = 0; t < 3; t++) feed(7, 1);
    agent.resetRollout();
    expect(agent.readyToLearn()).toBe(false);
    expect(agent.rolloutTargets().steps).toBe(0);
    for (let t = 0; t < 3; t++) feed(1, 0);
    expect(agent.readyToLearn()).toBe(false);
    feed(1, 0);
    expect(agent.readyToLearn()).toBe(true);
    const stats = agent.learn();
    expect(Object.keys(stats.ledger!.entries)).toEqual(["1"]);
    expect(agent.envSteps).toBe(14);
    agent.dispose();
  });

  it("is deterministic for a seed on the cpu backend", () => {
    const trace = (seed: number) => {
      const { agent, vec } = agentOn("ppo", "TestChain-v0", 2, ppoConfig(tiny), seed);
      const actions: number[] = [];
      const orig = agent.act.bind(agent);
      agent.act = (obs, ctx) => {
        const a = orig(obs, ctx);
        actions.push(...a.actions);
        return a;
      };
      const r = runLoop(agent, vec, 96);
      agent.dispose();
      return { actions, metrics: r.updates.map((u) => u.metrics) };
    };
    const a = trace(11);
    const b = trace(11);
    expect(b).toEqual(a);
    expect(trace(12).actions).not.toEqual(a.actions);
  });

  it("saved then loaded acts identically, greedy and sampled", async () => {
    const info = envInfo("TestChain-v0", 2);
    const agent = createAgent("ppo", info, ppoConfig(tiny), 4) as PPOAgent;
    const vec = makeVector("TestChain-v0", 2);
    vec.reset(4);
    runLoop(agent, vec, 64);
    await agent.save(dir());
    const loaded = (await loadAgent(dir(), info)) as PPOAgent;
    expect(loaded.envSteps).toBe(agent.envSteps);
    expect(loaded.updates).toBe(agent.updates);
    expect(loaded.ledger.toJSON()).toEqual(JSON.parse(JSON.stringify(agent.ledger.toJSON())));
    const obs = new Float32Array(6 * 6);
    for (let p = 0; p < 6; p++) obs[p * 6 + p] = 1;
    expect(loaded.actionProbs(obs, 6)).toEqual(agent.actionProbs(obs, 6));
    expect(loaded.act(obs, { explore: false }).actions).toEqual(agent.act(obs, { explore: false }).actions);
    for (let k = 0; k < 20; k++) {
      const x = agent.act(obs, { explore: true });
      const y = loaded.act(obs, { explore: true });
      expect(y.actions).toEqual(x.actions);
      expect(y.logProbs).toEqual(x.logProbs);
      expect(y.values).toEqual(x.values);
    }
    // training continues identically too (same weights, Adam state and shuffle stream)
    const v1 = makeVector("TestChain-v0", 2);
    const v2 = makeVector("TestChain-v0", 2);
    v1.reset(9);
    v2.reset(9);
    const r1 = runLoop(agent, v1, 32);
    const r2 = runLoop(loaded, v2, 32);
    expect(r2.updates.map((u) => u.metrics)).toEqual(r1.updates.map((u) => u.metrics));
    await expect(loadAgent(dir(), envInfo("TestBandit-v0", 2))).rejects.toThrow(/obs/);
    agent.dispose();
    loaded.dispose();
  });

  it("learns the contextual bandit: clearly prefers the paying arm in each context", () => {
    // fewer, larger steps than the defaults keep this fast on the cpu backend
    const config = ppoConfig({ numEnvs: 4, numSteps: 32, numMinibatches: 2, updateEpochs: 2, totalSteps: 1024, learningRate: 3e-3 });
    const { agent, vec } = agentOn("ppo", "TestBandit-v0", 4, config, 0);
    const probsBefore = agent.actionProbs(Float32Array.from([1, 0, 0, 1]), 2);
    expect(probsBefore[0]).toBeCloseTo(0.5, 1);
    const r = runLoop(agent, vec, 1024);
    // context 0 pays arm 0, context 1 pays arm 1
    for (const paying of payingArm(agent)) expect(paying).toBeGreaterThan(0.9);
    const late = r.episodeReturns.slice(-200);
    expect(late.reduce((a, b) => a + b, 0) / late.length).toBeGreaterThan(0.8);
    agent.dispose();
  });

  it("learns to walk right on the chain (credit over several steps, with truncation)", () => {
    const config = ppoConfig({
      numEnvs: 4,
      numSteps: 32,
      numMinibatches: 2,
      updateEpochs: 2,
      totalSteps: 3072,
      learningRate: 3e-3,
      hiddenSizes: [32, 32],
    });
    for (const right of trainedOnChain("ppo", config, 4, 3072)) expect(right).toBeGreaterThan(0.9);
  });
});

describe("smoke: two updates on every registered environment", () => {
  it.each(builtinEnvIds())("%s", (id) => {
    const config = ppoConfig({ ...tiny, numSteps: 8 });
    const { agent, vec } = agentOn("ppo", id, 2, config, 0);
    const r = runLoop(agent, vec, 32);
    expect(r.updates).toHaveLength(2);
    for (const v of Object.values(r.updates[1]!.metrics)) expect(typeof v).toBe("number");
    expect(Number.isFinite(r.updates[1]!.metrics["losses/policy_loss"])).toBe(true);
    vec.close();
    agent.dispose();
  });
});
