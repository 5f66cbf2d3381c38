/**
 * Typed wrappers over the REST API. server/protocol.ts is the contract: every
 * shape here is imported from it as a type (never redeclared, never runtime
 * schema code), so a field the server changes fails this file's type-check.
 */
import type {
  AgentSummary,
  ApiError,
  EnvSummary,
  EpisodeStats,
  Intervention,
  InterventionRecord,
  LedgerTotals,
  ProbeDefinitionView,
  ProbeEpisodes,
  ResultsFile,
  ResultsListing,
  ProbeResult,
  ProbeStartRequest,
  RunRequest,
  RunSummary,
  SteerView,
  SteerViewRequest,
  SweepSpec,
  SweepView,
  TrajectoryListing,
  TrajectoryRecord,
  UpdatePoint,
} from "../../server/protocol.ts";

/** The request bodies and listings, under the names the client's views use. */
export type { Intervention, RunRequest, SweepSpec, TrajectoryListing };
export type ProbeRequest = ProbeStartRequest;
export type ProbeDefinition = ProbeDefinitionView;

/** A non-2xx answer, carrying the server's error body (with field details for forms). */
export class ApiRequestError extends Error {
  readonly status: number;
  readonly body: ApiError;
  constructor(status: number, body: ApiError) {
    super(body.error || `HTTP ${status}`);
    this.name = "ApiRequestError";
    this.status = status;
    this.body = body;
  }
  get details(): { path: string; message: string }[] {
    return this.body.details ?? [];
  }
}

async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const init: RequestInit = { method, headers: { accept: "application/json" } };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers = { ...init.headers, "content-type": "application/json" };
  }
  let res: Response;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiRequestError(0, { error: `server unreachable (${(e as Error).message})` });
  }
  const text = await res.text();
  let data: unknown;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = undefined;
    }
  }
  if (!res.ok) {
    const err =
      data && typeof data === "object" && "error" in data
        ? (data as ApiError)
        : { error: `${method} ${path}: HTTP ${res.status} ${text.slice(0, 200)}` };
    throw new ApiRequestError(res.status, err);
  }
  return data as T;
}

const enc = encodeURIComponent;

// agents and probe definitions do not change while the page is open: fetch once.
// Envs change only by a level upload, which drops the cached list.
let envsPromise: Promise<EnvSummary[]> | null = null;
let agentsPromise: Promise<AgentSummary[]> | null = null;
let definitionsPromise: Promise<ProbeDefinition[]> | null = null;

export const api = {
  envs(): Promise<EnvSummary[]> {
    envsPromise ??= request<EnvSummary[]>("GET", "/api/envs").catch((e) => {
      envsPromise = null;
      throw e;
    });
    return envsPromise;
  },
  /** Forget the cached environment list (after a level upload). */
  invalidateEnvs(): void {
    envsPromise = null;
  },
  async env(id: string): Promise<EnvSummary | undefined> {
    return (await api.envs()).find((e) => e.id === id);
  },
  agents(): Promise<AgentSummary[]> {
    agentsPromise ??= request<AgentSummary[]>("GET", "/api/agents").catch((e) => {
      agentsPromise = null;
      throw e;
    });
    return agentsPromise;
  },
  /** The newest runs, a page of `limit` (the server pages GET /api/runs); with `sweep`, that sweep's runs. */
  runs: (opts: { limit?: number; sweep?: string } = {}) =>
    request<RunSummary[]>("GET", `/api/runs?limit=${opts.limit ?? 200}${opts.sweep ? `&sweep=${enc(opts.sweep)}` : ""}`),
  run: (id: string) => request<RunSummary>("GET", `/api/runs/${enc(id)}`),
  createRun: (body: RunRequest) => request<RunSummary>("POST", "/api/runs", body),
  pause: (id: string) => request<RunSummary>("POST", `/api/runs/${enc(id)}/pause`),
  resume: (id: string) => request<RunSummary>("POST", `/api/runs/${enc(id)}/resume`),
  stop: (id: string) => request<RunSummary>("POST", `/api/runs/${enc(id)}/stop`),
  remove: (id: string) => request<unknown>("DELETE", `/api/runs/${enc(id)}`),
  intervene: (id: string, body: Intervention) => request<RunSummary>("POST", `/api/runs/${enc(id)}/intervene`, body),
  episodes: (id: string, from = 0, limit = 10000) =>
    request<EpisodeStats[]>("GET", `/api/runs/${enc(id)}/episodes?from=${from}&limit=${limit}`),
  updates: (id: string) => request<UpdatePoint[]>("GET", `/api/runs/${enc(id)}/updates`),
  interventions: (id: string) => request<InterventionRecord[]>("GET", `/api/runs/${enc(id)}/interventions`),
  trajectories: (id: string) => request<TrajectoryListing[]>("GET", `/api/runs/${enc(id)}/trajectories`),
  trajectory: (id: string, episode: number) => request<TrajectoryRecord>("GET", `/api/runs/${enc(id)}/trajectories/${episode}`),
  ledger: (id: string) => request<LedgerTotals>("GET", `/api/runs/${enc(id)}/ledger`),
  startProbe: (body: ProbeRequest) => request<ProbeResult>("POST", "/api/probes", body),
  probes: () => request<ProbeResult[]>("GET", "/api/probes"),
  probe: (id: string) => request<ProbeResult>("GET", `/api/probes/${enc(id)}`),
  stopProbe: (id: string) => request<ProbeResult>("POST", `/api/probes/${enc(id)}/stop`),
  steerLayers: (id: string) => request<Pick<SteerView, "layers">>("GET", `/api/runs/${enc(id)}/steer`),
  steer: (id: string, body: Partial<SteerViewRequest> & { layer: string }) =>
    request<SteerView>("POST", `/api/runs/${enc(id)}/steer`, body),
  removeProbe: (id: string) => request<unknown>("DELETE", `/api/probes/${enc(id)}`),
  probeDefinitions(): Promise<ProbeDefinition[]> {
    definitionsPromise ??= request<ProbeDefinition[]>("GET", "/api/probes/definitions").catch((e) => {
      definitionsPromise = null;
      throw e;
    });
    return definitionsPromise;
  },
  /** 201 for a new level, 200 when it replaces an earlier upload; the env list is refetched either way. */
  async uploadLevel(level: unknown): Promise<EnvSummary> {
    const env = await request<EnvSummary>("POST", "/api/levels", level);
    envsPromise = null;
    return env;
  },
  levelSchema: () => request<object>("GET", "/api/levels/schema"),
  startSweep: (spec: SweepSpec) => request<SweepView>("POST", "/api/sweeps", spec),
  sweeps: () => request<SweepView[]>("GET", "/api/sweeps"),
  stopSweep: (id: string) => request<SweepView>("POST", `/api/sweeps/${enc(id)}/stop`),
  resumeSweep: (id: string) => request<SweepView>("POST", `/api/sweeps/${enc(id)}/resume`),
  deleteSweep: (id: string) => request<void>("DELETE", `/api/sweeps/${enc(id)}`),
  sweep: (id: string) => request<SweepView>("GET", `/api/sweeps/${enc(id)}`),
  results: () => request<ResultsListing[]>("GET", "/api/results"),
  result: (name: string) => request<ResultsFile>("GET", `/api/results/${enc(name)}`),
  /** The test episodes behind a probe cell; `query` from episodes.ts (episodesQuery). */
  probeEpisodes: (query: URLSearchParams) => request<ProbeEpisodes>("GET", `/api/probe-episodes?${query.toString()}`),
};

/** Runs that still change (worth subscribing to and polling). */
export function isActive(status: RunSummary["status"]): boolean {
  return status === "queued" || status === "running" || status === "paused";
}
