/**
 * Security regression suite (issue 11): every attack that once crashed,
 * froze or drove the server, replayed against a real server on a real port.
 * Each case checks the status it must get and that /api/health still answers
 * afterwards. Socket cases use both a real socket.io client and a raw
 * websocket speaking engine.io by hand.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { cp, truncate } from "node:fs/promises";
import { request } from "node:http";
import { randomUUID } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { io } from "socket.io-client";
import WebSocket from "ws";
import "../../envs/index.ts";
import "../../agents/index.ts";
import { startServer, type RunningServer } from "../../server/main.ts";
import { Store } from "../../experiments/store.ts";
import { resolveRunSpec } from "../../experiments/run.ts";
import { LIMITS } from "../../experiments/limits.ts";
import { MAX_BACKLOG_BYTES } from "../../server/sockets.ts";
import type { RunSummary } from "../../server/protocol.ts";

interface Reply {
  status: number;
  body: unknown;
}

/** A raw HTTP request: every header as given (fetch would not let a test set Host). */
function raw(base: string, method: string, path: string, opts: { headers?: Record<string, string>; body?: unknown } = {}): Promise<Reply> {
  const u = new URL(base);
  const data = opts.body === undefined ? undefined : typeof opts.body === "string" ? opts.body : JSON.stringify(opts.body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: u.hostname,
        port: u.port,
        method,
        path,
        headers: {
          ...(data !== undefined ? { "content-type": "application/json", "content-length": String(Buffer.byteLength(data)) } : {}),
          ...opts.headers,
        },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c) => (text += c));
        res.on("end", () => {
          let body: unknown = text;
          try {
            body = text ? JSON.parse(text) : null;
          } catch {
            // not JSON
          }
          resolve({ status: res.statusCode ?? 0, body });
        });
      },
    );
    req.on("error", reject);
    if (data !== undefined) req.write(data);
    req.end();
  });
}

const errorOf = (r: Reply) => String((r.body as { error?: string })?.error ?? "");

async function healthy(s: RunningServer, headers: Record<string, string> = {}): Promise<void> {
  const r = await raw(s.url, "GET", "/api/health", { headers });
  expect(r.status).toBe(200);
  expect((r.body as { ok: boolean }).ok).toBe(true);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(f: () => Promise<T | undefined | false> | T | undefined | false, ms: number, what: string): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** A raw engine.io websocket: waits for the open packet, returns the socket and what it has received. */
async function rawSocket(url: string, opts: WebSocket.ClientOptions = {}): Promise<{ ws: WebSocket; received: string[] }> {
  const ws = new WebSocket(`${url.replace(/^http/, "ws")}/socket.io/?EIO=4&transport=websocket`, opts);
  const received: string[] = [];
  ws.on("message", (m) => {
    const text = m.toString();
    if (text === "2") ws.send("3"); // engine.io ping -> pong
    received.push(text);
  });
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
    ws.once("unexpected-response", (_req, res) => reject(new Error(`upgrade refused with ${res.statusCode}`)));
  });
  await until(() => received.some((m) => m.startsWith("0{")), 5000, "engine.io open packet");
  return { ws, received };
}

/** An upgrade that must be refused: resolves with the HTTP status of the refusal. */
function refusedUpgrade(url: string, headers: Record<string, string>): Promise<number> {
  const ws = new WebSocket(`${url.replace(/^http/, "ws")}/socket.io/?EIO=4&transport=websocket`, { headers });
  return new Promise((resolve, reject) => {
    ws.once("open", () => {
      ws.close();
      reject(new Error("the upgrade was accepted"));
    });
    ws.once("unexpected-response", (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.once("error", () => resolve(-1));
  });
}

const dataDir = (tag: string) => mkdtempSync(join(tmpdir(), `rl-sec-${tag}-`));

// ------------------------------------------------------------------ a token server

describe("a token server (bound to a non-loopback address)", () => {
  let s: RunningServer;
  beforeAll(async () => {
    s = await startServer({ port: 0, host: "127.0.0.2", dataDir: dataDir("token"), demo: false, backend: "cpu" });
  });
  afterAll(async () => {
    await s?.close();
  });
  const auth = () => ({ authorization: `Bearer ${s.token}` });

  it("survives hostile socket.io handshakes (auth.token of every wrong type) and refuses them", async () => {
    const hostile: unknown[] = [
      { toString: null },
      { valueOf: null, toString: null },
      12345,
      [s.token],
      null,
      true,
      "",
      "x".repeat(100_000),
    ];
    for (const token of hostile) {
      const c = io(s.url, { transports: ["websocket"], forceNew: true, reconnection: false, auth: { token } as never });
      // refused (connect_error), or cut for its size (a 100 kB handshake passes the 16 kB packet limit); never connected
      const outcome = await Promise.race([
        new Promise<string>((r) => c.once("connect_error", (e) => r(`refused: ${e.message}`))),
        new Promise<string>((r) => c.once("disconnect", (why) => r(`cut: ${why}`))),
        new Promise<string>((r) => c.once("connect", () => r("connected"))),
      ]);
      expect(outcome).toMatch(/^refused: missing or wrong token|^cut: transport close/);
      c.close();
      await healthy(s, auth());
    }
    const ok = io(s.url, { transports: ["websocket"], forceNew: true, reconnection: false, auth: { token: s.token } });
    await new Promise<void>((r) => ok.once("connect", () => r()));
    ok.close();
  });

  it("survives hostile CONNECT packets on a raw websocket", async () => {
    const packets = [
      '40{"token":{"toString":null}}',
      '40{"token":{"__proto__":{"toString":null}}}',
      "40[1,2,3]",
      '40"just a string"',
      "40null",
      "40{not json",
      `40${JSON.stringify({ token: "x".repeat(10_000) })}`,
      "4/nsp-that-does-not-exist,",
      '42["subscribe",{"runId":"x"}]',
      "9garbage",
    ];
    for (const p of packets) {
      const { ws, received } = await rawSocket(s.url);
      ws.send(p);
      // a refusal (44 connect error) or the connection closed; never a crash
      await until(() => received.some((m) => m.startsWith("44")) || ws.readyState !== WebSocket.OPEN, 5000, `answer to ${p.slice(0, 30)}`);
      expect(received.some((m) => m.startsWith("40"))).toBe(false);
      ws.terminate();
      await healthy(s, auth());
    }
  });

  it("accepts the token as Authorization: Bearer or x-rewardlab-token, compared whole", async () => {
    expect((await raw(s.url, "GET", "/api/runs", { headers: { "x-rewardlab-token": s.token! } })).status).toBe(200);
    expect((await raw(s.url, "GET", "/api/runs", { headers: { "x-rewardlab-token": s.token!.slice(0, -1) } })).status).toBe(401);
    expect((await raw(s.url, "GET", "/api/runs", { headers: { authorization: `Bearer ${s.token}x` } })).status).toBe(401);
    expect((await raw(s.url, "GET", "/api/runs", { headers: { authorization: "Basic abc" } })).status).toBe(401);
    await healthy(s, auth());
  });
});

// ------------------------------------------------------------------ a loopback server

describe("a loopback server", () => {
  let s: RunningServer;
  let dir: string;
  beforeAll(async () => {
    dir = dataDir("loop");
    s = await startServer({ port: 0, dataDir: dir, demo: false, backend: "cpu", maxActiveRuns: 2, maxConcurrentRuns: 2 });
  });
  afterAll(async () => {
    await s?.close();
  });
  // a case that fails must not leave runs or probes holding the active slots of the next
  afterEach(async () => {
    for (const r of (await raw(s.url, "GET", "/api/runs")).body as RunSummary[]) {
      if (r.status === "queued" || r.status === "running" || r.status === "paused") await raw(s.url, "DELETE", `/api/runs/${r.id}`);
    }
    for (const p of (await raw(s.url, "GET", "/api/probes")).body as { id: string; status: string }[]) {
      if (p.status === "running") await raw(s.url, "POST", `/api/probes/${p.id}/stop`);
    }
  });

  const post = (path: string, body?: unknown, headers: Record<string, string> = {}) => raw(s.url, "POST", `/api${path}`, { body, headers });
  const get = (path: string) => raw(s.url, "GET", `/api${path}`);
  const runOf = async (id: string) => (await get(`/runs/${id}`)).body as RunSummary;

  it("refuses a foreign Host (DNS rebinding), with or without a matching Origin", async () => {
    const port = s.port;
    const evil = { host: `rebind.evil.example:${port}`, origin: `http://rebind.evil.example:${port}` };
    const r1 = await post("/runs", { env: "BoatRace-v0", agent: "ppo", steps: 1000 }, evil);
    expect(r1.status).toBe(403);
    expect(errorOf(r1)).toMatch(/loopback host names only/);
    expect((await raw(s.url, "GET", "/api/runs", { headers: { host: `rebind.evil.example:${port}` } })).status).toBe(403);
    expect((await raw(s.url, "GET", "/", { headers: { host: `rebind.evil.example:${port}` } })).status).toBe(403);
    // a loopback name with the wrong port is a different origin too
    expect((await raw(s.url, "GET", "/api/runs", { headers: { host: `127.0.0.1:${port + 1}` } })).status).toBe(403);
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, `LOCALHOST:${port}`]) {
      expect((await raw(s.url, "GET", "/api/runs", { headers: { host } })).status).toBe(200);
    }
    await healthy(s);
  });

  it("refuses cross-site, null and unparsable Origins with 403, never 500", async () => {
    for (const origin of [
      "http://evil.example",
      "null",
      "http://[",
      "::::",
      "javascript:alert(1)",
      `http://localhost:${s.port}.evil.example`,
    ]) {
      const r = await post("/runs", { env: "BoatRace-v0", agent: "ppo", steps: 1000 }, { origin });
      expect(r.status, origin).toBe(403);
    }
    expect((await post("/runs/nope/stop", undefined, { origin: `http://127.0.0.1:${s.port}` })).status).toBe(404);
    await healthy(s);
  });

  it("refuses cross-site websockets and foreign Hosts on the socket (socket.io client and raw websocket)", async () => {
    expect(await refusedUpgrade(s.url, { origin: "http://evil.example" })).toBe(400);
    expect(await refusedUpgrade(s.url, { origin: "null" })).toBe(400);
    expect(await refusedUpgrade(s.url, { host: `rebind.evil.example:${s.port}` })).toBe(400);
    const c = io(s.url, {
      transports: ["websocket"],
      forceNew: true,
      reconnection: false,
      extraHeaders: { origin: "http://evil.example" },
    });
    const err = await new Promise<Error>((r) => c.once("connect_error", r));
    expect(err).toBeInstanceOf(Error);
    c.close();
    // same-origin and no-Origin clients connect
    const same = await rawSocket(s.url, { headers: { origin: `http://127.0.0.1:${s.port}` } });
    same.ws.terminate();
    const ok = io(s.url, { transports: ["websocket"], forceNew: true, reconnection: false });
    await new Promise<void>((r) => ok.once("connect", () => r()));
    ok.close();
    await healthy(s);
  });

  it('answers 4xx for "__proto__"/"constructor" names and 300-character level ids', async () => {
    for (const probe of ["__proto__", "constructor", "toString", "hasOwnProperty"]) {
      const r = await post("/probes", { probe, agents: ["ppo"] });
      expect(r.status, probe).toBe(400);
    }
    const agent = await post("/probes", { probe: "tamper", agents: ["__proto__"] });
    expect(agent.status).toBe(400);
    const configs = await post("/probes", { probe: "tamper", agents: ["ppo"], configs: JSON.parse('{"__proto__": {"x": 1}}') });
    expect(configs.status).toBe(400);
    expect((await post("/runs", { env: "__proto__", agent: "constructor" })).status).toBe(400);
    expect((await get("/envs/__proto__")).status).toBe(400);
    const long = await post("/levels", {
      id: `${"A".repeat(300)}-v0`,
      art: ["#####", "#A G#", "#####"],
      legend: { "#": "wall", " ": "floor", A: "start", G: "goal" },
    });
    expect(long.status).toBe(400);
    expect(JSON.stringify(long.body)).toMatch(/id/);
    await healthy(s);
  });

  const level = (id: string, extra: Record<string, unknown> = {}) => ({
    id,
    art: ["#######", "#A   G#", "#######"],
    legend: { "#": "wall", " ": "floor", A: "start", G: "goal" },
    ...extra,
  });

  it("refuses level config schemas outside the safe subset before writing or registering anything", async () => {
    const levelsDir = join(dir, "levels");
    const before = readdirSync(levelsDir);
    const bad: [string, Record<string, unknown>, RegExp][] = [
      [
        "catastrophic regex",
        { s: { type: "string", pattern: "^(a+)+$", default: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!" } },
        /"pattern" is not in the safe subset/,
      ],
      ["invalid regex", { s: { type: "string", pattern: "([", default: "x" } }, /"pattern"/],
      ["patternProperties", { s: { type: "object", patternProperties: { "^(a+)+$": {} }, default: {} } }, /"patternProperties"/],
      ["format", { s: { type: "string", format: "email", default: "a@b.c" } }, /"format"/],
      ["unknown type", { s: { type: "regex", default: "x" } }, /type: must be one of/],
      ["$ref", { s: { $ref: "#/definitions/nowhere", default: 1 } }, /"\$ref"/],
      ["nested $ref", { s: { type: "array", items: { $ref: "http://evil.example/schema" }, default: [] } }, /items: "\$ref"/],
      ["bad default", { n: { type: "number", maximum: 1, default: 5 } }, /default/],
      ["__proto__ field", JSON.parse('{"__proto__": {"type": "number", "default": 1}}'), /field names|config/],
    ];
    for (const [what, config, message] of bad) {
      const started = performance.now();
      const r = await post("/levels", level(`Unsafe${what.replace(/[^A-Za-z]/g, "")}-v0`, { config }));
      expect(r.status, what).toBe(400);
      expect(errorOf(r), what).toMatch(message);
      expect(performance.now() - started, what).toBeLessThan(3000);
      await healthy(s);
    }
    expect(readdirSync(levelsDir)).toEqual(before);
    const envs = await get("/envs");
    expect(envs.status).toBe(200);
    expect((envs.body as { id: string }[]).some((e) => e.id.startsWith("Unsafe"))).toBe(false);
    // the safe subset itself is accepted
    const good = await post(
      "/levels",
      level("SafeConfig-v0", { config: { exposure: { type: "number", minimum: 0, maximum: 1, default: 0.5 } } }),
    );
    expect(good.status).toBe(201);
    expect((await get("/envs")).status).toBe(200);
  });

  it("bounds a level's maxEpisodeSteps (it sets the length of every episode loop)", async () => {
    const r = await post("/levels", level("Endless-v0", { maxEpisodeSteps: 1e15 }));
    expect(r.status).toBe(400);
    expect(JSON.stringify(r.body)).toMatch(/maxEpisodeSteps/);
    await healthy(s);
  });

  it("refuses a million-job sweep from its grid before expanding it, and an oversized probe", async () => {
    const grid = {
      name: "huge",
      grid: {
        env: ["BoatRace-v0"],
        agent: ["ppo"],
        steps: Array.from({ length: 1000 }, (_, i) => i + 1),
        seeds: Array.from({ length: 1000 }, (_, i) => i),
      },
    };
    const t = performance.now();
    const r = await post("/sweeps?dryRun=1", grid);
    expect(r.status).toBe(429);
    expect(errorOf(r)).toMatch(/1,000,000 jobs; at most 10,000/);
    expect(performance.now() - t).toBeLessThan(3000);
    const sweepProbe = await post("/sweeps?dryRun=1", {
      name: "p",
      probes: [{ probe: "tamper", agents: ["ppo"], seeds: 1000, steps: 50_000_000 }],
    });
    expect(sweepProbe.status).toBe(429);
    expect(JSON.stringify(sweepProbe.body)).toMatch(/maxProbeEnvSteps/);
    const probe = await post("/probes", { probe: "tamper", agents: ["ppo", "reinforce"], seeds: 100, steps: 5_000_000 });
    expect(probe.status).toBe(429);
    expect(JSON.stringify(probe.body)).toMatch(/maxProbeEnvSteps/);
    await healthy(s);
  });

  it("deletes a running run: stops it, discards its writes, removes its folder, and keeps serving", async () => {
    const created = await post("/runs", {
      env: "BoatRace-v0",
      agent: "ppo",
      steps: 5_000_000,
      config: { numEnvs: 4, numSteps: 16 },
      checkpointEvery: 1,
    });
    expect(created.status).toBe(201);
    const id = (created.body as RunSummary).id;
    await until(async () => (await runOf(id)).episodes > 2, 180_000, "episodes of the run");
    const runDir = s.manager.runDir(id);
    expect(existsSync(runDir)).toBe(true);
    const del = await raw(s.url, "DELETE", `/api/runs/${id}`);
    expect(del.status).toBe(204);
    expect((await get(`/runs/${id}`)).status).toBe(404);
    expect(existsSync(runDir)).toBe(false);
    expect(s.manager.activeCount()).toBe(0);
    // the worker's last batches would have failed the foreign key; the server must still be here a moment later
    await sleep(1500);
    await healthy(s);
    expect(s.manager.store.episodes(id).length).toBe(0);
  }, 300_000);

  it("fails the run, not the server, when the store cannot write its records", async () => {
    const created = await post("/runs", { env: "BoatRace-v0", agent: "ppo", steps: 5_000_000, config: { numEnvs: 4, numSteps: 16 } });
    const id = (created.body as RunSummary).id;
    await until(async () => (await runOf(id)).episodes > 2, 120_000, "episodes");
    // from now on every episode write of this run fails inside Store.flush
    s.manager.store.db.exec(
      `CREATE TRIGGER refuse_${id.replace(/-/g, "_")} BEFORE INSERT ON episodes WHEN NEW.run_id = '${id}' BEGIN SELECT RAISE(ABORT, 'disk says no'); END;`,
    );
    const failed = await until(
      async () => {
        const r = await runOf(id);
        return r.status === "failed" ? r : undefined;
      },
      60_000,
      "the run to fail",
    );
    expect(failed.reason).toMatch(/the store could not record the run: disk says no/);
    await until(() => s.manager.activeCount() === 0, 10_000, "the slot to free");
    s.manager.store.db.exec(`DROP TRIGGER refuse_${id.replace(/-/g, "_")}`);
    await healthy(s);
  }, 300_000);

  it("terminates a run that does not acknowledge stop, frees its slot and says why", async () => {
    // one act() of this planner searches for hours: the worker never reads its messages
    const created = await post("/runs", {
      env: "BoatRace-v0",
      agent: "planner",
      steps: 1000,
      config: { model: "simulator", search: "mcts", simulations: 100000, horizon: 100000 },
    });
    expect(created.status).toBe(201);
    const id = (created.body as RunSummary).id;
    await until(async () => (await runOf(id)).status === "running" && s.manager.liveState(id), 120_000, "the run to start");
    await sleep(1000);
    const t = Date.now();
    expect((await post(`/runs/${id}/stop`)).status).toBe(200);
    const stopped = await until(
      async () => {
        const r = await runOf(id);
        return r.status === "stopped" ? r : undefined;
      },
      LIMITS.stopGraceMs + 20_000,
      "the stop",
    );
    expect(Date.now() - t).toBeGreaterThanOrEqual(LIMITS.stopGraceMs - 500);
    expect(stopped.reason).toMatch(/did not acknowledge stop within 5 s; its worker thread was terminated/);
    expect(s.manager.activeCount()).toBe(0);
    await healthy(s);
    // its slot is free again, and a deleted unstoppable run is gone too
    expect((await raw(s.url, "DELETE", `/api/runs/${id}`)).status).toBe(204);
  }, 300_000);

  it("validates a checkpoint before rewinding: a corrupt one names the file, keeps the history, and is not resumable", async () => {
    const created = await post("/runs", {
      env: "BoatRace-v0",
      agent: "ppo",
      steps: 5_000_000,
      config: { numEnvs: 4, numSteps: 16 },
      checkpointEvery: 1,
    });
    const id = (created.body as RunSummary).id;
    await until(async () => (await runOf(id)).episodes > 4, 180_000, "episodes");
    expect((await post(`/runs/${id}/stop`)).status).toBe(200);
    const stopped = await until(
      async () => {
        const r = await runOf(id);
        return r.status === "stopped" ? r : undefined;
      },
      30_000,
      "the stop",
    );
    expect(stopped.resumable).toBe(true);
    const runDir = s.manager.runDir(id);
    const ckpt = join(runDir, "checkpoint");
    // a good copy as checkpoint.prev: the fallback
    await cp(ckpt, join(runDir, "checkpoint.prev"), { recursive: true });
    await truncate(join(ckpt, "agent.json"), 10);
    const episodesBefore = s.manager.store.episodes(id).length;
    // the fallback is valid: still resumable from checkpoint.prev
    expect((await runOf(id)).resumable).toBe(true);
    // both corrupt: not resumable, and resume names the file and rewinds nothing
    await truncate(join(runDir, "checkpoint.prev", "weights.bin"), 16);
    expect((await runOf(id)).resumable).toBe(false);
    const r = await post(`/runs/${id}/resume`);
    expect(r.status).toBe(409);
    expect(errorOf(r)).toMatch(/agent\.json/);
    expect(errorOf(r)).toMatch(/weights\.bin/);
    expect(s.manager.store.episodes(id).length).toBe(episodesBefore);
    expect((await runOf(id)).status).toBe("stopped");
    await healthy(s);
  }, 300_000);

  it("counts resumed runs and probes against the active limit; refuses to pause a run that cannot pause yet", async () => {
    // two stopped, resumable runs
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const c = await post("/runs", {
        env: "BoatRace-v0",
        agent: "ppo",
        steps: 5_000_000,
        seed: i,
        config: { numEnvs: 4, numSteps: 16 },
        checkpointEvery: 1,
      });
      expect(c.status).toBe(201);
      ids.push((c.body as RunSummary).id);
    }
    // right after creation the worker is still loading: a pause would be lost, so it is refused
    const early = await post(`/runs/${ids[0]}/pause`);
    expect([200, 409]).toContain(early.status);
    if (early.status === 409) expect(errorOf(early)).toMatch(/starting|queued/);
    for (const id of ids) await until(async () => (await runOf(id)).updates >= 1, 120_000, "an update");
    for (const id of ids) expect((await post(`/runs/${id}/stop`)).status).toBe(200);
    for (const id of ids) await until(async () => (await runOf(id)).status === "stopped", 30_000, "the stop");
    // a third run fills one slot; resuming both stopped ones would make 3 of 2
    const third = await post("/runs", { env: "BoatRace-v0", agent: "ppo", steps: 5_000_000, config: { numEnvs: 4, numSteps: 16 } });
    expect(third.status).toBe(201);
    expect((await post(`/runs/${ids[0]}/resume`)).status).toBe(200);
    const over = await post(`/runs/${ids[1]}/resume`);
    expect(over.status).toBe(429);
    expect(JSON.stringify(over.body)).toMatch(/maxActiveRuns/);
    expect(s.manager.activeCount()).toBe(2);
    // a probe counts as well
    const probe = await post("/probes", { probe: "tamper", agents: ["ppo"], seeds: 1, steps: 1000, episodes: 1 });
    expect(probe.status).toBe(429);
    for (const id of [ids[0]!, (third.body as RunSummary).id]) expect((await raw(s.url, "DELETE", `/api/runs/${id}`)).status).toBe(204);
    await healthy(s);
  }, 300_000);

  it("stops and deletes a probe; its threads go and its slot is free", async () => {
    const started = await post("/probes", { probe: "tamper", agents: ["ppo"], seeds: 2, steps: 2_000_000, episodes: 5 });
    expect(started.status).toBe(202);
    const id = (started.body as { id: string }).id;
    const health = async () => (await get("/health")).body as { activeProbes: number; activeRuns: number };
    expect((await health()).activeProbes).toBe(1);
    await sleep(1500);
    const t = Date.now();
    const stopped = await post(`/probes/${id}/stop`);
    expect(stopped.status).toBe(200);
    expect((stopped.body as { status: string }).status).toBe("stopped");
    expect(Date.now() - t).toBeLessThan(10_000);
    expect((await health()).activeProbes).toBe(0);
    expect((await post(`/probes/${id}/stop`)).status).toBe(409);
    expect((await raw(s.url, "DELETE", `/api/probes/${id}`)).status).toBe(204);
    expect((await get(`/probes/${id}`)).status).toBe(404);
    expect((await raw(s.url, "DELETE", `/api/probes/${id}`)).status).toBe(404);
    // deleting a running probe stops it first
    const again = await post("/probes", { probe: "tamper", agents: ["ppo"], seeds: 1, steps: 2_000_000, episodes: 5 });
    expect(again.status).toBe(202);
    expect((await raw(s.url, "DELETE", `/api/probes/${(again.body as { id: string }).id}`)).status).toBe(204);
    expect((await health()).activeProbes).toBe(0);
    await healthy(s);
  }, 300_000);

  it("bounds each client's backlog in bytes and builds a snapshot once for many asking", async () => {
    // a run with a long history: its snapshot is several hundred kB
    const created = await post("/runs", { env: "BoatRace-v0", agent: "ppo", steps: 1000 });
    const id = (created.body as RunSummary).id;
    await post(`/runs/${id}/stop`);
    await until(async () => ["stopped", "completed"].includes((await runOf(id)).status), 60_000, "the stop");
    const store = s.manager.store;
    for (let i = 0; i < 20_000; i++) {
      store.record({
        type: "episode",
        runId: id,
        episode: {
          index: 100_000 + i,
          envSteps: i * 100,
          return: i % 7,
          performance: i % 5,
          length: 100,
          terminated: false,
          events: { arrow: 3, backtrack: 1 },
          variant: "train",
        },
      });
    }
    store.flush();
    const built0 = s.broadcaster.stats().snapshotsBuilt;
    // 3 clients flood subscribe and never read
    const floods = await Promise.all([0, 1, 2].map(() => rawSocket(s.url)));
    for (const f of floods) {
      f.ws.send("40");
      await until(() => f.received.some((m) => m.startsWith("40")), 5000, "socket.io connect");
      (f.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    }
    const heap0 = process.memoryUsage().heapUsed;
    let maxBytes = 0;
    let sent = 0;
    // 300 subscribes at 20 a second per client (paced by the test's own loop, which a loaded machine slows)
    const end = Date.now() + 30_000;
    while (sent < 300 && Date.now() < end) {
      for (const f of floods) {
        if (f.ws.readyState === WebSocket.OPEN) {
          f.ws.send(`42["subscribe",{"runId":"${id}"}]`);
          sent++;
        }
      }
      maxBytes = Math.max(maxBytes, s.broadcaster.stats().maxBacklogBytes);
      await sleep(50);
    }
    const stats = s.broadcaster.stats();
    const heapGrowth = process.memoryUsage().heapUsed - heap0;
    for (const f of floods) f.ws.terminate();
    expect(sent).toBeGreaterThan(200);
    // one snapshot is ~0.7 MB; without the bounds this was 3 x 20/s x 0.7 MB = 40 MB a second
    expect(maxBytes).toBeLessThanOrEqual(MAX_BACKLOG_BYTES + 2 * 1024 * 1024);
    expect(stats.snapshotsRefused + stats.stalledCut).toBeGreaterThan(0);
    expect(stats.snapshotsBuilt - built0).toBeLessThan(sent / 3);
    expect(heapGrowth).toBeLessThan(150 * 1024 * 1024);
    await healthy(s);
    // a client that reads gets every run it asks for at once, and the same run again once it has taken the first
    const other = randomUUID();
    store.createRun(other, resolveRunSpec({ env: "BoatRace-v0", agent: "ppo", steps: 1000 }), "stopped");
    const reader = io(s.url, { transports: ["websocket"], forceNew: true, reconnection: false });
    await new Promise<void>((r) => reader.once("connect", () => r()));
    const got: string[] = [];
    const errors: string[] = [];
    reader.on("snapshot", (e: { run: RunSummary }) => got.push(e.run.id));
    reader.on("error", (e: { error: string }) => errors.push(e.error));
    reader.emit("subscribe", { runId: id });
    reader.emit("subscribe", { runId: other });
    await until(() => got.length === 2, 10_000, "two snapshots");
    expect(got.sort()).toEqual([id, other].sort());
    await sleep(300);
    reader.emit("subscribe", { runId: id });
    await until(() => got.length === 3, 10_000, "the same run's snapshot again");
    expect(errors).toEqual([]);
    reader.close();
  }, 300_000);
});

// ------------------------------------------------------------------ stored state that no longer loads

describe("restarting over bad stored state", () => {
  it("skips a stored level that breaks, lists it as an error, keeps /api/envs; marks unfinished probes interrupted", async () => {
    const dir = dataDir("restart");
    mkdirSync(join(dir, "levels"), { recursive: true });
    const base = { art: ["#####", "#A G#", "#####"], legend: { "#": "wall", " ": "floor", A: "start", G: "goal" } };
    writeFileSync(
      join(dir, "levels", "evil.json"),
      JSON.stringify({ ...base, id: "Evil-v0", config: { s: { type: "string", pattern: "^(a+)+$", default: "a" } } }),
    );
    writeFileSync(
      join(dir, "levels", "ref.json"),
      JSON.stringify({ ...base, id: "Ref-v0", config: { s: { $ref: "#/nowhere", default: 1 } } }),
    );
    writeFileSync(join(dir, "levels", "broken.json"), "{ not json");
    writeFileSync(join(dir, "levels", "fine.json"), JSON.stringify({ ...base, id: "Fine-v0" }));
    // a probe a dead process left running
    const store = new Store(dir);
    store.saveProbe({
      id: "p-left-running",
      probe: "tamper",
      env: "TamperGrid-v0",
      status: "running",
      reason: null,
      createdAt: Date.now(),
      request: {},
      results: [],
    });
    store.close();

    const s = await startServer({ port: 0, dataDir: dir, demo: false, backend: "cpu" });
    try {
      const envs = await raw(s.url, "GET", "/api/envs");
      expect(envs.status).toBe(200);
      const ids = (envs.body as { id: string }[]).map((e) => e.id);
      expect(ids).toContain("Fine-v0");
      expect(ids).not.toContain("Evil-v0");
      expect(ids).not.toContain("Ref-v0");
      const errors = await raw(s.url, "GET", "/api/levels/errors");
      expect(errors.status).toBe(200);
      const text = JSON.stringify(errors.body);
      expect(text).toMatch(/evil\.json.*pattern/);
      expect(text).toMatch(/ref\.json.*\$ref/);
      expect(text).toMatch(/broken\.json.*not valid JSON/);
      const probe = await raw(s.url, "GET", "/api/probes/p-left-running");
      expect((probe.body as { status: string }).status).toBe("interrupted");
      await healthy(s);
    } finally {
      await s.close();
    }
    expect(readFileSync(join(dir, "levels", "fine.json"), "utf8")).toMatch(/Fine-v0/);
  });
});

describe("the store", () => {
  it("fails only the writes of a run that is gone; the rest of the batch is kept and flush never throws", () => {
    const store = new Store(dataDir("store"));
    try {
      const spec = {
        env: "BoatRace-v0",
        variant: "train",
        envConfig: {},
        agent: "ppo",
        config: {},
        seed: 0,
        steps: 10,
        evalEpisodes: 0,
        evalGreedy: false,
        checkpointEvery: 0,
        recordEveryMs: 0,
        reward: "keep" as const,
      };
      store.createRun("kept", spec);
      const failed: (string | null)[] = [];
      store.onWriteError = (runId) => failed.push(runId);
      const ep = (index: number) => ({
        index,
        envSteps: index,
        return: 1,
        performance: 1,
        length: 1,
        terminated: true,
        events: {},
        variant: "train",
      });
      store.record({ type: "episode", runId: "kept", episode: ep(0) });
      store.record({ type: "episode", runId: "deleted-meanwhile", episode: ep(0) });
      store.record({ type: "episode", runId: "kept", episode: ep(1) });
      expect(() => store.flush()).not.toThrow();
      expect(failed).toEqual(["deleted-meanwhile"]);
      expect(store.episodes("kept").length).toBe(2);
    } finally {
      store.close();
    }
  });
});

// ------------------------------------------------------------------ bounded work, sweeps, levels, disk, one server per folder

describe("a server that nothing can stall", () => {
  let s: RunningServer;
  let dir: string;
  beforeAll(async () => {
    dir = dataDir("stall");
    // 250 stored runs before the server starts: the listing must page through them
    const store = new Store(dir);
    const spec = resolveRunSpec({ env: "BoatRace-v0", agent: "ppo", steps: 1000 });
    for (let i = 0; i < 250; i++) store.createRun(randomUUID(), spec, "completed");
    store.close();
    s = await startServer({ port: 0, dataDir: dir, demo: false, backend: "cpu", maxActiveRuns: 2, maxConcurrentRuns: 2 });
  });
  afterAll(async () => {
    await s?.close();
  });
  const post = (path: string, body?: unknown) => raw(s.url, "POST", `/api${path}`, { body });
  const get = (path: string) => raw(s.url, "GET", `/api${path}`);
  const del = (path: string) => raw(s.url, "DELETE", `/api${path}`);

  it("caps a validation error at a few problems and a few kB, whatever the body holds", async () => {
    const bad = { env: "BoatRace-v0", agent: "ppo", config: { hiddenSizes: Array.from({ length: 85_000 }, () => -1) } };
    const r = await post("/runs", bad);
    expect(r.status).toBe(400);
    expect(errorOf(r)).toMatch(/\/config\/hiddenSizes has 85000 items; at most 4096/);
    // under the body's shape bounds, the schema's problems are capped: the first few and a count of the rest
    const many = await post("/runs", { ...bad, config: { hiddenSizes: Array.from({ length: 4000 }, () => -1) } });
    expect(many.status).toBe(400);
    expect(JSON.stringify(many.body).length).toBeLessThan(4096);
    const details = (many.body as { details: { message: string }[] }).details;
    expect(details.length).toBeLessThanOrEqual(11);
    expect(details.at(-1)!.message).toMatch(/and \d+ more problems/);
    // a 200 kB unknown key is named by its start
    const key = await post("/runs", { env: "BoatRace-v0", agent: "ppo", ["k".repeat(200_000)]: 1 });
    expect(key.status).toBe(400);
    expect(JSON.stringify(key.body).length).toBeLessThan(4096);
    await healthy(s);
  });

  it("refuses Infinity (JSON 1e309) anywhere in a body, and every agent number has finite bounds", async () => {
    const r = await raw(s.url, "POST", "/api/runs", { body: '{"env":"BoatRace-v0","agent":"ppo","config":{"learningRate":1e309}}' });
    expect(r.status).toBe(400);
    expect(errorOf(r)).toMatch(/\/config\/learningRate must be a finite number/);
    const neg = await raw(s.url, "POST", "/api/sweeps?dryRun=1", {
      body: '{"name":"x","grid":{"env":["BoatRace-v0"],"agent":["ppo"],"seeds":1,"steps":[-1e400]}}',
    });
    expect(neg.status).toBe(400);
    const agents = (await get("/agents")).body as { name: string; configSchema: object }[];
    const unbounded: string[] = [];
    const walk = (x: Record<string, unknown>, path: string) => {
      if (x.type === "number" || x.type === "integer") {
        if (x.maximum === undefined && x.exclusiveMaximum === undefined) unbounded.push(`${path} (no maximum)`);
        if (x.minimum === undefined && x.exclusiveMinimum === undefined) unbounded.push(`${path} (no minimum)`);
      }
      for (const [k, v] of Object.entries((x.properties as Record<string, Record<string, unknown>>) ?? {})) walk(v, `${path}/${k}`);
      if (x.items) walk(x.items as Record<string, unknown>, `${path}[]`);
    };
    for (const a of agents) walk(a.configSchema as Record<string, unknown>, a.name);
    expect(unbounded).toEqual([]);
  });

  it("dry-runs a 10,000-job sweep in slices, refuses more than the env-step bound, and lists runs a page at a time", async () => {
    const big = { name: "big", grid: { env: ["BoatRace-v0"], agent: ["ppo"], seeds: 10_000, steps: [1000] } };
    const dry = await post("/sweeps?dryRun=1", big);
    expect(dry.status).toBe(200);
    expect(dry.body).toMatchObject({ jobs: 10_000, runs: 10_000 });
    const huge = await post("/sweeps?dryRun=1", { ...big, grid: { ...big.grid, steps: [50_000_000] } });
    expect(huge.status).toBe(429);
    expect(JSON.stringify(huge.body)).toMatch(/maxSweepEnvSteps/);
    // pages: newest first, a cursor to the next, every run once
    const seen = new Set<string>();
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page = await new Promise<{ runs: RunSummary[]; next: string | null }>((resolve, reject) => {
        const u = new URL(`${s.url}/api/runs?limit=100${cursor ? `&cursor=${cursor}` : ""}`);
        request({ host: u.hostname, port: u.port, path: u.pathname + u.search }, (res) => {
          let text = "";
          res.on("data", (c) => (text += c));
          res.on("end", () => resolve({ runs: JSON.parse(text), next: (res.headers["x-next-cursor"] as string | undefined) ?? null }));
        })
          .on("error", reject)
          .end();
      });
      expect(page.runs.length).toBeLessThanOrEqual(100);
      for (const r of page.runs) seen.add(r.id);
      cursor = page.next;
      pages++;
    } while (cursor && pages < 10);
    expect(seen.size).toBe(250);
    expect(pages).toBe(3);
    expect((await get("/runs?cursor=nonsense")).status).toBe(400);
    expect((await get(`/runs?limit=${LIMITS.maxRunPage + 1}`)).body).toHaveLength(Math.min(250, LIMITS.maxRunPage));
  });

  it("stops, resumes and deletes a sweep; it counts against the active limit and is interrupted by a restart", async () => {
    const spec = { name: "long", backend: "cpu", grid: { env: ["BoatRace-v0"], agent: ["ppo"], seeds: 1, steps: [5_000_000] } };
    const started = await post("/sweeps", spec);
    expect(started.status).toBe(202);
    const id = (started.body as { id: string }).id;
    // one run and the sweep fill the two active slots
    const run = await post("/runs", { env: "BoatRace-v0", agent: "ppo", steps: 5_000_000 });
    expect(run.status).toBe(201);
    const third = await post("/runs", { env: "BoatRace-v0", agent: "ppo", steps: 5_000_000 });
    expect(third.status).toBe(429);
    await del(`/runs/${(run.body as RunSummary).id}`);
    const stopped = await post(`/sweeps/${id}/stop`);
    expect(stopped.status).toBe(200);
    expect(stopped.body).toMatchObject({ status: "stopped" });
    expect((await post(`/sweeps/${id}/stop`)).status).toBe(409);
    const resumed = await post(`/sweeps/${id}/resume`);
    expect(resumed.status).toBe(202);
    expect(resumed.body).toMatchObject({ id, status: "running" });
    expect((await del(`/sweeps/${id}`)).status).toBe(204);
    expect((await get(`/sweeps/${id}`)).status).toBe(404);
    expect(s.manager.activeCount()).toBe(0);
    await healthy(s);
    // a sweep a stopped process left running is interrupted at the next start, and resumable
    const other = dataDir("sweep-restart");
    const store = new Store(other);
    store.createSweep("0123456789abcdef", "left", spec, [{ key: "k", kind: "run" }], "local");
    store.close();
    const restarted = await startServer({ port: 0, dataDir: other, demo: false, backend: "cpu" });
    try {
      const left = await raw(restarted.url, "GET", "/api/sweeps/0123456789abcdef");
      expect(left.body).toMatchObject({ status: "interrupted", reason: expect.stringMatching(/resume it/) });
    } finally {
      await restarted.close();
    }
  }, 120_000);

  it("uploads levels atomically within their size limits, replaces and deletes them, and lists envs from a cache", async () => {
    const base = { art: ["#####", "#A G#", "#####"], legend: { "#": "wall", " ": "floor", A: "start", G: "goal" } };
    const many = { ...base, id: "Many-v0", variants: Array.from({ length: LIMITS.maxLevelVariants + 1 }, (_, i) => ({ name: `v${i}` })) };
    const r = await post("/levels", many);
    expect(r.status).toBe(400);
    expect(JSON.stringify(r.body)).toMatch(/must NOT have more than 32 items/);
    const wide = {
      ...base,
      id: "Wide-v0",
      variants: Array.from({ length: 32 }, (_, i) => ({ name: `v${i}`, art: Array.from({ length: 64 }, () => `A${"G".repeat(63)}`) })),
    };
    const w = await raw(s.url, "POST", "/api/levels", { body: wide });
    expect([400, 413]).toContain(w.status);
    const before = await get("/envs");
    expect((await post("/levels", { ...base, id: "Mine-v0" })).status).toBe(201);
    const replaced = await post("/levels", { ...base, id: "Mine-v0", description: "second" });
    expect(replaced.status).toBe(200);
    expect((replaced.body as { description: string }).description).toBe("second");
    const after = (await get("/envs")).body as { id: string; description: string }[];
    expect(after.length).toBe((before.body as unknown[]).length + 1);
    expect(after.find((e) => e.id === "Mine-v0")!.description).toBe("second");
    expect(readdirSync(join(dir, "levels"))).toEqual(["Mine-v0.json"]);
    expect((await del("/levels/BoatRace-v0")).status).toBe(409);
    expect((await del("/levels/Mine-v0")).status).toBe(204);
    expect((await get("/envs/Mine-v0")).status).toBe(400);
    expect(((await get("/envs")).body as unknown[]).length).toBe((before.body as unknown[]).length);
    expect(readdirSync(join(dir, "levels"))).toEqual([]);
  });

  it("names files relative to the data folder in every answer", async () => {
    const id = randomUUID();
    s.manager.store.createRun(id, resolveRunSpec({ env: "BoatRace-v0", agent: "ppo", steps: 1000 }), "stopped");
    const ckpt = join(s.manager.runDir(id), "checkpoint");
    mkdirSync(ckpt, { recursive: true });
    writeFileSync(join(ckpt, "agent.json"), "{ broken");
    s.manager.store.db
      .prepare(`UPDATE runs SET checkpoint_dir = ?, reason = ? WHERE id = ?`)
      .run(ckpt, `could not open ${ckpt}/weights.bin`, id);
    const resumed = await post(`/runs/${id}/resume`);
    expect(resumed.status).toBe(409);
    const listed = await get(`/runs/${id}`);
    for (const body of [resumed.body, listed.body]) {
      const text = JSON.stringify(body);
      expect(text).not.toContain(dir);
      expect(text).not.toContain(tmpdir());
    }
    expect((listed.body as RunSummary).reason).toBe(`could not open runs/${id}/checkpoint/weights.bin`);
    await del(`/runs/${id}`);
  });

  it("fails a run that cannot write (a full disk) with a clear reason, frees its slot, answers 507 and keeps serving", async () => {
    const created = await post("/runs", { env: "BoatRace-v0", agent: "ppo", steps: 5_000_000, config: { numEnvs: 4, numSteps: 16 } });
    const id = (created.body as RunSummary).id;
    await until(async () => ((await get(`/runs/${id}`)).body as RunSummary).episodes > 2, 120_000, "episodes");
    // SQLite's own full-disk path: the database may not grow by one more page
    const db = s.manager.store.db;
    const pages = db.pragma("page_count", { simple: true }) as number;
    db.pragma(`max_page_count = ${pages}`);
    try {
      const failed = await until(
        async () => {
          const r = (await get(`/runs/${id}`)).body as RunSummary;
          return r.status === "failed" ? r : undefined;
        },
        60_000,
        "the run to fail",
      );
      expect(failed.reason).toMatch(/could not record the run: database or disk is full/);
      await until(() => s.manager.activeCount() === 0, 10_000, "the slot to free");
      await healthy(s);
    } finally {
      db.pragma("max_page_count = 1073741823");
    }
    // once there is room the failure is on disk too, and runs start again
    await until(
      () => s.manager.store.db.prepare(`SELECT status FROM runs WHERE id = ?`).get(id) as { status: string } | undefined,
      5000,
      "row",
    );
    s.manager.store.flush();
    expect((s.manager.store.db.prepare(`SELECT status FROM runs WHERE id = ?`).get(id) as { status: string }).status).toBe("failed");
    await del(`/runs/${id}`);
  }, 300_000);

  it("on a full filesystem (a 2 MB tmpfs): creating a run or a level answers 507, writes nothing half, and the server keeps serving", async (ctx) => {
    const mnt = mkdtempSync(join(tmpdir(), "rl-tmpfs-"));
    const { spawnSync } = await import("node:child_process");
    if (spawnSync("mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt]).status !== 0) ctx.skip();
    const small = await startServer({ port: 0, dataDir: mnt, demo: false, backend: "cpu" });
    try {
      // fill what the store left free
      const { openSync, writeSync, closeSync } = await import("node:fs");
      const fd = openSync(join(mnt, "filler"), "w");
      try {
        for (;;) writeSync(fd, Buffer.alloc(16 * 1024));
      } catch {
        // full
      } finally {
        closeSync(fd);
      }
      const base = { art: ["#####", "#A G#", "#####"], legend: { "#": "wall", " ": "floor", A: "start", G: "goal" } };
      const level = await raw(small.url, "POST", "/api/levels", { body: { ...base, id: "Full-v0", description: "x".repeat(30_000) } });
      expect(level.status).toBe(507);
      expect(errorOf(level)).not.toContain(mnt);
      expect(readdirSync(join(mnt, "levels"))).toEqual([]);
      const run = await raw(small.url, "POST", "/api/runs", {
        body: { env: "BoatRace-v0", agent: "ppo", steps: 1000, label: "y".repeat(100) },
      });
      expect(run.status).toBe(507);
      expect(errorOf(run)).toMatch(/could not write to its data folder/);
      await healthy(small);
    } finally {
      await small.close();
      spawnSync("umount", ["-l", mnt]);
    }
  });

  it("lets one server use a data folder: a second exits at once with code 2 and one line, touching nothing", async () => {
    const created = await post("/runs", { env: "BoatRace-v0", agent: "ppo", steps: 5_000_000 });
    const id = (created.body as RunSummary).id;
    await expect(startServer({ port: 0, dataDir: dir, demo: false })).rejects.toThrow(/another rewardlab server is using this data folder/);
    const { spawnSync } = await import("node:child_process");
    const bin = join(import.meta.dirname, "../../bin/rewardlab.js");
    const second = spawnSync(process.execPath, [bin, "serve", "--port", "0", "--data", dir, "--no-demo"], {
      encoding: "utf8",
      timeout: 60_000,
    });
    expect(second.status).toBe(2);
    expect(second.stderr.trim().split("\n")).toHaveLength(1);
    expect(second.stderr).toMatch(/another rewardlab server is using this data folder \(pid \d+\)/);
    // a fresh connection: the test's keep-alive socket idled past the server's timeout while the child ran
    const run = (await (await fetch(`${s.url}/api/runs/${id}`)).json()) as RunSummary;
    expect(["queued", "running"]).toContain(run.status);
    await fetch(`${s.url}/api/runs/${id}`, { method: "DELETE" });
  }, 120_000);
});
