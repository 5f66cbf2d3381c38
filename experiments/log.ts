/** One pino root logger; each module takes a child: logger.child({ module: "server/app" }). */
import { isMainThread } from "node:worker_threads";
import pino from "pino";
import pinoPretty from "pino-pretty";

const level = process.env.REWARDLAB_LOG_LEVEL ?? (process.env.VITEST ? "silent" : "info");
// Readable lines on a terminal, JSON otherwise (a file, a pipe, a log collector). A worker thread's
// stderr is a pipe to the main thread, so workers follow the main thread's choice (the env is inherited).
if (isMainThread && process.env.REWARDLAB_LOG_PRETTY === undefined) process.env.REWARDLAB_LOG_PRETTY = process.stderr.isTTY ? "1" : "0";
const pretty = process.env.REWARDLAB_LOG_PRETTY === "1" && !process.env.VITEST;

export const logger = pino(
  { level, base: undefined },
  pretty ? pinoPretty({ destination: 2, sync: true, translateTime: "HH:MM:ss", ignore: "pid,hostname" }) : pino.destination(2),
);

export function moduleLogger(module: string): pino.Logger {
  return logger.child({ module });
}
