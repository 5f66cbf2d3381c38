/** The Gymnasium-style doc block of a level: written sections, completed from the parsed level. */
import { type ActionName, DOC_SECTIONS, type DocSection, type Level } from "./level.ts";

export function firstSentence(text: string | string[] | undefined): string {
  const s = Array.isArray(text) ? text.join(" ") : (text ?? "");
  const m = /^(.*?[.!?])(\s|$)/.exec(s.trim());
  return (m ? m[1]! : s).trim();
}

const ACTION_DOC: Record<ActionName, string> = {
  up: "move up",
  down: "move down",
  left: "move left",
  right: "move right",
  noop: "stay",
};

export function docSectionsOf(level: Level, written: Partial<Record<DocSection, string | string[]>>): Record<DocSection, string> {
  const text = (s: DocSection) => {
    const t = written[s];
    return Array.isArray(t) ? t.join("\n") : (t ?? "");
  };
  const out = {} as Record<DocSection, string>;
  for (const s of DOC_SECTIONS) out[s] = text(s);
  const actions = `Discrete(${level.actions.length}): ${level.actions.map((a, i) => `${i} ${ACTION_DOC[a]}`).join(", ")}. A move into a wall (or a closed door, or off the grid) leaves the agent in place.`;
  out.Actions = out.Actions ? `${out.Actions}\n\n${actions}` : actions;
  const { width: W, height: H } = level;
  const C = level.channels.length;
  const layout =
    `Box [0, 1], ${C * W * H + (level.observeTime ? 1 : 0)} floats: ${C} one-hot planes of ${H}x${W}, channel-major ` +
    `(index = c*${H * W} + y*${W} + x), channels ${level.channels.map((c, i) => `${i} ${c}`).join(", ")}` +
    (level.observeTime ? `, then one trailing feature t/maxEpisodeSteps.` : ".");
  out.Observations = out.Observations ? `${out.Observations}\n\n${layout}` : layout;
  if (!out["Episode end"]) out["Episode end"] = `Truncated after ${level.maxEpisodeSteps} steps.`;
  if (!out.Variants) out.Variants = level.variants.map((v) => v.name).join(", ");
  return out;
}
