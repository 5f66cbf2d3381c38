/**
 * One world-model member's training pass that computes only the taken
 * action's output head. A member (agents/model-based/worldmodel.ts) has one
 * head of obsSize + 2 outputs per action, and its loss reads only the head
 * of the action each row took: the other heads' outputs are never used and
 * their gradients are exactly 0. So the hidden layers run through MLPPass
 * (its last layer left linear; tanh applied here), and then, per action, the
 * rows that took it multiply that action's head alone: the output layer, most
 * of a member's multiply-adds, costs 1/nActions of the whole-member pass.
 * Same maths as MLPPass over the whole member, and on the plain-JavaScript
 * multiplies the same numbers (test/agents/model-based/worldmodel.test.ts).
 *
 * Parameters and gradients use the member's variable order (W0, b0, ...,
 * W_out [hidden x nActions * head], b_out), from an offset in a flat vector.
 */
import type { MatBuffer, Matmul } from "../shared/backend.ts";
import { MLPPass } from "../shared/networks.ts";

export class ActionHeadPass {
  readonly numParams: number;
  private readonly body: MLPPass;
  private readonly bodyParams: number;
  /** Hidden width (the head's input) and one head's size. */
  private readonly H: number;
  private readonly O: number;
  /** Per action: its head's weights (H x O), their transpose (O x H) and bias (O). */
  private readonly w: MatBuffer[] = [];
  private readonly wT: MatBuffer[] = [];
  private readonly b: MatBuffer[] = [];
  /** The rows of one action: hidden activations (n x H), their transpose with a ones row ((H + 1) x n), head outputs and gradients (n x O), d hidden (n x H). */
  private readonly hg: MatBuffer;
  private readonly hgT: MatBuffer;
  private readonly outA: MatBuffer;
  private readonly dA: MatBuffer;
  private readonly dH: MatBuffer;
  /** [dW; db] of one action's head ((H + 1) x O). */
  private readonly dW: MatBuffer;
  /** Batch order: tanh activations (rows x H), the taken heads' outputs (rows x O), d loss / d pre-activation (rows x H). */
  private readonly h: Float32Array;
  private readonly out: Float32Array;
  private readonly dz: Float32Array;
  /** Rows of the last forward per action, in batch order. */
  private readonly rowsOf: Int32Array[];
  private readonly counts: Int32Array;

  constructor(
    sizes: readonly number[],
    readonly nActions: number,
    private readonly mm: Matmul,
    readonly maxRows: number,
  ) {
    const A = nActions;
    this.H = sizes[sizes.length - 2]!;
    this.O = sizes[sizes.length - 1]! / A;
    if (!Number.isInteger(this.O)) throw new RangeError(`ActionHeadPass: ${sizes[sizes.length - 1]} outputs for ${A} actions`);
    const [H, O] = [this.H, this.O];
    this.body = new MLPPass(sizes.slice(0, -1), mm, maxRows);
    this.bodyParams = this.body.numParams;
    this.numParams = this.bodyParams + H * A * O + A * O;
    for (let a = 0; a < A; a++) {
      this.w.push(mm.alloc(H * O));
      this.wT.push(mm.alloc(O * H));
      this.b.push(mm.alloc(O));
    }
    this.hg = mm.alloc(maxRows * H);
    this.hgT = mm.alloc((H + 1) * maxRows);
    this.outA = mm.alloc(maxRows * O);
    this.dA = mm.alloc(maxRows * O);
    this.dH = mm.alloc(maxRows * H);
    this.dW = mm.alloc((H + 1) * O);
    this.h = new Float32Array(maxRows * H);
    this.out = new Float32Array(maxRows * O);
    this.dz = new Float32Array(maxRows * H);
    this.rowsOf = Array.from({ length: A }, () => new Int32Array(maxRows));
    this.counts = new Int32Array(A);
  }

  /** Loads the member's weights from a flat vector in variable order, from `offset`. */
  setParams(flat: Float32Array, offset = 0): void {
    const [H, O, A] = [this.H, this.O, this.nActions];
    this.body.setParams(flat, offset);
    const wOut = offset + this.bodyParams;
    const bOut = wOut + H * A * O;
    for (let a = 0; a < A; a++) {
      const w = this.w[a]!.view();
      const wT = this.wT[a]!.view();
      for (let i = 0; i < H; i++) {
        const from = wOut + i * A * O + a * O;
        for (let j = 0; j < O; j++) {
          const v = flat[from + j]!;
          w[i * O + j] = v;
          wT[j * H + i] = v;
        }
      }
      this.b[a]!.view().set(flat.subarray(bOut + a * O, bOut + (a + 1) * O));
      this.w[a]!.touch();
      this.wT[a]!.touch();
      this.b[a]!.touch();
    }
  }

  /** Forward of `m` rows of x: row r's head for action[r]; returns m x O (valid until the next call). */
  forward(x: Float32Array, m: number, action: Int32Array): Float32Array {
    const [H, O] = [this.H, this.O];
    const z = this.body.forward(x, m);
    const h = this.h;
    for (let i = 0; i < m * H; i++) h[i] = Math.tanh(z[i]!);
    this.counts.fill(0);
    for (let r = 0; r < m; r++) {
      const a = action[r]!;
      this.rowsOf[a]![this.counts[a]!++] = r;
    }
    for (let a = 0; a < this.nActions; a++) {
      const n = this.counts[a]!;
      if (n === 0) continue;
      const rows = this.rowsOf[a]!;
      const hg = this.hg.view();
      for (let k = 0; k < n; k++) hg.set(h.subarray(rows[k]! * H, (rows[k]! + 1) * H), k * H);
      this.mm.matmul(this.hg, this.w[a]!, this.outA, n, H, O, this.b[a]!);
      const outA = this.outA.view();
      for (let k = 0; k < n; k++) this.out.set(outA.subarray(k * O, (k + 1) * O), rows[k]! * O);
    }
    return this.out.subarray(0, m * O);
  }

  /** Gradients of the last forward's `m` rows given d loss / d taken head (m x O), written into `grads` from `offset`. */
  backward(dOut: Float32Array, m: number, grads: Float32Array, offset = 0): void {
    const [H, O, A] = [this.H, this.O, this.nActions];
    const wOut = offset + this.bodyParams;
    const bOut = wOut + H * A * O;
    // the heads no row took get gradient 0
    grads.fill(0, wOut, bOut + A * O);
    const h = this.h;
    for (let a = 0; a < A; a++) {
      const n = this.counts[a]!;
      if (n === 0) continue;
      const rows = this.rowsOf[a]!;
      // [dW; db] = [h^T; 1] dOut over this action's rows
      const hgT = this.hgT.view();
      const dA = this.dA.view();
      for (let k = 0; k < n; k++) {
        const r = rows[k]!;
        for (let i = 0; i < H; i++) hgT[i * n + k] = h[r * H + i]!;
        dA.set(dOut.subarray(r * O, (r + 1) * O), k * O);
      }
      hgT.fill(1, H * n, (H + 1) * n);
      this.dA.touch();
      this.mm.matmul(this.hgT, this.dA, this.dW, H + 1, n, O);
      const dW = this.dW.view();
      for (let i = 0; i < H; i++) grads.set(dW.subarray(i * O, (i + 1) * O), wOut + i * A * O + a * O);
      grads.set(dW.subarray(H * O, (H + 1) * O), bOut + a * O);
      // d hidden = dOut W^T, then through tanh
      this.mm.matmul(this.dA, this.wT[a]!, this.dH, n, O, H);
      const dH = this.dH.view();
      for (let k = 0; k < n; k++) {
        const r = rows[k]!;
        for (let i = 0; i < H; i++) {
          const y = h[r * H + i]!;
          this.dz[r * H + i] = dH[k * H + i]! * (1 - y * y);
        }
      }
    }
    this.body.backward(this.dz, m, grads, offset);
  }

  dispose(): void {
    this.body.dispose();
    for (const list of [this.w, this.wT, this.b]) for (const buf of list) this.mm.free(buf);
    for (const buf of [this.hg, this.hgT, this.outA, this.dA, this.dH, this.dW]) this.mm.free(buf);
  }
}
