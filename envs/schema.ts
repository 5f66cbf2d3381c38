/**
 * One ajv instance for the whole project: configs, levels, requests and
 * socket messages are validated (and defaults filled) at the boundary.
 *
 * Our own schemas are written once with TypeBox (`Type.Object(...)`, the
 * TypeScript type derived with `Static`): they are plain JSON Schema objects
 * (TypeBox's marks are symbol keys, which ajv never reads), and they compile
 * under ajv's strict mode (test/envs/schema.test.ts). The shared instance stays
 * lenient because plugins and level files bring schemas of their own.
 */
import { type SchemaOptions, type TUnsafe, Type } from "@sinclair/typebox";
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import { ValidationError } from "./errors.ts";

/**
 * A closed set of strings as JSON Schema `enum` (not TypeBox's anyOf of
 * consts), so that a bad value reads "must be one of ..." and forms show a select.
 */
export function StringEnum<const T extends readonly string[]>(values: T, options: SchemaOptions = {}): TUnsafe<T[number]> {
  return Type.Unsafe<T[number]>({ enum: [...values], ...options });
}

/** A number or null, as one `type: ["number", "null"]` (one error message, one form field with a "none" choice). */
export function NullableNumber(options: SchemaOptions = {}): TUnsafe<number | null> {
  return Type.Unsafe<number | null>({ type: ["number", "null"], ...options });
}

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

/**
 * Problems reported per validation at most: a body of 85,000 bad array items
 * once answered 8.6 MB of errors. The rest are counted in one last entry.
 */
export const MAX_REPORTED_ERRORS = 10;
/** Characters of one problem's path or message at most (a key of 200 kB is named by its start). */
const MAX_PROBLEM_CHARS = 200;
const clip = (s: string): string => (s.length > MAX_PROBLEM_CHARS ? `${s.slice(0, MAX_PROBLEM_CHARS)}...` : s);

/** Human messages, one per problem ("/lr must be number", "unknown key /foo"), the first MAX_REPORTED_ERRORS and a count of the rest. */
export function describeErrors(errors: ErrorObject[] | null | undefined): { path: string; message: string }[] {
  const all = errors ?? [];
  const shown = all
    .slice(0, MAX_REPORTED_ERRORS)
    .map((e) => {
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
    })
    .map((p) => ({ path: clip(p.path), message: clip(p.message) }));
  if (all.length > shown.length) shown.push({ path: "/", message: `and ${all.length - shown.length} more problems` });
  return shown;
}

/**
 * Validates `data` in place (defaults are filled into it) and returns it
 * typed; throws a ValidationError naming the bad fields (the first few, and a count of the rest).
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
