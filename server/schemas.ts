/**
 * Request and socket-message schemas: everything from outside is validated
 * here (ajv). Bodies that the experiments layer owns (a run request, an
 * intervention, a probe) are defined there once, with their limits, and
 * re-exported; the rest are the server's own path, query and message shapes.
 */
import { type Static, Type } from "@sinclair/typebox";
import { StringEnum } from "../envs/schema.ts";
import { interventionSchema, runRequestSchema } from "../experiments/runspec.ts";
import { probeStartSchema } from "../experiments/probes/request.ts";

export { runRequestSchema };
/** POST /api/runs/:id/intervene. */
export const interveneSchema = interventionSchema;
/** POST /api/probes (seeds and episodes defaulted for a quick probe). */
export const probeRequestSchema = probeStartSchema;

const idSchema = Type.String({ pattern: "^[A-Za-z0-9-]{1,64}$" });

export const idParamsSchema = Type.Object({ id: idSchema });

/** DELETE /api/levels/:id: an env id as a level file names it. */
export const levelParamsSchema = Type.Object({ id: Type.String({ maxLength: 64, pattern: "^[A-Za-z][A-Za-z0-9_.:-]*-v\\d+$" }) });

export const episodesQuerySchema = Type.Object(
  {
    from: Type.Optional(Type.String({ pattern: "^[0-9]{1,9}$" })),
    limit: Type.Optional(Type.String({ pattern: "^[0-9]{1,6}$" })),
  },
  { additionalProperties: false },
);

/** GET /api/runs: a page size, the cursor of the page (the previous page's x-next-cursor header), a sweep's runs only. */
export const runsQuerySchema = Type.Object(
  {
    limit: Type.Optional(Type.String({ pattern: "^[0-9]{1,4}$" })),
    cursor: Type.Optional(Type.String({ maxLength: 100 })),
    sweep: Type.Optional(Type.String({ pattern: "^[A-Za-z0-9-]{1,64}$" })),
  },
  { additionalProperties: false },
);

/** POST /api/sweeps: `dryRun` checks and counts without starting. */
export const sweepQuerySchema = Type.Object(
  { dryRun: Type.Optional(StringEnum(["0", "1", "true", "false"])) },
  { additionalProperties: false },
);

export const emptyQuerySchema = Type.Object({}, { additionalProperties: false });

/**
 * `gc=1` collects garbage first when the server runs with --expose-gc (benchmarks read memory after a collection);
 * `resetDelay=1` starts the event-loop delay figures afresh after reporting them.
 */
export const healthQuerySchema = Type.Object(
  { gc: Type.Optional(StringEnum(["1"])), resetDelay: Type.Optional(StringEnum(["1"])) },
  { additionalProperties: false },
);

export const trajectoryParamsSchema = Type.Object({ id: idSchema, episode: Type.String({ pattern: "^[0-9]{1,9}$" }) });

/** socket.io `subscribe` and `unsubscribe`. */
export const subscribeSchema = Type.Object({ runId: idSchema }, { additionalProperties: false });
export type SubscribeMessage = Static<typeof subscribeSchema>;
