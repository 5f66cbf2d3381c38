/**
 * TensorFlow.js backend choice, made once at start:
 *   tensorflow  @tensorflow/tfjs-node (optional dependency; native libtensorflow)
 *   wasm        @tensorflow/tfjs-backend-wasm (ships its .wasm files; SIMD, one thread in Node)
 *   cpu         plain JavaScript kernels (slowest, always there, bit-for-bit deterministic)
 *
 * The choice comes from the argument, else the REWARDLAB_BACKEND env var,
 * else the first of the list above that initialises. A missing or broken
 * backend never throws: the next one is tried and the reason is reported to
 * the optional logger. Callers log the returned name.
 */
import * as tf from "@tensorflow/tfjs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

import { BACKENDS, type BackendName } from "./backendnames.ts";

export { BACKENDS, type BackendName, parseBackend } from "./backendnames.ts";

/** Receives one line per decision ("backend wasm", "tensorflow unavailable: ..."). */
export type BackendLogger = (message: string) => void;

let current: BackendName | null = null;
let wasmPathsSet = false;
let tfjsNode: Promise<boolean> | null = null;

function isBackendName(x: unknown): x is BackendName {
  return typeof x === "string" && (BACKENDS as readonly string[]).includes(x);
}

/** Imports @tensorflow/tfjs-node once; true when it loaded and registered "tensorflow". */
function loadTfjsNode(log?: BackendLogger): Promise<boolean> {
  tfjsNode ??= (async () => {
    // a computed specifier keeps TypeScript and bundlers from requiring the optional package
    const specifier = ["@tensorflow", "tfjs-node"].join("/");
    try {
      await import(specifier);
      return tf.findBackendFactory("tensorflow") !== null;
    } catch (err) {
      log?.(`tensorflow unavailable: ${(err as Error).message.split("\n")[0]}`);
      return false;
    }
  })();
  return tfjsNode;
}

/** Points the wasm backend at the package's own dist folder (a plain path: Node reads it with fs). */
async function prepareWasm(): Promise<void> {
  if (wasmPathsSet) return;
  const wasm = await import("@tensorflow/tfjs-backend-wasm");
  const require = createRequire(import.meta.url);
  const dist = dirname(require.resolve("@tensorflow/tfjs-backend-wasm"));
  wasm.setWasmPaths(join(dist, "/"));
  wasmPathsSet = true;
}

async function trySet(name: BackendName, log?: BackendLogger): Promise<boolean> {
  try {
    if (name === "tensorflow" && !(await loadTfjsNode(log))) return false;
    if (name === "wasm") await prepareWasm();
    const ok = await tf.setBackend(name);
    await tf.ready();
    if (!ok) log?.(`${name} failed to initialise`);
    return ok && tf.getBackend() === name;
  } catch (err) {
    log?.(`${name} failed to initialise: ${(err as Error).message}`);
    return false;
  }
}

/**
 * Chooses and initialises the backend; returns its name. Without an explicit
 * preference a second call returns the current choice; with one it switches.
 */
export async function initBackend(preferred?: BackendName, log?: BackendLogger): Promise<BackendName> {
  const fromEnv = process.env.REWARDLAB_BACKEND;
  if (preferred === undefined && current !== null) return current;
  if (preferred !== undefined && preferred === current) return current;
  if (preferred === undefined && fromEnv !== undefined && fromEnv !== "" && !isBackendName(fromEnv)) {
    log?.(`REWARDLAB_BACKEND=${fromEnv} is not one of ${BACKENDS.join(", ")}; choosing automatically`);
  }
  const wanted = preferred ?? (isBackendName(fromEnv) ? fromEnv : undefined);
  // the wanted backend first, then the usual order as fallback
  const order = wanted ? [wanted, ...BACKENDS.filter((b) => b !== wanted)] : [...BACKENDS];
  // the cpu backend's one-time "install tfjs-node" console warning is silenced by PROD mode
  tf.env().set("PROD", true);
  for (const name of order) {
    if (await trySet(name, log)) {
      current = name;
      log?.(`backend ${name}${wanted && wanted !== name ? ` (wanted ${wanted})` : ""}`);
      return name;
    }
  }
  throw new Error("no TensorFlow.js backend could be initialised (not even cpu)");
}

/** The backend chosen by initBackend, or null before it ran. */
export function currentBackend(): BackendName | null {
  return current;
}

/** Backends that can be initialised on this machine, in preference order (for the bench). */
export async function availableBackends(): Promise<BackendName[]> {
  const out: BackendName[] = [];
  if (await loadTfjsNode()) out.push("tensorflow");
  try {
    await prepareWasm();
    if (tf.findBackendFactory("wasm") !== null) out.push("wasm");
  } catch {
    // wasm package missing or broken: not available
  }
  out.push("cpu");
  return out;
}

// ---------------------------------------------------------------- raw matrix multiplies for training

/**
 * A float32 buffer the training maths reads and writes in place. On the wasm
 * backend it lives in the wasm heap (registered as a tensor id), so the
 * multiplies read it without a copy; elsewhere it is a plain Float32Array.
 */
export interface MatBuffer {
  readonly size: number;
  /** The current view (re-read after anything that may grow the wasm heap). */
  view(): Float32Array;
  /** Marks new contents: a buffer used as the right operand or bias must be touched after every write. */
  touch(): void;
}

/**
 * c[m x n] = a[m x k] b[k x n] (+ bias[n]), row-major, no transposes: the
 * small set of dense products a two-layer MLP's forward and backward passes
 * need, without tfjs' per-operation dispatch (85% of PPO's learn() before).
 */
export interface Matmul {
  readonly name: string;
  /**
   * True where a fused sigmoid is cheaper than tanh in JavaScript (wasm: XNNPACK
   * applies it in the multiply's own SIMD loop); the MLP then computes tanh(z)
   * as 2 sigmoid(2z) - 1 with doubled weights.
   */
  readonly fastSigmoid: boolean;
  alloc(size: number): MatBuffer;
  /** c = a b (+ bias), then the logistic sigmoid elementwise when `sigmoid`, or max(c, 0) when `relu`. */
  matmul(
    a: MatBuffer,
    b: MatBuffer,
    c: MatBuffer,
    m: number,
    k: number,
    n: number,
    bias?: MatBuffer,
    sigmoid?: boolean,
    relu?: boolean,
  ): void;
  free(buf: MatBuffer): void;
}

class JSBuffer implements MatBuffer {
  readonly data: Float32Array;
  constructor(readonly size: number) {
    this.data = new Float32Array(size);
  }
  view(): Float32Array {
    return this.data;
  }
  touch(): void {}
}

/**
 * Plain-JavaScript multiplies (every backend but wasm; bit-for-bit
 * deterministic). Row by row, i-k-j order so the inner loop is contiguous,
 * skipping zero entries of a (one-hot observations cost their non-zeros only).
 */
export class JSMatmul implements Matmul {
  readonly name = "js";
  readonly fastSigmoid = false;
  alloc(size: number): MatBuffer {
    return new JSBuffer(size);
  }
  matmul(a: MatBuffer, b: MatBuffer, c: MatBuffer, m: number, k: number, n: number, bias?: MatBuffer, sigmoid = false, relu = false): void {
    const out = c.view();
    matmulJS(a.view(), b.view(), out, m, k, n, bias?.view());
    if (sigmoid) for (let i = 0; i < m * n; i++) out[i] = 1 / (1 + Math.exp(-out[i]!));
    else if (relu) for (let i = 0; i < m * n; i++) out[i] = Math.max(out[i]!, 0);
  }
  free(): void {}
}

/** The reference loop: c = a b (+ bias). */
export function matmulJS(a: Float32Array, b: Float32Array, c: Float32Array, m: number, k: number, n: number, bias?: Float32Array): void {
  for (let i = 0; i < m; i++) {
    const row = i * n;
    if (bias) for (let j = 0; j < n; j++) c[row + j] = bias[j]!;
    else c.fill(0, row, row + n);
    for (let p = 0; p < k; p++) {
      const x = a[i * k + p]!;
      if (x === 0) continue;
      const brow = p * n;
      for (let j = 0; j < n; j++) c[row + j]! += x * b[brow + j]!;
    }
  }
}

/** The parts of tfjs-backend-wasm's emscripten module used here (tfjs 4.22). */
interface WasmModule {
  HEAPF32: Float32Array;
  HEAP32: Int32Array;
  _malloc(bytes: number): number;
  _free(ptr: number): void;
  __FusedMatMul(...args: number[]): void;
  tfjs: { registerTensor(id: number, size: number, offset: number): void; disposeData(id: number): void };
}

interface WasmBackendLike {
  wasm: WasmModule;
  dataIdNextNumber: number;
}

class WasmBuffer implements MatBuffer {
  id = 0;
  /** Contents changed since `id` was registered (XNNPACK caches packed right operands by id). */
  dirty = true;
  private cache: Float32Array | null = null;
  constructor(
    readonly size: number,
    readonly offset: number,
    private readonly mod: WasmModule,
  ) {}
  view(): Float32Array {
    const heap = this.mod.HEAPF32;
    if (this.cache === null || this.cache.buffer !== heap.buffer) this.cache = new Float32Array(heap.buffer, this.offset, this.size);
    return this.cache;
  }
  touch(): void {
    this.dirty = true;
  }
}

/**
 * tfjs-backend-wasm's own XNNPACK multiply, called directly on buffers kept in
 * the wasm heap: no tensors, no engine bookkeeping, no copies in or out. Each
 * buffer is registered with the backend under an id of its own; a right
 * operand or bias written since its last use gets a fresh id (the backend
 * caches packed weights per id, and disposing the old id frees that cache).
 */
export class WasmMatmul implements Matmul {
  readonly name = "wasm";
  readonly fastSigmoid = true;
  private readonly mod: WasmModule;
  private readonly shapes: number;

  constructor(private readonly backend: WasmBackendLike) {
    this.mod = backend.wasm;
    this.shapes = this.mod._malloc(24);
  }

  private register(buf: WasmBuffer): void {
    if (buf.id !== 0) this.mod.tfjs.disposeData(buf.id);
    buf.id = this.backend.dataIdNextNumber++;
    this.mod.tfjs.registerTensor(buf.id, buf.size, buf.offset);
    buf.dirty = false;
  }

  alloc(size: number): MatBuffer {
    const offset = this.mod._malloc(Math.max(1, size) * 4) >>> 0;
    const buf = new WasmBuffer(size, offset, this.mod);
    buf.view().fill(0);
    this.register(buf);
    return buf;
  }

  matmul(a: MatBuffer, b: MatBuffer, c: MatBuffer, m: number, k: number, n: number, bias?: MatBuffer, sigmoid = false, relu = false): void {
    const [A, B, C] = [a as WasmBuffer, b as WasmBuffer, c as WasmBuffer];
    if (m * k > A.size || k * n > B.size || m * n > C.size) throw new RangeError(`matmul ${m}x${k} by ${k}x${n} overflows its buffers`);
    // only the right operand and the bias are cached by id; a and c are read and written in place
    if (B.dirty) this.register(B);
    const bi = bias as WasmBuffer | undefined;
    if (bi?.dirty) this.register(bi);
    const h = this.mod.HEAP32;
    const s = this.shapes >>> 2;
    h[s] = 1;
    h[s + 1] = m;
    h[s + 2] = k;
    h[s + 3] = 1;
    h[s + 4] = k;
    h[s + 5] = n;
    // the tensor sizes the backend sees are the buffers' capacities; the shapes say how much is used
    // activation codes of the backend's FusableActivation: 0 linear, 1 relu, 5 sigmoid
    const activation = sigmoid ? 5 : relu ? 1 : 0;
    this.mod.__FusedMatMul(A.id, this.shapes, 3, B.id, this.shapes + 12, 3, 0, 0, activation, bi ? bi.id : 0, 0, 0, C.id);
  }

  free(buf: MatBuffer): void {
    const b = buf as WasmBuffer;
    this.mod.tfjs.disposeData(b.id);
    this.mod._free(b.offset);
  }
}

/** The multiplies for the current backend: XNNPACK on wasm, plain JavaScript elsewhere. */
export function createMatmul(): Matmul {
  if (tf.getBackend() === "wasm") return new WasmMatmul(tf.backend() as unknown as WasmBackendLike);
  return new JSMatmul();
}
