/**
 * PUCT search (AlphaZero's tree search, single player, discounted rewards),
 * on flat typed arrays reused from one decision to the next.
 *
 * A node is a state; an edge (node, action) holds the prior P from the
 * policy head, the visit count N, the summed backed-up return W, the reward
 * and termination the model gave on its first traversal, and the child.
 * One simulation descends by
 *   a* = argmax_a  Qn(s, a) + cPuct * P(s, a) * sqrt(N(s)) / (1 + N(s, a)),
 * where Qn is Q = W / N min-max normalised over the whole tree (rewards here
 * have any scale; MuZero does the same) and an unvisited edge takes the
 * node's own value estimate; expands one edge with the model; evaluates the
 * new state with the network (value v, priors); and backs up
 * G = r + discount * (1 - p_terminal) * G from v. The depth is capped (by
 * the steps left in the episode, or a horizon): a leaf at the cap is worth the
 * network's value of it, as any leaf. The time limit truncates, it does not
 * end the MDP, and training bootstraps a truncated episode from V(final
 * observation) the same way (agents/model-based/expit.ts).
 *
 * The model is the caller's (`SearchDynamics`): the true simulator through
 * snapshot/restore (AlphaZero), or a learned world model (MuZero-like, here on
 * decoded observations). Selection ties go to the lowest action, so a search
 * is a deterministic function of its inputs; the only randomness is the root
 * noise, drawn from the caller's Rng.
 */
import type { Rng } from "../../envs/rng.ts";

/** What the search steps. `S` is the model's state handle (an env snapshot, an observation). */
export interface SearchDynamics<S> {
  /**
   * The outcome of `action` from `state`: reward, termination probability
   * (0/1 for the simulator), and the next state (null when the episode
   * surely ended there); the next observation is written into `obs`. The
   * returned object may be reused by the next call: read it at once.
   */
  step(state: S, action: number, obs: Float32Array): { state: S | null; reward: number; terminal: number };
}

/** The network's view of an observation: priors (written into `priors`, summing to 1) and the value, returned. */
export type Evaluator = (obs: Float32Array, priors: Float32Array) => number;

export interface PuctOptions {
  simulations: number;
  cPuct: number;
  discount: number;
  /** Depth cap (steps left in the episode, or a horizon); a leaf there is worth its network value. */
  maxDepth: number;
  /** Root Dirichlet noise (AlphaZero's exploration); none when noiseFraction is 0. */
  dirichletAlpha: number;
  noiseFraction: number;
}

export interface SearchResult {
  /** Root visit counts per action. */
  visits: Int32Array;
  /** Root Q per action (NaN where unvisited). */
  q: Float64Array;
  /** The search's value of the root: visit-weighted Q (the network's value if nothing was visited). */
  value: number;
  /** The network's value of the root. */
  networkValue: number;
  /** Network evaluations made (root included). */
  evaluations: number;
  /** Model steps taken (edges expanded). */
  modelSteps: number;
}

const UNEXPANDED = -1;
const ENDED = -2;

export class Puct<S> {
  private capacity = 0;
  private nodes = 0;
  private states: (S | null)[] = [];
  private nodeVisits = new Int32Array(0);
  private nodeValue = new Float64Array(0);
  private depth = new Int32Array(0);
  private prior = new Float32Array(0);
  private visits = new Int32Array(0);
  private valueSum = new Float64Array(0);
  private reward = new Float64Array(0);
  private terminal = new Float64Array(0);
  private child = new Int32Array(0);
  /** The edges of the current simulation's path, root first. */
  private pathEdges = new Int32Array(1);
  private readonly priorsBuf: Float32Array;
  private readonly obsBuf: Float32Array;
  private readonly noise: Float64Array;
  private qMin = Infinity;
  private qMax = -Infinity;

  constructor(
    readonly nActions: number,
    readonly obsSize: number,
  ) {
    this.priorsBuf = new Float32Array(nActions);
    this.obsBuf = new Float32Array(obsSize);
    this.noise = new Float64Array(nActions);
  }

  private reserve(n: number): void {
    if (n <= this.capacity) return;
    const A = this.nActions;
    this.capacity = n;
    this.states = new Array(n).fill(null);
    this.nodeVisits = new Int32Array(n);
    this.nodeValue = new Float64Array(n);
    this.depth = new Int32Array(n);
    this.prior = new Float32Array(n * A);
    this.visits = new Int32Array(n * A);
    this.valueSum = new Float64Array(n * A);
    this.reward = new Float64Array(n * A);
    this.terminal = new Float64Array(n * A);
    this.child = new Int32Array(n * A);
    this.pathEdges = new Int32Array(n + 1);
  }

  private addNode(state: S, depth: number, obs: Float32Array, evaluate: Evaluator): number {
    const A = this.nActions;
    const n = this.nodes++;
    this.states[n] = state;
    this.nodeVisits[n] = 0;
    this.depth[n] = depth;
    this.nodeValue[n] = evaluate(obs, this.priorsBuf);
    for (let a = 0; a < A; a++) {
      const e = n * A + a;
      this.prior[e] = this.priorsBuf[a]!;
      this.visits[e] = 0;
      this.valueSum[e] = 0;
      this.child[e] = UNEXPANDED;
    }
    return n;
  }

  /** Runs the search from `root` (observation `rootObs`); `rng` is only used for the root noise. */
  search(root: S, rootObs: Float32Array, dynamics: SearchDynamics<S>, evaluate: Evaluator, opts: PuctOptions, rng: Rng): SearchResult {
    const A = this.nActions;
    this.reserve(opts.simulations + 1);
    this.nodes = 0;
    this.qMin = Infinity;
    this.qMax = -Infinity;
    let evaluations = 1;
    let modelSteps = 0;
    this.addNode(root, 0, rootObs, evaluate);
    if (opts.noiseFraction > 0) {
      dirichlet(opts.dirichletAlpha, rng, this.noise);
      for (let a = 0; a < A; a++) this.prior[a] = (1 - opts.noiseFraction) * this.prior[a]! + opts.noiseFraction * this.noise[a]!;
    }
    // a path descends one node per edge, so it is never longer than the tree has nodes
    const pathEdges = this.pathEdges;
    for (let sim = 0; sim < opts.simulations; sim++) {
      let pathLength = 0;
      let node = 0;
      let leaf = 0;
      if (opts.maxDepth > 0) {
        for (;;) {
          const a = this.select(node, opts.cPuct);
          const e = node * A + a;
          pathEdges[pathLength++] = e;
          const c = this.child[e]!;
          if (c === ENDED) break;
          if (c >= 0) {
            node = c;
            if (this.depth[c]! >= opts.maxDepth) {
              leaf = this.nodeValue[c]!;
              break;
            }
            continue;
          }
          // expand the edge with the model, evaluate the new state with the network
          const out = dynamics.step(this.states[node]!, a, this.obsBuf);
          modelSteps++;
          this.reward[e] = out.reward;
          this.terminal[e] = out.terminal;
          if (out.state === null || this.nodes >= this.capacity) {
            this.child[e] = ENDED;
            break;
          }
          const n = this.addNode(out.state, this.depth[node]! + 1, this.obsBuf, evaluate);
          evaluations++;
          this.child[e] = n;
          leaf = this.nodeValue[n]!;
          break;
        }
      }
      // backup
      let g = leaf;
      for (let i = pathLength - 1; i >= 0; i--) {
        const e = pathEdges[i]!;
        g = this.reward[e]! + opts.discount * (1 - this.terminal[e]!) * g;
        this.visits[e]!++;
        this.valueSum[e]! += g;
        this.nodeVisits[Math.floor(e / A)]!++;
        const q = this.valueSum[e]! / this.visits[e]!;
        if (q < this.qMin) this.qMin = q;
        if (q > this.qMax) this.qMax = q;
      }
    }
    const visits = new Int32Array(A);
    const q = new Float64Array(A);
    let total = 0;
    let weighted = 0;
    for (let a = 0; a < A; a++) {
      visits[a] = this.visits[a]!;
      q[a] = visits[a]! > 0 ? this.valueSum[a]! / visits[a]! : Number.NaN;
      if (visits[a]! > 0) {
        total += visits[a]!;
        weighted += this.valueSum[a]!;
      }
    }
    // release the states (snapshots can be large)
    for (let n = 0; n < this.nodes; n++) this.states[n] = null;
    const networkValue = this.nodeValue[0]!;
    return { visits, q, value: total > 0 ? weighted / total : networkValue, networkValue, evaluations, modelSteps };
  }

  private normalised(q: number): number {
    const range = this.qMax - this.qMin;
    return range > 0 ? (q - this.qMin) / range : 0.5;
  }

  private select(node: number, cPuct: number): number {
    const A = this.nActions;
    const sqrtN = Math.sqrt(Math.max(1, this.nodeVisits[node]!));
    const fpu = this.normalised(this.nodeValue[node]!);
    let best = 0;
    let bestScore = -Infinity;
    for (let a = 0; a < A; a++) {
      const e = node * A + a;
      const n = this.visits[e]!;
      const qn = n > 0 ? this.normalised(this.valueSum[e]! / n) : fpu;
      const score = qn + (cPuct * this.prior[e]! * sqrtN) / (1 + n);
      if (score > bestScore) {
        bestScore = score;
        best = a;
      }
    }
    return best;
  }
}

/** A Dirichlet(alpha, ..., alpha) draw into `out` (Gamma draws by Marsaglia and Tsang, boosted for alpha < 1). */
export function dirichlet(alpha: number, rng: Rng, out: Float64Array): Float64Array {
  let sum = 0;
  for (let i = 0; i < out.length; i++) {
    out[i] = gamma(alpha, rng);
    sum += out[i]!;
  }
  for (let i = 0; i < out.length; i++) out[i] = sum > 0 ? out[i]! / sum : 1 / out.length;
  return out;
}

function gamma(alpha: number, rng: Rng): number {
  if (alpha < 1) return gamma(alpha + 1, rng) * (1 - rng.next()) ** (1 / alpha);
  const d = alpha - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = rng.normal();
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = 1 - rng.next();
    if (Math.log(u) < 0.5 * x * x + d - d * v + d * Math.log(v)) return d * v;
  }
}
