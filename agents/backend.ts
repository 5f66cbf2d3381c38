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

export type BackendName = "tensorflow" | "wasm" | "cpu";

export const BACKENDS: readonly BackendName[] = ["tensorflow", "wasm", "cpu"];

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
