/**
 * `rewardlab serve`: lives in server/ so that experiments/ never imports the
 * server (dependencies flow one way); bin/rewardlab.js hands this verb to
 * the command line, and the server's modules load only when it runs.
 */
import { Command, Option } from "commander";
import { BACKENDS, type BackendName } from "../agents/shared/backendnames.ts";
import type { CommandFactory } from "../experiments/cli.ts";
import { UserError } from "../experiments/cli/options.ts";
import { RewardlabError } from "../envs/errors.ts";

const port = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new UserError(`--port must be 0..65535, got "${v}"`);
  return n;
};
const positive = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UserError(`--max-runs must be a positive integer, got "${v}"`);
  return n;
};

const positiveSeconds = (v: string): number => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new UserError(`--demo-idle must be a positive number of seconds, got "${v}"`);
  return n;
};

interface ServeFlags {
  port: number;
  host: string;
  token?: string;
  demo: boolean;
  demoIdle: number;
  maxRuns?: number;
  backend?: BackendName;
  queue?: string;
}

export const serveCommand: CommandFactory = (ctx, globals) =>
  new Command("serve")
    .description("serve the client and the API (npm start runs it); starts the live demo on first start")
    .addOption(new Option("--port <n>", "port").env("PORT").argParser(port).default(3000))
    .addOption(new Option("--host <address>", "address to bind; anything but loopback requires a token").default("127.0.0.1"))
    .addOption(new Option("--token <token>", "token for non-loopback binds (default: generated and printed)"))
    .addOption(new Option("--no-demo", "do not start the demo comparison"))
    .addOption(
      new Option("--demo-idle <seconds>", "stop the demo once nobody has watched it this long").argParser(positiveSeconds).default(120),
    )
    .addOption(new Option("--max-runs <n>", "runs training at once; more are queued").argParser(positive).default(2))
    .addOption(new Option("--backend <name>", "TensorFlow.js backend for runs (default: the fastest available)").choices(BACKENDS))
    .addOption(new Option("--queue <url>", "redis://host:port: sweeps and probes started from the API go to `rewardlab worker`s"))
    .action(async (o: ServeFlags) => {
      const { serveForever } = await import("./main.ts");
      const data = globals().data;
      let code: number;
      try {
        code = await serveForever({
          port: o.port,
          host: o.host,
          ...(data ? { dataDir: data } : {}),
          ...(o.token ? { token: o.token } : {}),
          demo: o.demo,
          demoIdleMs: o.demoIdle * 1000,
          maxConcurrentRuns: o.maxRuns ?? 2,
          ...(o.backend ? { backend: o.backend } : {}),
          ...(o.queue ? { queue: o.queue } : {}),
          userEnvs: { levels: ctx.userEnvs.levels ?? [], plugins: ctx.userEnvs.plugins ?? [] },
        });
      } catch (e) {
        // a second server on the same data folder, a port in use: one line and code 2, at once
        if (!(e instanceof RewardlabError)) throw e;
        process.stderr.write(`error: ${e.message}\n`);
        process.exit(2);
      }
      // exit explicitly: once the store is closed nothing is left to do, and a
      // terminated worker's module-loader thread can otherwise keep the process up
      process.exit(code);
    });
