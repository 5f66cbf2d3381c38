/**
 * Bounds on what one request can cost the server before any route runs:
 * numbers in a JSON body must be finite (JSON's 1e309 parses as Infinity),
 * and every error body is a few kB at most, whatever produced it.
 */
import { ValidationError } from "../envs/errors.ts";
import type { ApiError } from "./protocol.ts";

/** Characters of an error message at most. */
export const MAX_ERROR_CHARS = 1000;
/** Field problems an error body lists at most (the last may count the rest). */
export const MAX_ERROR_DETAILS = 11;
const MAX_DETAIL_CHARS = 300;

const clip = (s: string, n: number): string => (s.length > n ? `${s.slice(0, n)}...` : s);

/** Throws a ValidationError naming the first non-finite number in a parsed body (walked without recursion). */
export function assertFiniteNumbers(body: unknown): void {
  const stack: [unknown, string][] = [[body, ""]];
  while (stack.length) {
    const [v, path] = stack.pop()!;
    if (typeof v === "number") {
      if (!Number.isFinite(v)) {
        const at = clip(path || "/", 200);
        throw new ValidationError(`invalid request body: ${at} must be a finite number (JSON 1e309 reads as Infinity)`, [
          { path: at, message: "must be a finite number" },
        ]);
      }
    } else if (v !== null && typeof v === "object") {
      for (const [k, child] of Object.entries(v as object)) stack.push([child, `${path}/${k}`]);
    }
  }
}

/** An error body cut to a few kB: the message clipped, the first details kept and clipped. */
export function boundedError(body: ApiError): ApiError {
  const details = body.details?.slice(0, MAX_ERROR_DETAILS).map((d) => ({
    path: clip(String(d.path), MAX_DETAIL_CHARS),
    message: clip(String(d.message), MAX_DETAIL_CHARS),
  }));
  if (body.details && details && body.details.length > details.length) {
    details[details.length - 1] = { path: "/", message: `and ${body.details.length - details.length + 1} more problems` };
  }
  return { error: clip(body.error, MAX_ERROR_CHARS), ...(details ? { details } : {}) };
}
