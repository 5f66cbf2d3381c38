/**
 * The Agent contract. The run loop (experiments/) owns the interaction:
 * act on the whole vector env at once, hand the transition back through
 * observe(), and call learn() when the agent says it is ready.
 *
 * Model-free agents see observations, actions, rewards and the
 * terminated/truncated flags, nothing else (never `info`). A model-based
 * agent may also see state keys and, with the simulator model, env handles
 * for snapshot/restore: it declares so in `needs`.
 */
import type { Env } from "../envs/core.ts";
import type { RewardTransform } from "../envs/registry.ts";
import type { ActivationEdit, Inspectable } from "./shared/activations.ts";

/** What the run loop tells an agent about the environment it will act in. */
export interface AgentEnvInfo {
  envId: string;
  /** The env's resolved config (variant included); the planner makes simulator copies from it. */
  envConfig: Record<string, unknown>;
  obsSize: number;
  /** The observation space's shape and layout (agents/shared/activations.ts imageShapeOf): convolutional policies need an image. */
  obsShape?: number[];
  obsLayout?: "hwc" | "chw";
  nActions: number;
  /** Number of env copies acted on at once. */
  numEnvs: number;
  maxEpisodeSteps: number;
  /** The env's reward range (its spec's), where known: optimistic planners take their bound from it. */
  rewardRange?: [number, number];
}

export interface ActContext {
  /** Sample (true) or act greedily / with learning's exploration off (false). */
  explore: boolean;
  /** State keys of each copy (only passed when needs.stateKeys). */
  stateKeys?: Int32Array;
  /** The live env copies (only passed when needs.simulator); never stepped by the agent. */
  envs?: readonly Env[];
  /**
   * How the live envs were made (only passed when needs.simulator): the variant
   * and reward wrapper actually in play (a probe's test variant, reward removed,
   * ...). The same facts as each live env's `origin`; the planner clones the
   * live envs themselves (Env.clone) rather than rebuilding from this.
   */
  simulator?: { envId: string; envConfig: Record<string, unknown>; reward: RewardTransform };
  /** Steps left in each copy's episode before its time limit, the Env contract's stepsLeft() (only passed when needs.stepsLeft). */
  stepsLeft?: readonly number[];
}

export interface ActResult {
  actions: Int32Array;
  /** log pi(a|s) of the chosen actions (policy-gradient learners). */
  logProbs?: Float32Array;
  /** V(s) estimates (learners with a critic). */
  values?: Float32Array;
  /**
   * Agents that search before acting: the root visit counts of the searches
   * that chose these actions (batch x nActions, row-major). The run streams
   * them per state (update events, `search`) and the run view paints them.
   */
  searchVisits?: Float32Array;
}

/** One vector step, as seen by a learner. Buffers are reused by the loop: copy what you keep. */
export interface Transition {
  obs: Float32Array;
  act: ActResult;
  rewards: Float32Array;
  terminated: Uint8Array;
  truncated: Uint8Array;
  /** Observations after the step (already the next episode's first obs where one ended). */
  nextObs: Float32Array;
  /** The ended episode's last observation, where terminated or truncated. */
  finalObs: Float32Array;
  /** State keys before the step (-1 where the env has none), for the ledger and tabular models. */
  stateKeys: Int32Array;
  /** State keys after the step (pre-reset where an episode ended). */
  nextStateKeys: Int32Array;
}

/**
 * The reinforcement ledger's delta for one update: per state key, per action,
 * the sum over samples of learning rate x the sample's coefficient on grad log pi
 * in the loss (PPO: ratio x advantage / minibatch size where the clip passes
 * gradient; REINFORCE: weight / batch size; see agents/shared/ledger.ts).
 */
export interface LedgerDelta {
  /** state key -> per-action reinforcement (length nActions). */
  entries: Record<string, number[]>;
  /** Sum over all entries (signed). */
  total: number;
  /** Sum of absolute values. */
  totalAbs: number;
}

export interface UpdateStats {
  /** 1-based update index. */
  update: number;
  /** Env steps consumed so far (over all copies). */
  envSteps: number;
  /** Namespaced scalars: "losses/policy_loss", "losses/approx_kl", "charts/learning_rate", ... */
  metrics: Record<string, number>;
  ledger?: LedgerDelta;
}

/**
 * A scripted route played on a real env, for an agent's own predictor to
 * rate (a probe's knowledge columns): the observations s_0 .. s_T and the
 * T actions between them.
 */
export interface Route {
  obs: Float32Array[];
  actions: Int32Array;
  /** The last step ended the episode (s_T is terminal). */
  terminated: boolean;
}

/** What an agent's predictor says a route returns. */
export interface RouteRating {
  /** "critic", "baseline", "value head", "world model". */
  predictor: string;
  value: number;
}

/**
 * The last state of a route from which the agent still acts: s_T, or s_(T-1)
 * when the route's last step ended the episode (whose value then covers that
 * step's reward). A value function rates a route by this state's value.
 */
export function routeEnd(route: Route): Float32Array {
  const T = route.actions.length;
  return route.obs[route.terminated && T > 0 ? T - 1 : T]!;
}

export interface AgentNeeds {
  stateKeys: boolean;
  simulator: boolean;
  /** The steps left in each copy's episode (ActContext.stepsLeft): a search on a learned model caps its depth there. */
  stepsLeft?: boolean;
}

export interface Agent {
  readonly name: string;
  readonly config: Readonly<Record<string, unknown>>;
  readonly needs: AgentNeeds;
  act(obs: Float32Array, ctx: ActContext): ActResult;
  /**
   * Action probabilities for each observation (batch x nActions, row-major),
   * under the policy used when explore is false; used by probes (KL, counting).
   */
  actionProbs(obs: Float32Array, batch: number, ctx?: Omit<ActContext, "explore">): Float32Array;
  observe(t: Transition): void;
  readyToLearn(): boolean;
  learn(): UpdateStats;
  /**
   * Optional: forget the transitions collected since the last update, so that
   * a new phase of learning (extinction, an intervention that changes the
   * reward or variant) starts from a fresh rollout. Weights, optimiser state
   * and step counts are kept.
   */
  resetRollout?(): void;
  /** Env steps observed so far. */
  readonly envSteps: number;
  /** Writes the agent to a folder: agent.json (config, steps, env info) plus weights or model files. */
  save(dir: string): Promise<void>;
  /** Releases tensors. */
  dispose(): void;
  /**
   * Optional: the agent's own predictor's estimate of a scripted route's
   * return (a critic, baseline or value head: the value of routeEnd(route);
   * a world model: its predicted rewards summed along the route, each step
   * predicted from the route's true observation). Null: no predictor.
   */
  rateRoute?(route: Route): RouteRating | null;
  /**
   * Optional, agents that search: sets the simulations per decision from now
   * on (a probe's search-budget dial). 0 is not a budget: the network alone is
   * an eval mode.
   */
  setSearchBudget?(simulations: number): void;
  /**
   * Agents with several ways to act when tested (AgentRegistration.evalModes):
   * switches to one of them. Learning-time acting is the first mode.
   */
  setEvalMode?(mode: string): void;
  /**
   * Optional: the policy network's named layers, recorded and edited in a
   * forward pass (agents/shared/activations.ts).
   */
  inspect?(): Inspectable;
  /**
   * Optional, with inspect(): edits in force for act() and actionProbs()
   * from now on (an empty list removes them); learning never sees them.
   * Throws a ValidationError for an edit that does not fit the network.
   */
  setEdits?(edits: readonly ActivationEdit[]): void;
}

export interface AgentRegistration<C = Record<string, unknown>> {
  name: string;
  description: string;
  /** JSON Schema with defaults; additionalProperties false. */
  configSchema: object;
  /** Model-free learners are "model-free"; the planner is "model-based". */
  kind: "model-free" | "model-based";
  create(env: AgentEnvInfo, config: C, seed: number): Agent;
  /**
   * Ways the trained agent can act at test (expit: "search", "network"); the
   * first is how it acts in training. Probes report one row per mode.
   */
  evalModes?: readonly string[];
  /** Loads from a folder written by save(). */
  load(dir: string, env: AgentEnvInfo): Promise<Agent>;
}
