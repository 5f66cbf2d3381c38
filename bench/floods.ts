/**
 * Request floods against a server in its own process: for each attack the
 * server's longest event-loop stall (monitorEventLoopDelay, read from
 * /api/health and reset before the attack), the attack's wall time and the
 * statuses it got. `--root DIR` runs the same attacks against another
 * checkout's server (a before/after comparison; its store is seeded through
 * its own code):
 *
 *   npx tsx bench/floods.ts [--root /path/to/other/checkout] [--only "GET /api/runs"]
 *
 * A status 0 in the tally is a connection the server dropped.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { randomUUID } from "node:crypto";
import { serveChild } from "./serve.ts";
import "../envs/index.ts";
import "../agents/index.ts";
import { resolveRunSpec } from "../experiments/runspec.ts";

interface Attack {
  name: string;
  run: (url: string) => Promise<number[]>;
}

const post = (url: string, path: string, body: unknown) =>
  fetch(`${url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });

/** n copies of a request at once; resolves with their statuses (the body read in full; 0: the connection failed). */
async function parallel(n: number, one: () => Promise<Response>): Promise<number[]> {
  return Promise.all(
    Array.from({ length: n }, async () => {
      try {
        const r = await one();
        await r.arrayBuffer();
        return r.status;
      } catch {
        return 0;
      }
    }),
  );
}

const room = ["#######", "#A    #", "#     #", "#    G#", "#######"];
const level = (id: string, variants: number) => ({
  id,
  art: room,
  legend: { "#": "wall", " ": "floor", A: "start", G: "goal" },
  variants: Array.from({ length: variants }, (_, i) => ({ name: `v${i}` })),
});

const ATTACKS: Attack[] = [
  {
    // the noise floor: the same server idle (on a shared machine the OS deschedules it, which also reads as a stall)
    name: "idle 2 s (no request)",
    run: async () => {
      await new Promise((r) => setTimeout(r, 2000));
      return [];
    },
  },
  {
    name: "validation: 8 x a 255 kB body of 85,000 bad hiddenSizes",
    run: (url) =>
      parallel(8, () =>
        post(url, "/api/runs", { env: "BoatRace-v0", agent: "ppo", config: { hiddenSizes: Array.from({ length: 85_000 }, () => -1) } }),
      ),
  },
  {
    name: "infinity: learningRate 1e309",
    run: (url) =>
      parallel(1, () => post(url, "/api/runs", '{"env":"BoatRace-v0","agent":"ppo","steps":1000,"config":{"learningRate":1e309}}')),
  },
  {
    name: "sweep dry runs: 4 x 10,000 jobs at once",
    run: (url) =>
      parallel(4, () =>
        post(url, "/api/sweeps?dryRun=1", { name: "big", grid: { env: ["BoatRace-v0"], agent: ["ppo"], seeds: 10_000, steps: [1000] } }),
      ),
  },
  {
    name: "sweep start: 10,000 jobs of 50M steps",
    run: (url) =>
      parallel(1, () =>
        post(url, "/api/sweeps", { name: "huge", grid: { env: ["BoatRace-v0"], agent: ["ppo"], seeds: 10_000, steps: [50_000_000] } }),
      ),
  },
  {
    name: "one level of 1,000 variants (53 kB)",
    run: (url) => parallel(1, () => post(url, "/api/levels", level("Variants-v0", 1000))),
  },
  {
    name: "200 levels of 32 variants, uploaded one by one",
    run: async (url) => {
      const out: number[] = [];
      for (let i = 0; i < 200; i++) out.push(...(await parallel(1, () => post(url, "/api/levels", level(`Many${i}-v0`, 32)))));
      return out;
    },
  },
  { name: "GET /api/envs x 8 at once (over those levels)", run: (url) => parallel(8, () => fetch(`${url}/api/envs`)) },
  { name: "GET /api/runs x 8 at once (2,900 runs stored)", run: (url) => parallel(8, () => fetch(`${url}/api/runs`)) },
];

/** 2,900 finished runs, written through the store of the checkout under test (its schema version). */
async function seedRuns(data: string, root: string): Promise<void> {
  const { Store } = (await import(pathToFileURL(join(root, "experiments/store.ts")).href)) as typeof import("../experiments/store.ts");
  const store = new Store(data);
  const spec = resolveRunSpec({ env: "BoatRace-v0", agent: "ppo", steps: 1000 });
  store.db.transaction(() => {
    for (let i = 0; i < 2900; i++) store.createRun(randomUUID(), spec, "completed");
  })();
  store.close();
}

export async function benchFloods(opts: { root?: string; only?: string } = {}): Promise<void> {
  const root = opts.root ?? join(import.meta.dirname, "..");
  console.log(
    `\n## floods: the server's longest event-loop stall under each attack (server in its own process, ${opts.root ? `checkout ${root}` : "this checkout"})`,
  );
  const data = mkdtempSync(join(tmpdir(), "rl-floods-"));
  await seedRuns(data, root);
  const { child, url } = await serveChild({ data, maxRuns: 2, logLevel: "error", ...(opts.root ? { root: opts.root } : {}) });
  try {
    const health = async (q: string) =>
      (await (await fetch(`${url}/api/health${q}`)).json()) as { eventLoop: { maxStallMs: number }; memory: { rssMiB: number } };
    for (const a of ATTACKS.filter((x) => !opts.only || x.name.includes(opts.only) || x.name.startsWith("idle"))) {
      await health("?resetDelay=1");
      const t = performance.now();
      const statuses = await a.run(url);
      const ms = performance.now() - t;
      const h = await health("?resetDelay=1");
      const tally = new Map<number, number>();
      for (const st of statuses) tally.set(st, (tally.get(st) ?? 0) + 1);
      const counts = [...tally].map(([st, n]) => `${n}x${st}`).join(" ");
      console.log(
        `${a.name.padEnd(52)} longest stall ${String(h.eventLoop.maxStallMs).padStart(8)} ms   wall ${(ms / 1000).toFixed(2).padStart(6)} s   RSS ${h.memory.rssMiB} MiB   ${counts}`,
      );
    }
  } finally {
    child.kill("SIGTERM");
    await new Promise((r) => child.once("exit", r));
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const arg = (name: string) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const root = arg("--root");
  const only = arg("--only");
  await benchFloods({ ...(root ? { root } : {}), ...(only ? { only } : {}) });
  process.exit(0);
}
