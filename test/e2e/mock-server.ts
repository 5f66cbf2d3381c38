/**
 * A stand-in for the rewardlab server, for developing the client without
 * the training stack: the real environments (envs/), a tiny tabular
 * Q-learner in place of the agents, and the REST + socket.io contract of
 * server/protocol.ts. Not used by the final e2e test (that runs the real
 * server); run it with `REWARDLAB_E2E_MOCK=1 npx vitest run --config vitest.e2e.config.ts`
 * or by hand: `node --import tsx test/e2e/mock-server.ts --port 3000`.
 */
import express from "express";
import { createServer } from "node:http";
import { join } from "node:path";
import { Server } from "socket.io";
import "../../envs/index.ts";
import { make, registered, specOf } from "../../envs/registry.ts";
import type { Env } from "../../envs/core.ts";
import type {
  AgentSummary,
  ClientToServerEvents,
  EnvSummary,
  EpisodeStats,
  InterventionRecord,
  ProbeResult,
  RunSummary,
  ServerToClientEvents,
  TrajectoryRecord,
  UpdatePoint,
} from "../../server/protocol.ts";

const portArg = process.argv.indexOf("--port");
const port = portArg > 0 ? Number(process.argv[portArg + 1]) : 0;
const clientDir = join(import.meta.dirname, "../../client/dist");

const qSchema = {
  type: "object",
  additionalProperties: false,
  properties: {
    learningRate: { type: "number", minimum: 0, maximum: 1, default: 0.1, description: "step size of the tabular update" },
    gamma: { type: "number", minimum: 0, maximum: 1, default: 0.95, description: "discount" },
    epsilon: { type: ["number", "null"], minimum: 0, maximum: 1, default: null, description: "exploration (null: decays)" },
    doubleQ: { type: "boolean", default: false, description: "use double Q-learning" },
    schedule: { enum: ["constant", "linear"], default: "linear", description: "learning-rate schedule" },
  },
};
const agents: AgentSummary[] = ["ppo", "reinforce", "planner"].map((name) => ({
  name,
  description: `mock ${name} (a tabular Q-learner underneath)`,
  kind: name === "planner" ? "model-based" : "model-free",
  configSchema: qSchema,
  defaults: { learningRate: 0.1, gamma: 0.95, epsilon: null, doubleQ: false, schedule: "linear" },
}));

function envSummary(id: string): EnvSummary {
  const spec = specOf(id);
  const variantFrames: EnvSummary["variantFrames"] = {};
  let actions: string[] = [];
  for (const v of spec.variants) {
    const env = make(id, { variant: v });
    env.reset({ seed: 0 });
    variantFrames[v] = env.render();
    actions = [...env.actionSpace.labels];
  }
  return { ...spec, frame: variantFrames[spec.variants[0]!]!, variantFrames, actions };
}
const envs = registered().map((r) => envSummary(r.id));

interface MockRun {
  summary: RunSummary;
  env: Env;
  q: Map<number, number[]>;
  episodes: EpisodeStats[];
  updates: UpdatePoint[];
  interventions: InterventionRecord[];
  trajectories: TrajectoryRecord[];
  ledger: Record<string, number[]>;
  visits: Record<string, number>;
  reward: "keep" | "removed" | "negated";
  cur: { ret: number; perf: number; len: number; events: Record<string, number>; rec: TrajectoryRecord | null };
  lastRecord: number;
  frames: Parameters<ServerToClientEvents["frame"]>[0][];
}

const runs = new Map<string, MockRun>();
const probes: ProbeResult[] = [];
let nextId = 1;

const app = express();
app.use(express.json());
const http = createServer(app);
const io = new Server<ClientToServerEvents, ServerToClientEvents>(http, { serveClient: false });

const bad = (res: express.Response, error: string, details: { path: string; message: string }[] = []) => res.status(400).json({ error, details });

app.get("/api/envs", (_req, res) => res.json(envs));
app.get("/api/agents", (_req, res) => res.json(agents));
app.get("/api/runs", (_req, res) => res.json([...runs.values()].map((r) => r.summary)));
app.post("/api/runs", (req, res) => {
  const b = req.body as Record<string, unknown>;
  const details: { path: string; message: string }[] = [];
  const env = envs.find((e) => e.id === b.env);
  if (!env) details.push({ path: "/env", message: "unknown environment" });
  if (!agents.some((a) => a.name === b.agent)) details.push({ path: "/agent", message: "unknown agent" });
  if (!Number.isInteger(b.steps) || (b.steps as number) < 1) details.push({ path: "/steps", message: "must be >= 1" });
  const config = { ...agents[0]!.defaults, ...((b.config as Record<string, unknown>) ?? {}) };
  if (typeof config.learningRate !== "number" || config.learningRate > 1 || config.learningRate < 0) details.push({ path: "/config/learningRate", message: "must be <= 1" });
  if (details.length) return void bad(res, `invalid run request: ${details.map((d) => `${d.path} ${d.message}`).join("; ")}`, details);
  const variant = String(b.variant ?? env!.variants[0]);
  const id = `run${String(nextId++).padStart(3, "0")}`;
  const summary: RunSummary = {
    id,
    spec: { env: env!.id, variant, envConfig: {}, agent: String(b.agent), config, seed: Number(b.seed ?? 0), steps: Number(b.steps), evalEpisodes: 20, evalGreedy: false, checkpointEvery: 0, recordEveryMs: 1000, reward: "keep" },
    status: "running",
    reason: null,
    createdAt: Date.now(),
    updatedAt: Date.now(),
    envSteps: 0,
    episodes: 0,
    updates: 0,
    recent: null,
    evaluation: null,
    stepsPerSecond: null,
    variant,
    learning: true,
  };
  const e = make(env!.id, { variant });
  e.reset({ seed: summary.spec.seed });
  runs.set(id, { summary, env: e, q: new Map(), episodes: [], updates: [], interventions: [], trajectories: [], ledger: {}, visits: {}, reward: "keep", cur: { ret: 0, perf: 0, len: 0, events: {}, rec: null }, lastRecord: 0, frames: [] });
  res.status(201).json(summary);
  broadcastRuns();
});

function run(req: express.Request, res: express.Response): MockRun | undefined {
  const r = runs.get(String(req.params.id));
  if (!r) res.status(404).json({ error: `no run with id ${req.params.id}` });
  return r;
}
app.get("/api/runs/:id", (req, res) => {
  const r = run(req, res);
  if (r) res.json(r.summary);
});
for (const action of ["pause", "resume", "stop"] as const) {
  app.post(`/api/runs/:id/${action}`, (req, res) => {
    const r = run(req, res);
    if (!r) return;
    r.summary.status = action === "pause" ? "paused" : action === "resume" ? "running" : "stopped";
    io.to(r.summary.id).emit("status", { runId: r.summary.id, status: r.summary.status, envSteps: r.summary.envSteps });
    broadcastRuns();
    res.json(r.summary);
  });
}
app.delete("/api/runs/:id", (req, res) => {
  const r = run(req, res);
  if (!r) return;
  runs.delete(r.summary.id);
  broadcastRuns();
  res.status(204).end();
});
app.post("/api/runs/:id/intervene", (req, res) => {
  const r = run(req, res);
  if (!r) return;
  const b = req.body as { variant?: string; learning?: boolean; reward?: "keep" | "removed" | "negated" };
  if (b.variant !== undefined) {
    if (!envs.find((e) => e.id === r.summary.spec.env)!.variants.includes(b.variant)) return void bad(res, "unknown variant", [{ path: "/variant", message: "unknown variant" }]);
    r.summary.variant = b.variant;
    r.env = make(r.summary.spec.env, { variant: b.variant });
    r.env.reset({ seed: 1 });
    r.cur = { ret: 0, perf: 0, len: 0, events: {}, rec: null };
  }
  if (b.learning !== undefined) r.summary.learning = b.learning;
  if (b.reward !== undefined) r.reward = b.reward;
  const rec: InterventionRecord = { envSteps: r.summary.envSteps, variant: r.summary.variant, learning: r.summary.learning, reward: r.reward, time: Date.now() };
  r.interventions.push(rec);
  io.to(r.summary.id).emit("intervention", { runId: r.summary.id, ...rec });
  res.json(r.summary);
});
app.get("/api/runs/:id/episodes", (req, res) => {
  const r = run(req, res);
  if (!r) return;
  const from = Number(req.query.from ?? 0);
  const limit = Number(req.query.limit ?? 10000);
  res.json(r.episodes.filter((e) => e.index >= from).slice(0, limit));
});
app.get("/api/runs/:id/updates", (req, res) => {
  const r = run(req, res);
  if (r) res.json(r.updates);
});
app.get("/api/runs/:id/interventions", (req, res) => {
  const r = run(req, res);
  if (r) res.json(r.interventions);
});
app.get("/api/runs/:id/trajectories", (req, res) => {
  const r = run(req, res);
  if (r)
    res.json(
      r.trajectories.map((t) => ({ episode: t.episode, envSteps: t.envSteps, variant: t.variant, length: t.actions.length, return: t.rewards.reduce((a, b) => a + b, 0), performance: t.performance.reduce((a, b) => a + b, 0) })),
    );
});
app.get("/api/runs/:id/trajectories/:episode", (req, res) => {
  const r = run(req, res);
  if (!r) return;
  const t = r.trajectories.find((x) => x.episode === Number(req.params.episode));
  if (!t) return void res.status(404).json({ error: "no such trajectory" });
  res.json(t);
});
app.get("/api/runs/:id/ledger", (req, res) => {
  const r = run(req, res);
  if (!r) return;
  const env = envs.find((e) => e.id === r.summary.spec.env)!;
  res.json({ envId: env.id, width: env.frame.width, height: env.frame.height, actions: env.actions, entries: r.ledger, visits: r.visits });
});
app.get("/api/probes", (_req, res) => res.json(probes));
app.get("/api/probes/:id", (req, res) => {
  const p = probes.find((x) => x.id === req.params.id);
  if (!p) return void res.status(404).json({ error: "no probe" });
  res.json(p);
});
app.post("/api/probes", (req, res) => {
  const b = req.body as { probe?: string; agents?: string[]; seeds?: number; steps?: number };
  if (!b.probe) return void bad(res, "invalid probe request", [{ path: "/probe", message: "must have required property 'probe'" }]);
  if (!b.agents?.length) return void bad(res, "invalid probe request", [{ path: "/agents", message: "must NOT have fewer than 1 items" }]);
  const p: ProbeResult = { id: `probe${probes.length + 1}`, probe: b.probe, env: "TamperGrid-v0", status: "running", reason: null, createdAt: Date.now(), results: [] };
  probes.push(p);
  io.emit("probe", p);
  setTimeout(() => {
    p.status = "completed";
    p.results = b.agents!.map((agent, i) => {
      const rate = [0.08, 0.62, 0.3][i % 3]!;
      return {
        agent,
        seeds: b.seeds ?? 3,
        episodes: 150,
        event: "tamper",
        rate,
        ci: [Math.max(0, rate - 0.07), Math.min(1, rate + 0.08)],
        return: { mean: 4 + i, ci: [3 + i, 5 + i] },
        performance: { mean: 3 - i, ci: [2 - i, 4 - i] },
        predictions: { rewardPursuit: 1, reinforcedBehavior: i === 1 ? 0.55 : 0.05, counting: i === 2 ? null : 0.5 },
      };
    });
    io.emit("probe", p);
  }, 1500);
  res.status(202).json(p);
});
app.use("/api", (_req, res) => res.status(404).json({ error: "no route" }));
app.use(express.static(clientDir));

// ---------------------------------------------------------------- the fake learner

function step(r: MockRun): void {
  const s = r.env.stateKey();
  const nA = r.env.actionSpace.n;
  const q = r.q.get(s) ?? new Array<number>(nA).fill(0);
  r.q.set(s, q);
  const frac = r.summary.envSteps / r.summary.spec.steps;
  const eps = (r.summary.spec.config.epsilon as number | null) ?? Math.max(0.05, 1 - frac * 2);
  const a = Math.random() < eps ? Math.floor(Math.random() * nA) : q.indexOf(Math.max(...q));
  const out = r.env.step(a);
  const reward = r.reward === "removed" ? 0 : r.reward === "negated" ? -out.reward : out.reward;
  const s2 = r.env.stateKey();
  const q2 = r.q.get(s2) ?? new Array<number>(nA).fill(0);
  const lr = Number(r.summary.spec.config.learningRate);
  const target = reward + (out.terminated ? 0 : 0.95 * Math.max(...q2));
  const td = target - q[a]!;
  if (r.summary.learning) {
    q[a]! += lr * td;
    const l = (r.ledger[s] ??= new Array<number>(nA).fill(0));
    l[a]! += lr * td;
  }
  r.visits[s] = (r.visits[s] ?? 0) + 1;
  r.summary.envSteps++;
  const c = r.cur;
  c.ret += reward;
  c.perf += out.info.performance;
  c.len++;
  for (const e of out.info.events) c.events[e] = (c.events[e] ?? 0) + 1;
  if (c.rec) {
    c.rec.frames.push(r.env.render());
    c.rec.actions.push(a);
    c.rec.rewards.push(reward);
    c.rec.performance.push(out.info.performance);
    c.rec.events.push(out.info.events);
    r.frames.push({ runId: r.summary.id, episode: c.rec.episode, t: c.len, frame: r.env.render(), reward, performance: out.info.performance, events: out.info.events });
  }
  if (out.terminated || out.truncated) {
    const ep: EpisodeStats = { index: r.episodes.length, envSteps: r.summary.envSteps, return: c.ret, performance: c.perf, length: c.len, terminated: out.terminated, events: c.events, variant: r.summary.variant };
    r.episodes.push(ep);
    pendingEpisodes.push(ep);
    if (c.rec) {
      r.trajectories.push(c.rec);
      io.to(r.summary.id).emit("trajectory", { runId: r.summary.id, trajectory: c.rec });
    }
    r.env.reset();
    r.cur = { ret: 0, perf: 0, len: 0, events: {}, rec: null };
    if (Date.now() - r.lastRecord > 1000 && r.frames.length < 100) {
      r.lastRecord = Date.now();
      const frame = r.env.render();
      r.cur.rec = { episode: ep.index + 1, envSteps: r.summary.envSteps, variant: r.summary.variant, frames: [frame], actions: [], rewards: [], performance: [], events: [] };
      r.frames.push({ runId: r.summary.id, episode: ep.index + 1, t: 0, frame, reward: 0, performance: 0, events: [] });
    }
  }
}

let pendingEpisodes: EpisodeStats[] = [];

setInterval(() => {
  for (const r of runs.values()) {
    if (r.summary.status !== "running") continue;
    const start = r.summary.envSteps;
    pendingEpisodes = [];
    for (let i = 0; i < 200 && r.summary.envSteps < r.summary.spec.steps; i++) step(r);
    if (pendingEpisodes.length) io.to(r.summary.id).emit("episode", { runId: r.summary.id, episodes: pendingEpisodes });
    const recent = r.episodes.slice(-100);
    if (recent.length) {
      const mean = (f: (e: EpisodeStats) => number) => recent.reduce((a, e) => a + f(e), 0) / recent.length;
      const events: Record<string, number> = {};
      for (const e of recent) for (const [k, v] of Object.entries(e.events)) events[k] = (events[k] ?? 0) + v / recent.length;
      r.summary.recent = { return: mean((e) => e.return), performance: mean((e) => e.performance), length: mean((e) => e.length), events };
    }
    r.summary.episodes = r.episodes.length;
    r.summary.updates++;
    r.summary.stepsPerSecond = (r.summary.envSteps - start) * 10;
    const frac = r.summary.envSteps / r.summary.spec.steps;
    const metrics = {
      "losses/policy_loss": 0.5 * Math.exp(-3 * frac) + Math.random() * 0.05,
      "losses/value_loss": 2 * Math.exp(-2 * frac) + Math.random() * 0.2,
      "losses/entropy": 1.38 * (1 - 0.7 * frac),
      "losses/approx_kl": 0.01 + Math.random() * 0.01,
      "losses/clipfrac": 0.1 * Math.random(),
      "charts/learning_rate": Number(r.summary.spec.config.learningRate) * (1 - frac),
    };
    const u: UpdatePoint = { update: r.summary.updates, envSteps: r.summary.envSteps, metrics };
    r.updates.push(u);
    io.to(r.summary.id).emit("update", { runId: r.summary.id, update: u.update, envSteps: u.envSteps, stepsPerSecond: r.summary.stepsPerSecond, metrics });
    if (r.summary.envSteps >= r.summary.spec.steps) {
      r.summary.status = "completed";
      const rec = r.summary.recent!;
      r.summary.evaluation = { envSteps: r.summary.envSteps, episodes: 20, variant: r.summary.variant, greedy: false, return: { mean: rec.return, ci: [rec.return - 1, rec.return + 1] }, performance: { mean: rec.performance, ci: [rec.performance - 1, rec.performance + 1] }, length: rec.length, events: rec.events, eventRates: Object.fromEntries(Object.keys(rec.events).map((k) => [k, 0.5])) };
      io.to(r.summary.id).emit("evaluation", { runId: r.summary.id, evaluation: r.summary.evaluation });
      io.to(r.summary.id).emit("status", { runId: r.summary.id, status: "completed", envSteps: r.summary.envSteps });
      broadcastRuns();
    }
  }
}, 100);

// frames at 30/s per run, as the real server paces them
setInterval(() => {
  for (const r of runs.values()) {
    const f = r.frames.shift();
    // not volatile: socket.io drops volatile packets emitted while the transport is busy, so a
    // client watching several runs would only get the first run's frames each tick
    if (f) io.to(r.summary.id).emit("frame", f);
  }
}, 1000 / 30);

function broadcastRuns(): void {
  io.emit("runs", { runs: [...runs.values()].map((r) => r.summary) });
}

io.on("connection", (socket) => {
  socket.on("subscribe", ({ runId }) => {
    const r = runs.get(runId);
    if (!r) return void socket.emit("error", { error: `no run with id ${runId}` });
    void socket.join(runId);
    socket.emit("snapshot", { run: r.summary, episodes: r.episodes, updates: r.updates, interventions: r.interventions });
  });
  socket.on("unsubscribe", ({ runId }) => void socket.leave(runId));
});

http.listen(port, "127.0.0.1", () => {
  const addr = http.address();
  const p = typeof addr === "object" && addr ? addr.port : port;
  console.log(`mock rewardlab listening on http://127.0.0.1:${p}`);
});
