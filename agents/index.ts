/** Registers the built-in agents. Import this once before using the registry. */
import "./model-free/reinforce.ts";
import "./model-free/ppo.ts";
import "./model-based/planner.ts";
import "./model-based/expit.ts";

export * from "./core.ts";
export * from "./registry.ts";
