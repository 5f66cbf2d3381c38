/**
 * Bounds on what one request can cost the server before any route runs:
 * a JSON body's numbers finite (JSON's 1e309 parses as Infinity) and its
 * size in values bounded, and every error body a few kB at most, whatever
 * produced it.
 */
import { ValidationError } from "../envs/errors.ts";
import type { ApiError } from "./protocol.ts";

/** Characters of an error message at most. */
export const MAX_ERROR_CHARS = 1000;
/** Field problems an error body lists at most (the last may count the rest). */
export const MAX_ERROR_DETAILS = 11;
const MAX_DETAIL_CHARS = 300;

const clip = (s: string, n: number): string => (s.length > n ? `${s.slice(0, n)}...` : s);

/** Items one array (or keys one object) of a request body may hold: no request needs more (sweep lists stop at 1,000). */
export const MAX_BODY_ITEMS = 4096;
/** Values (numbers, strings, arrays, objects...) one request body may hold in all. */
export const MAX_BODY_VALUES = 20_000;

interface Node {
  value: unknown;
  parent: Node | null;
  key: string;
}

const pathOf = (n: Node): string => {
  const keys: string[] = [];
  for (let x: Node | null = n; x?.parent; x = x.parent) keys.push(x.key);
  return clip(`/${keys.reverse().join("/")}`, 200);
};

const refuse = (n: Node, problem: string, hint = ""): never => {
  const at = pathOf(n);
  throw new ValidationError(`invalid request body: ${at} ${problem}${hint}`, [{ path: at, message: problem }]);
};

/**
 * Checks a parsed body before any schema sees it, in one pass without
 * recursion: numbers finite (JSON 1e309 reads as Infinity), at most
 * MAX_BODY_ITEMS per array or object and MAX_BODY_VALUES in all. A schema
 * validator reporting every bad item of an 85,000-item array spent about
 * 200 ms of the event loop per request; this refuses such a body in a few.
 */
export function checkBodyShape(body: unknown): void {
  const stack: Node[] = [{ value: body, parent: null, key: "" }];
  let values = 0;
  while (stack.length) {
    const n = stack.pop()!;
    const v = n.value;
    if (++values > MAX_BODY_VALUES) refuse({ value: body, parent: null, key: "" }, `holds more than ${MAX_BODY_VALUES} values`);
    if (typeof v === "number") {
      if (!Number.isFinite(v)) refuse(n, "must be a finite number", " (JSON 1e309 reads as Infinity)");
    } else if (Array.isArray(v)) {
      if (v.length > MAX_BODY_ITEMS) refuse(n, `has ${v.length} items; at most ${MAX_BODY_ITEMS}`);
      for (let i = 0; i < v.length; i++) {
        const c = v[i];
        if (c !== null && typeof c === "object") stack.push({ value: c, parent: n, key: String(i) });
        else if (typeof c === "number" && !Number.isFinite(c)) refuse({ value: c, parent: n, key: String(i) }, "must be a finite number");
        else values++;
      }
    } else if (v !== null && typeof v === "object") {
      const keys = Object.keys(v);
      if (keys.length > MAX_BODY_ITEMS) refuse(n, `has ${keys.length} keys; at most ${MAX_BODY_ITEMS}`);
      for (const k of keys) stack.push({ value: (v as Record<string, unknown>)[k], parent: n, key: k });
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
