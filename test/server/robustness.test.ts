/**
 * Bad input never hurts the server: 2,000 generated malformed REST bodies
 * and 2,000 malformed socket messages (wrong types, missing fields, huge
 * values, deep nesting, unknown keys), each answered with a 4xx or an error
 * event; limits answer 413/429/400 naming the limit; a non-local bind
 * refuses requests and sockets without the token.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { io, type Socket } from "socket.io-client";
import "../../envs/index.ts";
import "../../agents/index.ts";
import { Rng } from "../../envs/rng.ts";
import { startServer, type RunningServer } from "../../server/main.ts";

let server: RunningServer;
beforeAll(async () => {
  server = await startServer({ port: 0, dataDir: mkdtempSync(join(tmpdir(), "rl-fuzz-")), demo: false, maxActiveRuns: 1, backend: "cpu" });
});
afterAll(async () => {
  await server?.close();
});

const VALID = { env: "BoatRace-v0", agent: "ppo", steps: 1000, seed: 1 };

function nest(depth: number): unknown {
  let x: unknown = 1;
  for (let i = 0; i < depth; i++) x = { a: x };
  return x;
}

/** One malformed request: [method, path, raw body]. Every case is invalid by construction. */
function malformed(rng: Rng, i: number): [string, string, string] {
  const pick = <T>(xs: T[]): T => xs[rng.int(xs.length)]!;
  const wrong = () => pick<unknown>([42, -1, 3.5, true, null, [], [1, 2], {}, { x: 1 }, "", "x".repeat(5000), 1e308]);
  const runBody = (): unknown => {
    const b: Record<string, unknown> = { ...VALID };
    switch (i % 8) {
      case 0:
        b[pick(["env", "agent"])] = pick<unknown>([42, null, true, [], {}, 1e308]);
        break;
      case 1:
        delete b[pick(["env", "agent"])];
        break;
      case 2:
        b[pick(["steps", "seed", "evalEpisodes", "checkpointEvery"])] = pick<unknown>([1e12, -5, 1.5, "100", 1e308, null]);
        break;
      case 3:
        b.config = nest(50 + rng.int(2000));
        break;
      case 4:
        b[`unknown${rng.int(1000)}`] = wrong();
        break;
      case 5:
        b.config = { [pick(["learningRate", "gamma", "clipCoef", "numEnvs"])]: pick<unknown>(["fast", -1e9, [], {}, null, 1e308]) };
        break;
      case 6:
        b.variant = pick<unknown>(["nope", 7, "", "x".repeat(500)]);
        break;
      default:
        return pick<unknown>([[], [VALID], "string", 7, null, nest(1000)]);
    }
    return b;
  };
  switch (i % 5) {
    case 0:
    case 1:
      return ["POST", "/api/runs", JSON.stringify(runBody())];
    case 2:
      return [
        "POST",
        "/api/runs/00000000-0000-0000-0000-000000000000/intervene",
        JSON.stringify(pick<unknown>([{}, { variant: 3 }, { learning: "yes" }, { reward: "more" }, { x: 1 }, nest(300)])),
      ];
    case 3:
      return [
        "POST",
        "/api/probes",
        JSON.stringify(
          pick<unknown>([
            { probe: "tamper" },
            { probe: 1, agents: [] },
            { probe: "tamper", agents: ["ppo"], seeds: 1e9 },
            { probe: "nope", agents: ["ppo"] },
            { probe: "tamper", agents: ["x".repeat(100)] },
            { probe: "tamper", agents: "ppo" },
          ]),
        ),
      ];
    default:
      return pick<[string, string, string]>([
        [
          "POST",
          "/api/levels",
          JSON.stringify(
            pick<unknown>([
              {},
              { id: "X-v0" },
              { id: "Ok-v0", description: "d", art: ["###", "#Z#", "###"], legend: { "#": "wall" } },
              nest(500),
            ]),
          ),
        ],
        ["POST", "/api/runs", "{not json" + "}".repeat(rng.int(5))],
        ["GET", `/api/runs/${encodeURIComponent(pick(["../../etc/passwd", "x".repeat(200), "%00", "a b"]))}`, ""],
        ["GET", `/api/runs?${pick(["x=1", "limit=-1", "from=abc"])}`, ""],
        ["DELETE", `/api/runs/${pick(["nope", "..", "00000000-0000-0000-0000-000000000000"])}`, ""],
      ]);
  }
}

describe("malformed REST bodies", () => {
  it("answers 2,000 of them with 4xx JSON errors and keeps serving", async () => {
    const rng = new Rng(1234);
    const statuses = new Map<number, number>();
    for (let i = 0; i < 2000; i++) {
      const [method, path, body] = malformed(rng, i);
      const res = await fetch(`${server.url}${path}`, {
        method,
        ...(method === "GET" || method === "DELETE" ? {} : { headers: { "content-type": "application/json" }, body }),
      });
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      if (res.status < 400 || res.status >= 500) throw new Error(`${method} ${path} ${body.slice(0, 200)} answered ${res.status}`);
      const json = (await res.json()) as { error: string };
      expect(json.error).toBeTypeOf("string");
      expect(JSON.stringify(json)).not.toMatch(/at .*\.ts:\d+/); // no stack traces
    }
    expect([...statuses.keys()].every((s) => s >= 400 && s < 500)).toBe(true);
    expect((await fetch(`${server.url}/api/health`)).status).toBe(200);
    expect((await fetch(`${server.url}/api/runs`)).status).toBe(200);
  }, 120_000);
});

describe("malformed socket messages", () => {
  it("answers 2,000 of them with error events and keeps serving", async () => {
    const rng = new Rng(99);
    const sockets: Socket[] = [];
    let errors = 0;
    let sent = 0;
    for (let s = 0; s < 20; s++) {
      const socket = io(server.url, { transports: ["websocket"], forceNew: true });
      socket.on("error", () => errors++);
      sockets.push(socket);
    }
    await Promise.all(sockets.map((s) => new Promise<void>((r) => s.once("connect", () => r()))));
    const payloads = (): [string, unknown] => {
      const bad = [
        () => ["subscribe", { runId: 42 }],
        () => ["subscribe", {}],
        () => ["subscribe", { runId: "nope" }],
        () => ["subscribe", { runId: "../../etc" }],
        () => ["subscribe", { runId: "x".repeat(3000) }],
        () => ["subscribe", nest(200)],
        () => ["subscribe", { runId: "a", extra: true }],
        () => ["subscribe", [1, 2, 3]],
        () => ["unsubscribe", { runId: null }],
        () => [`evil${rng.int(100)}`, { x: 1 }],
      ] as (() => [string, unknown])[];
      return bad[rng.int(bad.length)]!();
    };
    // 20 sockets x 100 messages, paced under each socket's rate limit so that every answer is the validation error
    for (let round = 0; round < 100; round++) {
      for (const socket of sockets) {
        const [event, payload] = payloads();
        socket.emit(event, payload);
        sent++;
      }
      await new Promise((r) => setTimeout(r, 55));
    }
    const deadline = Date.now() + 10_000;
    while (errors < sent && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(sent).toBe(2000);
    expect(errors).toBe(sent);
    for (const s of sockets) s.close();
    expect((await fetch(`${server.url}/api/health`)).status).toBe(200);
  }, 60_000);

  it("rate-limits a flooding client with an error that names the limit", async () => {
    const socket = io(server.url, { transports: ["websocket"], forceNew: true });
    await new Promise<void>((r) => socket.once("connect", () => r()));
    const messages: string[] = [];
    socket.on("error", (e: { error: string }) => messages.push(e.error));
    for (let i = 0; i < 200; i++) socket.emit("subscribe", { runId: "nope" });
    const deadline = Date.now() + 5000;
    while (messages.length < 41 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(messages.some((m) => /too many messages: the limit is 20 per second/.test(m))).toBe(true);
    socket.close();
  });
});

describe("limits", () => {
  it("answer 413, 429 and 400 naming the limit", async () => {
    const big = await fetch(`${server.url}/api/runs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ...VALID, label: "x".repeat(300_000) }),
    });
    expect(big.status).toBe(413);
    expect(((await big.json()) as { error: string }).error).toMatch(/too large: the limit is \d+ bytes/);
    const steps = await fetch(`${server.url}/api/runs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ...VALID, steps: 1e9 }),
    });
    expect(steps.status).toBe(400);
    expect(((await steps.json()) as { error: string }).error).toMatch(/steps must be <= 50000000/);
    const first = await fetch(`${server.url}/api/runs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ...VALID, steps: 10_000_000 }),
    });
    expect(first.status).toBe(201);
    const second = await fetch(`${server.url}/api/runs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(VALID),
    });
    expect(second.status).toBe(429);
    expect(((await second.json()) as { error: string }).error).toMatch(/at most 1 runs/);
    const id = ((await first.json()) as { id: string }).id;
    await fetch(`${server.url}/api/runs/${id}`, { method: "DELETE" });
  });
});

describe("a non-local bind", () => {
  it("requires the token on every request and socket", async () => {
    const s = await startServer({ port: 0, host: "127.0.0.2", dataDir: mkdtempSync(join(tmpdir(), "rl-token-")), demo: false });
    try {
      expect(s.token).toMatch(/^[A-Za-z0-9_-]{20,}$/);
      const no = await fetch(`${s.url}/api/runs`);
      expect(no.status).toBe(401);
      expect(((await no.json()) as { error: string }).error).toMatch(/token/);
      expect((await fetch(`${s.url}/api/runs`, { headers: { authorization: "Bearer wrong" } })).status).toBe(401);
      expect((await fetch(`${s.url}/api/runs`, { headers: { authorization: `Bearer ${s.token}` } })).status).toBe(200);
      const refused = io(s.url, { transports: ["websocket"], forceNew: true, reconnection: false });
      const err = await new Promise<Error>((r) => refused.once("connect_error", r));
      expect(err.message).toMatch(/token/);
      refused.close();
      const ok = io(s.url, { transports: ["websocket"], forceNew: true, auth: { token: s.token } });
      await new Promise<void>((r) => ok.once("connect", () => r()));
      ok.close();
    } finally {
      await s.close();
    }
  });
});
