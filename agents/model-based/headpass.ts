/**
 * One world-model member's training pass that computes only the taken
 * action's output head. A member (agents/model-based/worldmodel.ts) has one
 * head of obsSize + 2 outputs per action, and its loss reads only the head
 * of the action each row took: the other heads' outputs are never used and
 * their gradients are exactly 0. So the hidden layers run through MLPPass
 * (its last layer left linear; tanh applied here), and then, per action, the
 * rows that took it multiply that action's head alone: the output layer, most
 * of a member's multiply-adds, costs 1/nActions of the whole-member pass.
 * The head's weights are the left operand of each multiply (out^T = W^T h^T,
 * dh^T = W dOut^T): XNNPACK repacks a right operand whenever it changes, and
 * the weights change at every step while the rows of one action are few.
 * Same maths as MLPPass over the whole member, within float32 rounding
 * (test/agents/model-based/worldmodel.test.ts).
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
  private readonly b: Float32Array[] = [];
  /**
   * The rows of one action (n of them): hidden activations transposed with a
   * ones row ((H + 1) x n), head outputs transposed (O x n), d head (n x O)
   * and transposed (O x n), d hidden transposed (H x n).
   */
  private readonly hgT: MatBuffer;
  private readonly outT: MatBuffer;
  private readonly dA: MatBuffer;
  private readonly dAT: MatBuffer;
  private readonly dHT: MatBuffer;
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
      this.b.push(new Float32Array(O));
    }
    this.hgT = mm.alloc((H + 1) * maxRows);
    this.outT = mm.alloc(O * maxRows);
    this.dA = mm.alloc(maxRows * O);
    this.dAT = mm.alloc(O * maxRows);
    this.dHT = mm.alloc(H * maxRows);
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
      // W's rows are runs of the flat vector (copied whole); W^T is written row by row from W
      for (let i = 0; i < H; i++) w.set(flat.subarray(wOut + i * A * O + a * O, wOut + i * A * O + (a + 1) * O), i * O);
      for (let j = 0; j < O; j++) {
        const row = j * H;
        for (let i = 0; i < H; i++) wT[row + i] = w[i * O + j]!;
      }
      // left operands: read in place, no touch
      this.b[a]!.set(flat.subarray(bOut + a * O, bOut + (a + 1) * O));
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
      this.gatherHidden(rows, n);
      // out^T = W^T h^T, then the bias, back in batch order
      this.mm.matmul(this.wT[a]!, this.hgT, this.outT, O, H, n);
      const outT = this.outT.view();
      const b = this.b[a]!;
      for (let k = 0; k < n; k++) {
        const o = rows[k]! * O;
        for (let j = 0; j < O; j++) this.out[o + j] = outT[j * n + k]! + b[j]!;
      }
    }
    return this.out.subarray(0, m * O);
  }

  /** hgT = the tanh activations of `rows` transposed, plus a ones row ((H + 1) x n), as a fresh right operand. */
  private gatherHidden(rows: Int32Array, n: number): void {
    const H = this.H;
    const hgT = this.hgT.view();
    for (let k = 0; k < n; k++) {
      const r = rows[k]! * H;
      for (let i = 0; i < H; i++) hgT[i * n + k] = this.h[r + i]!;
    }
    hgT.fill(1, H * n, (H + 1) * n);
    this.hgT.touch();
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
      this.gatherHidden(rows, n);
      const dA = this.dA.view();
      const dAT = this.dAT.view();
      for (let k = 0; k < n; k++) {
        const r = rows[k]! * O;
        for (let j = 0; j < O; j++) {
          const g = dOut[r + j]!;
          dA[k * O + j] = g;
          dAT[j * n + k] = g;
        }
      }
      this.dA.touch();
      this.dAT.touch();
      // [dW; db] = [h^T; 1] dOut over this action's rows
      this.mm.matmul(this.hgT, this.dA, this.dW, H + 1, n, O);
      const dW = this.dW.view();
      for (let i = 0; i < H; i++) grads.set(dW.subarray(i * O, (i + 1) * O), wOut + i * A * O + a * O);
      grads.set(dW.subarray(H * O, (H + 1) * O), bOut + a * O);
      // d hidden^T = W dOut^T, then through tanh
      this.mm.matmul(this.w[a]!, this.dAT, this.dHT, H, O, n);
      const dHT = this.dHT.view();
      for (let k = 0; k < n; k++) {
        const r = rows[k]! * H;
        for (let i = 0; i < H; i++) {
          const y = h[r + i]!;
          this.dz[r + i] = dHT[i * n + k]! * (1 - y * y);
        }
      }
    }
    this.body.backward(this.dz, m, grads, offset);
  }

  dispose(): void {
    this.body.dispose();
    for (const list of [this.w, this.wT]) for (const buf of list) this.mm.free(buf);
    for (const buf of [this.hgT, this.outT, this.dA, this.dAT, this.dHT, this.dW]) this.mm.free(buf);
  }
}
