/** Registers the built-in agents. Import this once before using the registry. */
import "./reinforce.ts";
import "./ppo.ts";
import "./planner.ts";
import "./expit.ts";

export * from "./core.ts";
export * from "./registry.ts";
