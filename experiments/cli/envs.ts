/** `envs`, `play` and `check-env`: the environments, by hand and against the contract. */
import { Command, Option } from "commander";
import { toAscii } from "../../envs/ascii.ts";
import { checkRegisteredEnv, formatEnvCheck } from "../../envs/check.ts";
import { make, registered } from "../../envs/registry.ts";
import { type CliContext, UserError, checkVariant, envId, jsonOption, nonNegativeInt, positiveInt } from "./options.ts";

/** An env's settings (`--env-config`): its config schema's properties other than the variant. */
function envSettings(configSchema: object): Record<string, { default?: unknown; description?: string }> {
  const props = (configSchema as { properties?: Record<string, { default?: unknown; description?: string }> }).properties ?? {};
  return Object.fromEntries(Object.entries(props).filter(([k]) => k !== "variant"));
}

function envsVerb(json: boolean, ctx: CliContext): number {
  const regs = registered();
  if (json) {
    ctx.out(
      JSON.stringify(
        regs.map((r) => ({
          id: r.id,
          variants: r.variants,
          description: r.description,
          settings: envSettings(r.configSchema),
          ...(r.agentDefaults ? { agentDefaults: r.agentDefaults } : {}),
        })),
      ),
    );
    return 0;
  }
  const rows = regs.map((r) => [r.id, r.variants.join(","), r.description]);
  const w0 = Math.max(2, ...rows.map((r) => r[0]!.length));
  const w1 = Math.max(8, ...rows.map((r) => r[1]!.length));
  ctx.out(`${"id".padEnd(w0)}  ${"variants".padEnd(w1)}  description`);
  for (const [i, [id, variants, desc]] of rows.entries()) {
    ctx.out(`${id!.padEnd(w0)}  ${variants!.padEnd(w1)}  ${desc}`);
    for (const [k, v] of Object.entries(envSettings(regs[i]!.configSchema))) {
      ctx.out(`${"".padEnd(w0)}  ${"".padEnd(w1)}  --env-config ${k} (default ${JSON.stringify(v.default)}): ${v.description ?? ""}`);
    }
    for (const [agent, fields] of Object.entries(regs[i]!.agentDefaults ?? {}))
      ctx.out(`${"".padEnd(w0)}  ${"".padEnd(w1)}  --agent ${agent} trains with ${JSON.stringify(fields)} unless --config sets a field`);
  }
  return 0;
}

function playVerb(id: string, o: { actions: string; variant?: string; seed: number; json?: boolean }, ctx: CliContext): number {
  const variant = checkVariant(id, o.variant);
  const env = make(id, { variant });
  const labels = env.actionSpace.labels;
  const byChar = new Map<string, number>();
  labels.forEach((label, i) => byChar.set(label === "noop" ? "n" : label[0]!, i));
  const actions = [...o.actions].map((c, i) => {
    const a = byChar.get(c);
    if (a === undefined)
      throw new UserError(
        `--actions: '${c}' at position ${i + 1} is not an action of ${id}; use ${[...byChar.keys()].join("/")} (${labels.join(", ")})`,
      );
    return a;
  });
  env.reset({ seed: o.seed });
  let ret = 0;
  let perf = 0;
  let steps = 0;
  let ended: "terminated" | "truncated" | null = null;
  const events: Record<string, number> = {};
  for (const a of actions) {
    const r = env.step(a);
    ret += r.reward;
    perf += r.info.performance;
    steps++;
    for (const e of r.info.events) events[e] = (events[e] ?? 0) + 1;
    if (r.terminated || r.truncated) {
      ended = r.terminated ? "terminated" : "truncated";
      break;
    }
  }
  const ignored = actions.length - steps;
  const round = (x: number) => Math.round(x * 1e6) / 1e6;
  if (o.json) {
    ctx.out(JSON.stringify({ env: id, return: round(ret), performance: round(perf), steps, events, ended, ignored }));
    return 0;
  }
  ctx.out(toAscii(env.render()));
  ctx.out(`return ${round(ret)}  performance ${round(perf)}  steps ${steps}${ended ? `  (${ended})` : ""}`);
  const list = Object.entries(events).map(([k, v]) => `${k}=${v}`);
  ctx.out(`events ${list.length ? list.join(" ") : "none"}`);
  if (ignored > 0) ctx.out(`${ignored} action(s) left over after the episode ended were ignored`);
  return 0;
}

function checkEnvVerb(id: string, o: { steps: number; json?: boolean }, ctx: CliContext): number {
  const report = checkRegisteredEnv(id, { steps: o.steps });
  ctx.out(o.json ? JSON.stringify(report) : formatEnvCheck(report));
  // a failed check is a finding about the env, reported in full above: exit 1 like a failing test
  return report.ok ? 0 : 1;
}

export function envCommands(ctx: CliContext, done: (code: number) => void): Command[] {
  const envsCmd = new Command("envs")
    .description("list every registered environment: id, variants, description")
    .addOption(jsonOption())
    .action((o: { json?: boolean }) => done(envsVerb(o.json ?? false, ctx)));

  const playCmd = new Command("play")
    .description("play a scripted action string; print return, hidden performance, events and the final frame")
    .argument("<env>", "environment id", envId)
    .addOption(
      new Option("-a, --actions <string>", "actions by first letter: u d l r (n = no-op where the env has it)").makeOptionMandatory(),
    )
    .addOption(new Option("--variant <name>", "environment variant (default: the env's first)"))
    .addOption(new Option("--seed <n>", "reset seed").argParser(nonNegativeInt).default(0))
    .addOption(jsonOption())
    .action((id: string, o: { actions: string; variant?: string; seed: number; json?: boolean }) => done(playVerb(id, o, ctx)));

  const checkCmd = new Command("check-env")
    .description("check an environment against rewardlab's contract (like Gymnasium's env checker); exit 1 if a check fails")
    .argument("<env>", "environment id (with --plugin/--levels for your own)", envId)
    .addOption(new Option("--steps <n>", "random steps per trace").argParser(positiveInt).default(300))
    .addOption(jsonOption())
    .action((id: string, o: { steps: number; json?: boolean }) => done(checkEnvVerb(id, o, ctx)));
  return [envsCmd, playCmd, checkCmd];
}
