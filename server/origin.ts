/**
 * Who may talk to the server. A server without a token trusts its own
 * machine only: it answers loopback Host names (so a DNS-rebound name cannot
 * reach it from a web page) and same-origin or no-Origin requests. A token,
 * when set, is compared in constant time. Every header is type-checked first:
 * these run before anything else and must never throw.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";

/** Host names a loopback server answers to (with its own port). */
export const LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "[::1]"] as const;

/** Constant time in the token's content and length: both sides are hashed first. */
export function tokenMatches(given: unknown, token: string): boolean {
  if (typeof given !== "string" || given.length === 0 || given.length > 1024) return false;
  const a = createHash("sha256").update(given).digest();
  const b = createHash("sha256").update(token).digest();
  return timingSafeEqual(a, b);
}

/** The token a REST request carries: `Authorization: Bearer <token>`, or the `x-rewardlab-token` header. */
export function requestToken(req: IncomingMessage): string | undefined {
  const auth = req.headers.authorization;
  if (typeof auth === "string" && auth.startsWith("Bearer ")) return auth.slice(7);
  const alt = req.headers["x-rewardlab-token"];
  return typeof alt === "string" ? alt : undefined;
}

/** Whether the Host header names this loopback server: 127.0.0.1, localhost or [::1], with the port it listens on. */
export function loopbackHostOk(host: unknown, port: number | undefined): boolean {
  if (typeof host !== "string" || host.length > 300) return false;
  const h = host.toLowerCase();
  for (const name of LOOPBACK_HOSTS) {
    if (h === `${name}:${port}`) return true;
    // browsers leave out the default port
    if (port === 80 && h === name) return true;
  }
  return false;
}

/** The host (name:port) of an Origin header, or null when it is "null", unparsable or not http(s). */
export function originHost(origin: string): string | null {
  if (origin.length > 2048) return null;
  try {
    const u = new URL(origin);
    if (u.protocol !== "http:" && u.protocol !== "https:") return null;
    return u.host;
  } catch {
    return null;
  }
}

/**
 * Same-origin or no Origin: a browser sends Origin on cross-site requests
 * and websocket upgrades; tools (curl, the CLI, socket.io's node client) send
 * none. "null", unparsable or foreign origins are refused with a reason.
 */
export function originProblem(req: IncomingMessage): string | null {
  const origin = req.headers.origin;
  if (origin === undefined) return null;
  if (typeof origin !== "string") return "malformed Origin header";
  const host = originHost(origin);
  if (host === null) return `Origin ${JSON.stringify(origin.slice(0, 100))} is not an http(s) origin`;
  if (typeof req.headers.host !== "string" || host.toLowerCase() !== req.headers.host.toLowerCase()) {
    return `cross-origin request from ${origin.slice(0, 100)} refused`;
  }
  return null;
}
