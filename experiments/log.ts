/** One pino root logger; each module takes a child: logger.child({ module: "server/app" }). */
import pino from "pino";

const level = process.env.REWARDLAB_LOG_LEVEL ?? (process.env.VITEST ? "silent" : "info");
const pretty = process.stderr.isTTY && !process.env.VITEST;

export const logger = pino(
  { level, base: undefined },
  pretty ? pino.transport({ target: "pino-pretty", options: { destination: 2, translateTime: "HH:MM:ss" } }) : pino.destination(2),
);

export function moduleLogger(module: string): pino.Logger {
  return logger.child({ module });
}
