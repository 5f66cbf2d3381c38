/**
 * One ajv instance for the whole project: configs, levels, requests and
 * socket messages are validated (and defaults filled) at the boundary.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import { ValidationError } from "./errors.ts";

/** Fills defaults, rejects unknown keys (schemas say additionalProperties: false). */
export const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false, coerceTypes: false });

const cache = new WeakMap<object, ValidateFunction>();

export function compile<T>(schema: object): ValidateFunction<T> {
  let v = cache.get(schema);
  if (!v) {
    v = ajv.compile(schema) as ValidateFunction;
    cache.set(schema, v);
  }
  return v as ValidateFunction<T>;
}

/** Human messages, one per problem: "/lr must be number", "unknown key /foo". */
export function describeErrors(errors: ErrorObject[] | null | undefined): { path: string; message: string }[] {
  return (errors ?? []).map((e) => {
    const path = e.instancePath || "/";
    if (e.keyword === "additionalProperties") {
      const key = (e.params as { additionalProperty: string }).additionalProperty;
      return { path: `${e.instancePath}/${key}`, message: `unknown key "${key}" (not in the schema)` };
    }
    if (e.keyword === "enum") {
      const allowed = (e.params as { allowedValues: unknown[] }).allowedValues;
      return { path, message: `must be one of ${allowed.map((a) => JSON.stringify(a)).join(", ")}` };
    }
    return { path, message: e.message ?? e.keyword };
  });
}

/**
 * Validates `data` in place (defaults are filled into it) and returns it
 * typed; throws a ValidationError naming every bad field.
 */
export function validate<T>(schema: object, data: unknown, what: string): T {
  const v = compile<T>(schema);
  if (!v(data)) {
    const errors = describeErrors(v.errors);
    throw new ValidationError(`invalid ${what}: ${errors.map((e) => `${e.path} ${e.message}`).join("; ")}`, errors);
  }
  return data as T;
}

/** Deepest nesting accepted from outside (configs, requests, messages, levels). */
export const MAX_DEPTH = 32;

/**
 * A copy of untrusted input to validate and fill with defaults; refuses
 * nesting deeper than MAX_DEPTH first (checked without recursion), so that
 * hostile depth is a clear error, not a stack overflow.
 */
export function cloneInput<T>(value: T, what: string): T {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length) {
    const [v, d] = stack.pop()!;
    if (v === null || typeof v !== "object") continue;
    if (d >= MAX_DEPTH) {
      throw new ValidationError(`invalid ${what}: nested deeper than ${MAX_DEPTH} levels`, [
        { path: "/", message: `nested deeper than ${MAX_DEPTH} levels` },
      ]);
    }
    for (const child of Object.values(v as object)) stack.push([child, d + 1]);
  }
  return structuredClone(value);
}

/** Fills a fresh object with the schema's defaults. */
export function defaults<T>(schema: object): T {
  return validate<T>(schema, {}, "defaults");
}
