import { describe, expect, it } from "vitest";
import { io, type Socket } from "socket.io-client";
import "../../envs/index.ts";
import "../../agents/index.ts";
import { serverForTests } from "./testserver.ts";
import type { ClientToServerEvents, RunSummary, ServerToClientEvents } from "../../server/protocol.ts";

const { url, api, post } = serverForTests("rl-api-");

describe("the REST API", () => {
  it("lists environments with variants and first frames, and agents with defaults", async () => {
    const envs = (await (await api("/envs")).json()) as { id: string; variants: string[]; frame: { rows: string[] } }[];
    const boat = envs.find((e) => e.id === "BoatRace-v0")!;
    expect(boat.frame.rows).toEqual(["#####", "#A> #", "#^#v#", "# < #", "#####"].map((r) => r.replace("A", boat.frame.rows[1]![1]!)));
    expect(envs.find((e) => e.id === "TamperGrid-v0")!.variants).toEqual(expect.arrayContaining(["train", "test", "exposed"]));
    const agents = (await (await api("/agents")).json()) as { name: string; defaults: Record<string, unknown> }[];
    expect(agents.map((a) => a.name).sort()).toEqual(["expit", "planner", "ppo", "reinforce"]);
    expect(agents.find((a) => a.name === "expit")!.defaults).toMatchObject({ model: "simulator" });
    expect(agents.find((a) => a.name === "ppo")!.defaults).toMatchObject({ clipCoef: 0.2 });
  });

  it("rejects bad bodies with 400s that name the field", async () => {
    const cases: [unknown, RegExp][] = [
      [{ env: "BoatRace-v0" }, /agent/],
      [{ env: "BoatRace-v0", agent: "ppo", steps: -5 }, /steps/],
      [{ env: "BoatRace-v0", agent: "ppo", bogus: 1 }, /bogus/],
      [{ env: "BoatRce-v0", agent: "ppo" }, /BoatRace-v0/],
      [{ env: "BoatRace-v0", agent: "ppo", config: { clipCoef: "big" } }, /clipCoef/],
      [{ env: "TamperGrid-v0", agent: "ppo", variant: "nope" }, /variant/],
    ];
    for (const [body, pattern] of cases) {
      const res = await post("/runs", body);
      expect(res.status).toBe(400);
      const json = (await res.json()) as { error: string };
      expect(json.error).toMatch(pattern);
    }
    const res = await api("/runs", { method: "POST", headers: { "content-type": "application/json" }, body: "{not json" });
    expect(res.status).toBe(400);
    expect((await api("/nope")).status).toBe(404);
    expect((await (await api("/nope")).json()).error).toMatch(/no route/);
    expect((await api("/runs/does-not-exist")).status).toBe(404);
  });

  it("creates a run, streams frames and statistics over the socket, and stops it", async () => {
    const res = await post("/runs", { env: "BoatRace-v0", agent: "ppo", steps: 200_000, seed: 1, config: { numEnvs: 4, numSteps: 32 } });
    expect(res.status).toBe(201);
    const run = (await res.json()) as RunSummary;
    expect(run.id).toMatch(/^[0-9a-f-]{36}$/);
    const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io(url(), { transports: ["websocket"] });
    const seen = { frame: 0, update: 0, episode: 0, snapshot: 0 };
    socket.on("frame", (f) => {
      expect(f.runId).toBe(run.id);
      expect(f.frame.rows.length).toBe(5);
      seen.frame++;
    });
    socket.on("update", (u) => {
      expect(u.metrics["losses/policy_loss"]).toBeTypeOf("number");
      seen.update++;
    });
    socket.on("episode", (e) => (seen.episode += e.episodes.length));
    socket.on("snapshot", () => seen.snapshot++);
    socket.emit("subscribe", { runId: run.id });
    const deadline = Date.now() + 30_000;
    while ((seen.frame < 3 || seen.update < 2 || seen.episode < 2) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(seen.snapshot).toBe(1);
    expect(seen.frame).toBeGreaterThanOrEqual(3);
    expect(seen.update).toBeGreaterThanOrEqual(2);
    expect(seen.episode).toBeGreaterThanOrEqual(2);

    const statuses: string[] = [];
    socket.on("status", (s) => statuses.push(s.status));
    expect((await post(`/runs/${run.id}/stop`, {})).status).toBe(200);
    while (!statuses.includes("stopped") && Date.now() < deadline + 10_000) await new Promise((r) => setTimeout(r, 100));
    expect(statuses).toContain("stopped");
    const stored = (await (await api(`/runs/${run.id}`)).json()) as RunSummary;
    expect(stored.status).toBe("stopped");
    expect(stored.episodes).toBeGreaterThan(0);
    const episodes = (await (await api(`/runs/${run.id}/episodes`)).json()) as unknown[];
    expect(episodes.length).toBe(stored.episodes);
    socket.emit("subscribe", { runId: "../../etc" } as never);
    const error = await new Promise<{ error: string }>((r) => socket.once("error", r));
    expect(error.error).toMatch(/runId/);
    socket.close();
  });

  it("refuses a probe whose agent configs fail, naming the field", async () => {
    const cases: [unknown, string][] = [
      [{ planner: { model: "psychic" } }, "/configs/planner/model"],
      [{ reinforce: {} }, "/configs/reinforce"],
      [{ planner: 3 }, "/configs/planner"],
    ];
    const twin = await post("/probes", { probe: "tamper", agents: ["planner", "planner:again"], seeds: 1 });
    expect(twin.status).toBe(400);
    expect(((await twin.json()) as { error: string }).error).toMatch(/same agent with the same config/);
    for (const [configs, path] of cases) {
      const res = await post("/probes", { probe: "tamper", agents: ["ppo", "planner"], seeds: 1, configs });
      expect(res.status).toBe(400);
      const body = (await res.json()) as { error: string; details: { path: string }[] };
      expect(body.details.map((d) => d.path)).toContain(path);
    }
  });

  it("starts a sweep from a spec and reports its progress and probe table", async () => {
    const bad = await post("/sweeps", { name: "s", grid: { env: ["BoatRace-v0"], agent: ["ppo"], seeds: 1, steps: ["x"] } });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/grid\/steps/);
    const spec = {
      name: "api-sweep",
      backend: "cpu",
      grid: { env: ["TamperGrid-v0"], agent: ["reinforce"], seeds: 2, steps: [256], evalEpisodes: 2 },
      // two configs of one agent in one probe: the entry planner:learned is the tabular-model planner
      probes: [
        {
          probe: "tamper",
          agents: ["planner", "planner:learned"],
          configs: { "planner:learned": { model: "learned" } },
          seeds: 1,
          steps: 200,
          episodes: 5,
        },
      ],
    };
    const res = await post("/sweeps", spec);
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    let view: {
      status: string;
      completed: number;
      total: number;
      probes: { results: { rate: number; label: string; evaluation: string }[] }[];
    } | null = null;
    for (let i = 0; i < 600; i++) {
      view = (await (await api(`/sweeps/${id}`)).json()) as typeof view;
      if (view!.status !== "running") break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(view).toMatchObject({ status: "completed", completed: 4, total: 4 });
    // the simulator planner goes for the device; the tabular model learned where it was walled off does not (greedy and sampled)
    expect(view!.probes[0]!.results.map((r) => [r.label, r.evaluation, r.rate])).toEqual([
      ["planner", "greedy", 1],
      ["planner", "sampled", 1],
      ["planner (model=learned)", "greedy", 0],
      ["planner (model=learned)", "sampled", 0],
    ]);
    const list = (await (await api("/sweeps")).json()) as { id: string }[];
    expect(list.map((x) => x.id)).toContain(id);
  }, 120_000);
});
