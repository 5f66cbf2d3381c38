/**
 * `rewardlab serve`: lives in server/ so that experiments/ never imports the
 * server (dependencies flow one way); bin/rewardlab.js routes the verb here.
 */
import { parseArgs } from "node:util";
import "../envs/index.ts";
import "../agents/index.ts";
import { RewardlabError } from "../envs/errors.ts";
import { loadUserEnvironments } from "../experiments/plugins.ts";
import { serveForever } from "./main.ts";
import type { BackendName } from "../experiments/pool.ts";

const USAGE = `usage: rewardlab serve [--port N] [--host H] [--data DIR] [--token T] [--no-demo] [--max-runs N]
                       [--backend tensorflow|wasm|cpu] [--queue redis://host:port] [--levels DIR]... [--plugin PATH]...
  Serves the client and the API on http://127.0.0.1:3000 (PORT env var or --port to change).
  Binding another host requires a token (printed at start unless --token is given).`;

export async function serveMain(argv: string[]): Promise<number> {
  try {
    const { values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        port: { type: "string" },
        host: { type: "string" },
        data: { type: "string" },
        token: { type: "string" },
        "no-demo": { type: "boolean" },
        "max-runs": { type: "string" },
        backend: { type: "string" },
        queue: { type: "string" },
        levels: { type: "string", multiple: true },
        plugin: { type: "string", multiple: true },
        help: { type: "boolean", short: "h" },
      },
    });
    if (values.help) {
      process.stdout.write(USAGE + "\n");
      return 0;
    }
    const portText = values.port ?? process.env.PORT ?? "3000";
    const port = Number(portText);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RewardlabError(`--port must be 0..65535, got "${portText}"`);
    const maxRuns = values["max-runs"] === undefined ? undefined : Number(values["max-runs"]);
    if (maxRuns !== undefined && !(Number.isInteger(maxRuns) && maxRuns > 0))
      throw new RewardlabError(`--max-runs must be a positive integer`);
    const backend = values.backend as BackendName | undefined;
    if (backend && !["tensorflow", "wasm", "cpu"].includes(backend)) throw new RewardlabError(`--backend must be tensorflow, wasm or cpu`);
    const userEnvs = { levels: values.levels ?? [], plugins: values.plugin ?? [] };
    for (const p of await loadUserEnvironments(userEnvs)) process.stderr.write(`warning: ${p}\n`);
    return await serveForever({
      port,
      ...(values.host ? { host: values.host } : {}),
      ...(values.data ? { dataDir: values.data } : {}),
      ...(values.token ? { token: values.token } : {}),
      demo: !values["no-demo"],
      ...(maxRuns ? { maxConcurrentRuns: maxRuns } : {}),
      ...(backend ? { backend } : {}),
      ...(values.queue ? { queue: values.queue } : {}),
      userEnvs,
    });
  } catch (e) {
    if (e instanceof RewardlabError || (e as { code?: string }).code?.startsWith?.("ERR_PARSE_ARGS")) {
      process.stderr.write(`error: ${(e as Error).message}\n${USAGE}\n`);
      return 2;
    }
    throw e;
  }
}
