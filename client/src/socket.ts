/**
 * One socket.io connection for the page. Views subscribe to runs through
 * `watchRun`, which reference-counts subscriptions and re-subscribes after
 * every reconnect (the server answers each subscribe with a fresh snapshot).
 * Handlers only store data; drawing happens on animation frames elsewhere.
 */
import { io, type Socket } from "socket.io-client";
import type { ClientToServerEvents, ServerToClientEvents } from "../../server/protocol.ts";

type S2C = ServerToClientEvents;
type Payload<E extends keyof S2C> = Parameters<S2C[E]>[0];

/** Events that concern one run (they carry runId). */
type RunEventName = "frame" | "episode" | "update" | "status" | "evaluation" | "intervention" | "trajectory" | "snapshot";
export type RunHandlers = { [E in RunEventName]?: (e: Payload<E>) => void };

export type ConnectionState = "connecting" | "connected" | "disconnected";

const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io({
  path: "/socket.io",
  reconnection: true,
  reconnectionDelay: 500,
  reconnectionDelayMax: 4000,
  timeout: 8000,
});

const watchers = new Map<string, Set<RunHandlers>>();
const runsListeners = new Set<(e: Payload<"runs">) => void>();
const probeListeners = new Set<(e: Payload<"probe">) => void>();
const sweepListeners = new Set<(e: Payload<"sweep">) => void>();
const connListeners = new Set<(s: ConnectionState, detail: string) => void>();
let state: ConnectionState = "connecting";
let detail = "";

function setState(s: ConnectionState, d = ""): void {
  state = s;
  detail = d;
  for (const l of connListeners) l(s, d);
}

socket.on("connect", () => {
  setState("connected", "");
  for (const runId of watchers.keys()) socket.emit("subscribe", { runId });
});
socket.on("disconnect", (reason) => setState("disconnected", reason));
socket.io.on("reconnect_attempt", (n) => setState("connecting", `attempt ${n}`));
socket.on("connect_error", (err) => setState("disconnected", err.message));
socket.on("shutdown", (e) => setState("disconnected", `server shutting down: ${e.reason}`));
socket.on("error", (e) => console.warn("socket error", e));

function runIdOf(e: unknown): string | undefined {
  if (!e || typeof e !== "object") return undefined;
  const o = e as { runId?: unknown; run?: { id?: unknown } };
  if (typeof o.runId === "string") return o.runId;
  if (o.run && typeof o.run.id === "string") return o.run.id;
  return undefined;
}

function route<E extends RunEventName>(name: E): void {
  // socket.io's typed `on` cannot express a generic event name; the payload type is fixed by the map above
  (socket.on as (ev: string, fn: (e: Payload<E>) => void) => void)(name, (e) => {
    const runId = runIdOf(e);
    if (!runId) return;
    const set = watchers.get(runId);
    if (!set) return;
    for (const handlers of set) {
      const fn = handlers[name] as ((e: Payload<E>) => void) | undefined;
      if (!fn) continue;
      try {
        fn(e);
      } catch (err) {
        console.error(`handler for ${name} failed`, err);
      }
    }
  });
}
for (const name of ["frame", "episode", "update", "status", "evaluation", "intervention", "trajectory", "snapshot"] as const) route(name);

socket.on("runs", (e) => {
  for (const l of runsListeners) l(e);
});
socket.on("probe", (e) => {
  for (const l of probeListeners) l(e);
});
socket.on("sweep", (e) => {
  for (const l of sweepListeners) l(e);
});

/** Subscribes to a run's events; returns the unsubscribe function. */
export function watchRun(runId: string, handlers: RunHandlers): () => void {
  let set = watchers.get(runId);
  if (!set) {
    set = new Set();
    watchers.set(runId, set);
    if (socket.connected) socket.emit("subscribe", { runId });
  }
  set.add(handlers);
  return () => {
    const s = watchers.get(runId);
    if (!s) return;
    s.delete(handlers);
    if (s.size === 0) {
      watchers.delete(runId);
      if (socket.connected) socket.emit("unsubscribe", { runId });
    }
  };
}

export function onRuns(fn: (e: Payload<"runs">) => void): () => void {
  runsListeners.add(fn);
  return () => runsListeners.delete(fn);
}

export function onProbe(fn: (e: Payload<"probe">) => void): () => void {
  probeListeners.add(fn);
  return () => probeListeners.delete(fn);
}

/** Sweep progress (at most twice a second per sweep) and its end, with the probe tables. */
export function onSweep(fn: (e: Payload<"sweep">) => void): () => void {
  sweepListeners.add(fn);
  return () => sweepListeners.delete(fn);
}

/** Calls `fn` now and on every connection change. */
export function onConnection(fn: (s: ConnectionState, detail: string) => void): () => void {
  connListeners.add(fn);
  fn(state, detail);
  return () => connListeners.delete(fn);
}

export function isConnected(): boolean {
  return socket.connected;
}
