/**
 * Frames as text: the grid with the agent drawn as 'A', for the command line,
 * logs and tests.
 */
import type { Frame } from "./core.ts";

export interface AsciiOptions {
  /** Character drawn at the agent's cell; default "A". */
  agent?: string;
  /** Append the hud as "key=value" pairs on a last line; default true. */
  hud?: boolean;
}

/** The frame's rows with the agent drawn in, joined by newlines. */
export function toAscii(frame: Frame, opts: AsciiOptions = {}): string {
  const agent = opts.agent ?? "A";
  const rows = frame.rows.map((row, y) =>
    frame.agent && frame.agent.y === y ? row.slice(0, frame.agent.x) + agent + row.slice(frame.agent.x + 1) : row,
  );
  if (opts.hud !== false) {
    const hud = Object.entries(frame.hud ?? {}).map(([k, v]) => `${k}=${v}`);
    rows.push([`t=${frame.t}`, ...hud].join(" "));
  }
  return rows.join("\n");
}

/** Alias: frame -> ASCII. */
export const frameToAscii = toAscii;
