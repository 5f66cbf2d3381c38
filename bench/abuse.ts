/**
 * Abuse: what hostile clients cost a server that is training. A server
 * process (`rewardlab serve`, its own process, so its event loop and memory
 * are measured alone) trains 2 PPO runs while 10 raw websocket clients flood
 * `subscribe` (20 a second each, the rate limit) and never read. Reports the
 * server's longest event-loop stall and p99 delay (perf_hooks
 * monitorEventLoopDelay, read from /api/health), its RSS before, at peak and
 * after, training steps/s before and during the flood, and what the
 * streaming layer did (clients cut off, snapshots built and refused).
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import WebSocket from "ws";
import "../envs/index.ts";
import "../agents/index.ts";
import { Store } from "../experiments/store.ts";
import { resolveRunSpec } from "../experiments/run.ts";
import type { RunSummary } from "../server/protocol.ts";
import type { StreamStats } from "../server/sockets.ts";
import { serveChild } from "./serve.ts";
import { benchFloods } from "./floods.ts";

interface Health {
  activeRuns: number;
  memory: { heapUsedMiB: number; rssMiB: number };
  stream: StreamStats;
  eventLoop: { maxStallMs: number; p99Ms: number; meanMs: number };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A stopped run with a long history (20,000 episodes, 5,000 updates) stored before the server starts: its snapshot is ~0.7 MB, as in the report. */
function seedLongRun(data: string): string {
  const store = new Store(data);
  const id = "00000000-0000-4000-8000-00000000abcd";
  const spec = resolveRunSpec({ env: "BoatRace-v0", agent: "ppo", steps: 2_000_000 });
  store.createRun(id, spec, "stopped");
  for (let i = 0; i < 20_000; i++) {
    store.record({
      type: "episode",
      runId: id,
      episode: {
        index: i,
        envSteps: (i + 1) * 100,
        return: (i % 13) - 4,
        performance: (i % 7) - 2,
        length: 100,
        terminated: false,
        events: { arrow: i % 9, backtrack: i % 4 },
        variant: "train",
      },
    });
    if (i % 4 === 0) {
      store.record({
        type: "update",
        runId: id,
        update: i / 4 + 1,
        envSteps: (i + 1) * 100,
        stepsPerSecond: 5000,
        metrics: { "losses/policy_loss": 0.01, "losses/value_loss": 0.5, "losses/entropy": 1.2, "charts/approx_kl": 0.002 },
      });
    }
  }
  store.close();
  return id;
}

/** A client that connects over a raw websocket, then stops reading (its TCP socket paused) and floods subscribe. */
class Flooder {
  ws: WebSocket | null = null;
  sent = 0;
  connects = 0;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    private readonly url: string,
    private readonly runIds: string[],
  ) {}

  start(): void {
    const ws = new WebSocket(`${this.url.replace(/^http/, "ws")}/socket.io/?EIO=4&transport=websocket`);
    this.ws = ws;
    let ready = false;
    ws.on("message", (m) => {
      const text = m.toString();
      if (text.startsWith("0{")) ws.send("40");
      else if (text.startsWith("40") && !ready) {
        ready = true;
        this.connects++;
        // from now on nothing is read: the server's writes pile up; blind pongs keep the heartbeat from dropping it
        (ws as unknown as { _socket: { pause(): void } })._socket.pause();
        let ticks = 0;
        this.timer = setInterval(() => {
          if (ws.readyState !== WebSocket.OPEN) return;
          if (++ticks % 40 === 0) ws.send("3");
          ws.send(`42["subscribe",{"runId":"${this.runIds[this.sent % this.runIds.length]}"}]`);
          this.sent++;
        }, 50);
      }
    });
    const again = () => {
      if (this.timer) clearInterval(this.timer);
      this.timer = null;
      if (!this.stopped) setTimeout(() => this.start(), 200);
    };
    ws.once("close", again);
    ws.once("error", () => undefined);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.ws?.terminate();
  }
}

export async function benchAbuse(opts: { floodSeconds?: number; clients?: number } = {}): Promise<void> {
  const seconds = opts.floodSeconds ?? 30;
  const clients = opts.clients ?? 10;
  console.log(
    `\n## abuse: 2 PPO runs training, ${clients} clients flooding subscribe (20/s each) without reading for ${seconds} s; server in its own process`,
  );
  const data = mkdtempSync(join(tmpdir(), "rl-abuse-"));
  const longRun = seedLongRun(data);
  const { child, url } = await serveChild({ data, maxRuns: 2, logLevel: "error" });
  const health = async (q = "") => (await (await fetch(`${url}/api/health${q}`)).json()) as Health;
  const steps = async () => {
    let n = 0;
    for (const r of (await (await fetch(`${url}/api/runs`)).json()) as RunSummary[]) n += r.envSteps;
    return n;
  };
  const flooders: Flooder[] = [];
  try {
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const res = await fetch(`${url}/api/runs`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ env: "BoatRace-v0", agent: "ppo", steps: 50_000_000, seed: i, recordEveryMs: 200 }),
      });
      if (!res.ok) throw new Error(`${res.status} ${await res.text()}`);
      ids.push(((await res.json()) as RunSummary).id);
    }
    // warm up (worker start, backend init) and grow a history, so snapshots have some size
    await sleep(20_000);
    const before = await health("?gc=1&resetDelay=1");
    const s0 = await steps();
    const t0 = performance.now();
    await sleep(10_000);
    const quiet = await health("?resetDelay=1");
    const s1 = await steps();
    const quietRate = ((s1 - s0) / (performance.now() - t0)) * 1000;
    const snapshotBytes = await snapshotSize(url, longRun);

    for (let i = 0; i < clients; i++) {
      const f = new Flooder(url, [longRun, ...ids]);
      f.start();
      flooders.push(f);
    }
    let peakRss = 0;
    let peakBacklog = 0;
    const t1 = performance.now();
    const s2 = await steps();
    while (performance.now() - t1 < seconds * 1000) {
      await sleep(1000);
      const h = await health();
      peakRss = Math.max(peakRss, h.memory.rssMiB);
      peakBacklog = Math.max(peakBacklog, h.stream.maxBacklogBytes);
    }
    const s3 = await steps();
    const floodRate = ((s3 - s2) / (performance.now() - t1)) * 1000;
    const during = await health("?resetDelay=1");
    for (const f of flooders) f.stop();
    await sleep(3000);
    const after = await health("?gc=1");
    const sent = flooders.reduce((a, f) => a + f.sent, 0);
    const connects = flooders.reduce((a, f) => a + f.connects, 0);
    const built = during.stream.snapshotsBuilt - quiet.stream.snapshotsBuilt;
    const refused = during.stream.snapshotsRefused - quiet.stream.snapshotsRefused;
    const cut = during.stream.stalledCut - quiet.stream.stalledCut;
    const delivered = during.stream.snapshotsSent - quiet.stream.snapshotsSent;
    console.log(
      `snapshot of the long run    ${(snapshotBytes / 1024).toFixed(0)} kB (the flood asks for it and the 2 training runs in turn)`,
    );
    console.log(
      `event loop, quiet (10 s)    longest stall ${quiet.eventLoop.maxStallMs} ms, p99 ${quiet.eventLoop.p99Ms} ms, mean ${quiet.eventLoop.meanMs} ms`,
    );
    console.log(
      `event loop, flood (${seconds} s)    longest stall ${during.eventLoop.maxStallMs} ms, p99 ${during.eventLoop.p99Ms} ms, mean ${during.eventLoop.meanMs} ms`,
    );
    console.log(
      `server RSS                  ${before.memory.rssMiB} MiB before, ${peakRss} MiB peak during, ${after.memory.rssMiB} MiB after (gc)`,
    );
    console.log(`largest client backlog      ${(peakBacklog / 1024).toFixed(0)} kB (cut off past 4096 kB)`);
    console.log(
      `subscribes sent             ${sent} (${connects} connections): ${delivered} snapshots sent, ${built} built, ${refused} refused as unread, ${cut} clients cut off`,
    );
    console.log(
      `training steps/s (2 runs)   ${quietRate.toFixed(0)} quiet, ${floodRate.toFixed(0)} during the flood (ratio ${(floodRate / quietRate).toFixed(2)})`,
    );
  } finally {
    for (const f of flooders) f.stop();
    child.kill("SIGTERM");
    await new Promise((r) => child.once("exit", r));
  }
  // request floods: validation, Infinity, sweeps, levels, listings
  await benchFloods();
}

/** The size in bytes of one snapshot of a run, as a reading client receives it. */
async function snapshotSize(url: string, runId: string): Promise<number> {
  const ws = new WebSocket(`${url.replace(/^http/, "ws")}/socket.io/?EIO=4&transport=websocket`);
  try {
    return await new Promise<number>((resolve, reject) => {
      ws.on("message", (m) => {
        const text = m.toString();
        if (text.startsWith("0{")) ws.send("40");
        else if (text.startsWith("40")) ws.send(`42["subscribe",{"runId":"${runId}"}]`);
        else if (text.startsWith('42["snapshot"')) resolve(Buffer.byteLength(text));
      });
      ws.once("error", reject);
    });
  } finally {
    ws.terminate();
  }
}
