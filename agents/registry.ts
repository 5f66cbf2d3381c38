/** Agent registry: one declaration per algorithm, configs validated with their schema. */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { RegistrationError } from "../envs/errors.ts";
import { lookUp } from "../envs/registry.ts";
import { cloneInput, validate } from "../envs/schema.ts";
import type { Agent, AgentEnvInfo, AgentRegistration } from "./core.ts";

// biome-ignore lint/suspicious/noExplicitAny: registrations with different config types share one map
type AnyRegistration = AgentRegistration<any>;

const agents = new Map<string, AnyRegistration>();

export function registerAgent<C>(reg: AgentRegistration<C>): void {
  if (agents.has(reg.name)) throw new RegistrationError(`agent ${reg.name} is already registered`);
  agents.set(reg.name, reg);
}

export function agentRegistrations(): AnyRegistration[] {
  return [...agents.values()];
}

export function agentRegistration(name: string): AnyRegistration {
  const known = `known: ${[...agents.keys()].join(", ")}`;
  return lookUp(agents, name, ([close]) => `agent \`${name}\` doesn't exist (${known}).` + (close ? ` Did you mean \`${close}\`?` : ""));
}

/** Validates a config against the agent's schema, filling defaults into a copy. */
export function resolveAgentConfig<C = Record<string, unknown>>(name: string, config: unknown = {}): C {
  return validate<C>(
    agentRegistration(name).configSchema,
    cloneInput(config ?? {}, `config for agent ${name}`),
    `config for agent ${name}`,
  );
}

export function createAgent(name: string, env: AgentEnvInfo, config: unknown, seed: number): Agent {
  return agentRegistration(name).create(env, resolveAgentConfig(name, config), seed);
}

/** Reads agent.json from a saved folder and loads the agent it names. */
export async function loadAgent(dir: string, env: AgentEnvInfo): Promise<Agent> {
  const meta = JSON.parse(await readFile(join(dir, "agent.json"), "utf8")) as { agent: string };
  return agentRegistration(meta.agent).load(dir, env);
}
