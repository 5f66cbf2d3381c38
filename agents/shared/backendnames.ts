/**
 * The TensorFlow.js backends' names and the check of a user's choice, apart
 * from agents/shared/backend.ts (which initialises them) so that the command
 * line can offer the choice without loading TensorFlow.js.
 */
import { RewardlabError } from "../../envs/errors.ts";

export type BackendName = "tensorflow" | "wasm" | "cpu";

export const BACKENDS: readonly BackendName[] = ["tensorflow", "wasm", "cpu"];

/** A backend name from a user (a flag, an env variable): undefined stays undefined, anything else must be one of BACKENDS. */
export function parseBackend(name: string | undefined, where = "backend"): BackendName | undefined {
  if (name === undefined) return undefined;
  if ((BACKENDS as readonly string[]).includes(name)) return name as BackendName;
  throw new RewardlabError(`${where} "${name}" is not one of ${BACKENDS.join(", ")}`);
}
