/**
 * What every route with an id checks the same way: the id in the path (a run,
 * probe or sweep id, validated by ajv) and, on POST actions that take no body
 * (stop, pause, resume), that the body is empty.
 */
import { ValidationError } from "../envs/errors.ts";
import { validate } from "../envs/schema.ts";
import { idParamsSchema } from "./schemas.ts";

/** The `:id` of a route's path, validated (a 400 names the path when it is not an id). */
export function pathId(params: object): string {
  return validate<{ id: string }>(idParamsSchema, { ...params }, "path").id;
}

/** Refuses a non-empty body on an action that takes none (`what`: "POST /runs/:id/stop"). */
export function noBody(body: unknown, what: string): void {
  if (body !== undefined && body !== null && Object.keys(body as object).length > 0) {
    throw new ValidationError(`${what} takes no body`, [{ path: "/", message: "must be empty" }]);
  }
}
