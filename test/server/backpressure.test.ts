/**
 * A client that stops reading cannot hold the server's memory: its backlog
 * stays bounded, its connection is closed (by the backlog limit or the
 * heartbeat, whichever comes first), and a client reading normally keeps
 * receiving frames throughout.
 */
import { mkdtempSync } from "node:fs";
import type { Socket as NetSocket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { io } from "socket.io-client";
import "../../envs/index.ts";
import "../../agents/index.ts";
import { startServer, type RunningServer } from "../../server/main.ts";
import type { RunSummary } from "../../server/protocol.ts";
import type { StreamStats } from "../../server/sockets.ts";

const MAX_STALLED = 24;
let server: RunningServer;
beforeAll(async () => {
  server = await startServer({
    port: 0,
    dataDir: mkdtempSync(join(tmpdir(), "rl-bp-")),
    demo: false,
    backend: "cpu",
    fps: 60,
    maxStalled: MAX_STALLED,
  });
});
afterAll(async () => {
  await server?.close();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const stream = async () => ((await (await fetch(`${server.url}/api/health`)).json()) as { stream: StreamStats }).stream;

describe("back-pressure", () => {
  it("closes a client that stops reading, with its backlog bounded, while a reading client keeps receiving", async () => {
    const res = await fetch(`${server.url}/api/runs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ env: "CoastRunners-v0", agent: "reinforce", steps: 50_000_000, seed: 1, recordEveryMs: 1 }),
    });
    const run = (await res.json()) as RunSummary;
    const fast = io(server.url, { transports: ["websocket"], reconnection: false });
    const slow = io(server.url, { transports: ["websocket"], reconnection: false });
    let fastFrames = 0;
    fast.on("frame", () => fastFrames++);
    await Promise.all([fast, slow].map((s) => new Promise<void>((r) => s.once("connect", () => r()))));
    fast.emit("subscribe", { runId: run.id });
    slow.emit("subscribe", { runId: run.id });
    await sleep(500);
    expect((await stream()).clients).toBe(2);
    // stop reading: the slow client's TCP socket is paused, so the server's writes back up
    const tcp = (slow.io.engine as unknown as { transport: { ws: { _socket: NetSocket } } }).transport.ws._socket;
    tcp.pause();

    let s = await stream();
    let maxBacklog = 0;
    for (let i = 0; i < 300 && s.clients > 1; i++) {
      await sleep(100);
      s = await stream();
      maxBacklog = Math.max(maxBacklog, s.maxBacklog);
    }
    expect(s.clients).toBe(1);
    expect(maxBacklog).toBeLessThanOrEqual(MAX_STALLED + 64);
    const before = fastFrames;
    // frames come from collection: a REINFORCE update on the cpu backend can take several seconds without any
    for (let i = 0; i < 400 && fastFrames <= before; i++) await sleep(100);
    expect(fastFrames).toBeGreaterThan(before);
    tcp.resume();
    slow.close();
    fast.close();
    await fetch(`${server.url}/api/runs/${run.id}/stop`, { method: "POST" });
  }, 150_000);
});
