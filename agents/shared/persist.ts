/**
 * Saving and loading model-free agents without tfjs-node's file handlers:
 *   agent.json    {format, agent, config, envSteps, updates, env, rng, extra}
 *   weights.json  a tfjs weights manifest ({weightsManifest: [{paths, weights}]})
 *   weights.bin   the tensors' bytes (tf.io.encodeWeights)
 *   ledger.json   the reinforcement ledger's running total
 * The manifest is the one tfjs' own model.json uses, so tfjs tools can read it.
 */
import * as tf from "@tensorflow/tfjs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ValidationError } from "../../envs/errors.ts";
import type { AgentEnvInfo, LedgerDelta } from "../core.ts";

export const AGENT_FORMAT = "rewardlab-agent/1";

export interface SavedAgent {
  format: typeof AGENT_FORMAT;
  /** Registered agent name. */
  agent: string;
  config: Record<string, unknown>;
  envSteps: number;
  updates: number;
  /** The env info the agent was created for. */
  env: AgentEnvInfo;
  /** Named RNG states (sfc32 words). */
  rng: Record<string, number[]>;
  /** Algorithm-specific scalars (optimizer step count, ...). */
  extra: Record<string, unknown>;
}

export interface SaveInput extends Omit<SavedAgent, "format"> {
  tensors: Record<string, tf.Tensor>;
  ledger: { updates: number; total: LedgerDelta };
}

export interface LoadedAgentFiles {
  meta: SavedAgent;
  tensors: Record<string, { shape: number[]; values: Float32Array }>;
  ledger: { updates: number; total: LedgerDelta } | null;
}

export async function saveAgentFiles(dir: string, input: SaveInput): Promise<void> {
  await mkdir(dir, { recursive: true });
  const { tensors, ledger, ...rest } = input;
  const meta: SavedAgent = { format: AGENT_FORMAT, ...rest };
  const { data, specs } = await tf.io.encodeWeights(tensors);
  await writeFile(join(dir, "weights.bin"), new Uint8Array(data));
  await writeFile(join(dir, "weights.json"), JSON.stringify({ weightsManifest: [{ paths: ["weights.bin"], weights: specs }] }, null, 1));
  await writeFile(join(dir, "ledger.json"), JSON.stringify(ledger));
  // agent.json last: its presence marks a complete save
  await writeFile(join(dir, "agent.json"), JSON.stringify(meta, null, 2));
}

export async function loadAgentFiles(dir: string, expectAgent: string): Promise<LoadedAgentFiles> {
  const meta = JSON.parse(await readFile(join(dir, "agent.json"), "utf8")) as SavedAgent;
  if (meta.format !== AGENT_FORMAT) throw new ValidationError(`${dir}/agent.json: format "${meta.format}" is not ${AGENT_FORMAT}`);
  if (meta.agent !== expectAgent) throw new ValidationError(`${dir} holds a ${meta.agent} agent, not ${expectAgent}`);
  const manifest = JSON.parse(await readFile(join(dir, "weights.json"), "utf8")) as {
    weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
  };
  const tensors: LoadedAgentFiles["tensors"] = {};
  for (const group of manifest.weightsManifest) {
    const bufs = await Promise.all(group.paths.map((p) => readFile(join(dir, p))));
    const bytes = Buffer.concat(bufs);
    const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
    const map = tf.io.decodeWeights(ab, group.weights);
    for (const [name, t] of Object.entries(map)) {
      tensors[name] = { shape: t.shape, values: Float32Array.from(t.dataSync()) };
      t.dispose();
    }
  }
  let ledger: LoadedAgentFiles["ledger"] = null;
  try {
    ledger = JSON.parse(await readFile(join(dir, "ledger.json"), "utf8"));
  } catch {
    // older or partial saves carry no ledger: start a fresh one
  }
  return { meta, tensors, ledger };
}

/** A saved agent only fits an env with the same observation size and action count. */
export function checkEnvCompatible(saved: AgentEnvInfo, env: AgentEnvInfo, dir: string): void {
  if (saved.obsSize !== env.obsSize || saved.nActions !== env.nActions) {
    throw new ValidationError(
      `${dir} was trained on ${saved.envId} (obs ${saved.obsSize}, ${saved.nActions} actions); ` +
        `${env.envId} has obs ${env.obsSize} and ${env.nActions} actions`,
    );
  }
}

/** Writes saved values into variables, checking names and shapes. */
export function assignVariables(vars: Record<string, tf.Variable>, tensors: LoadedAgentFiles["tensors"], dir: string): void {
  for (const [name, v] of Object.entries(vars)) {
    const t = tensors[name];
    if (!t) throw new ValidationError(`${dir}/weights.json has no tensor "${name}"`);
    if (t.shape.join("x") !== v.shape.join("x")) {
      throw new ValidationError(`${dir}: "${name}" has shape [${t.shape}], the agent expects [${v.shape}]`);
    }
    tf.tidy(() => v.assign(tf.tensor(t.values, t.shape)));
  }
}

/** The bytes of several typed arrays, one after another (replay buffers' binary files). */
export function concatBytes(parts: readonly ArrayBufferView[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.byteLength, 0));
  let o = 0;
  for (const p of parts) {
    out.set(new Uint8Array(p.buffer, p.byteOffset, p.byteLength), o);
    o += p.byteLength;
  }
  return out;
}
