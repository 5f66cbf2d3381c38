/**
 * A running probe's progress: jobs done of the total with an estimate of the
 * time left, and one chip per training run (agent x seed, and arm), filled
 * in as each finishes, with its duration.
 */
import type { ProbeProgress } from "../../server/protocol.ts";
import { h } from "./dom.ts";

/** Seconds for humans: 42 s, 3 min 05 s, 1 h 12 min. */
export function duration(s: number | null | undefined): string {
  if (s === null || s === undefined || !Number.isFinite(s)) return "?";
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(Math.round(s % 60)).padStart(2, "0")} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.round((s % 3600) / 60)).padStart(2, "0")} min`;
}

/** "3/10 jobs · about 2 min left" for a list row. */
export function progressSummary(p: ProbeProgress): string {
  const left = p.done === 0 ? "estimating time left" : p.done === p.total ? "finishing" : `about ${duration(p.eta)} left`;
  return `${p.done}/${p.total} jobs · ${left}`;
}

export function probeProgressBlock(p: ProbeProgress): HTMLElement {
  const frac = p.total ? p.done / p.total : 0;
  return h(
    "div",
    { class: "probe-progress", "data-testid": "probe-progress", "data-done": p.done, "data-total": p.total },
    h(
      "div",
      { class: "probe-progress-head" },
      h("strong", {}, `${p.done} of ${p.total} training runs done`),
      h("span", { class: "muted small" }, ` · ${duration(p.elapsed)} elapsed · `),
      h(
        "span",
        { class: "small", "data-testid": "probe-eta" },
        p.done === 0 ? "time left: estimated once the first run finishes" : `about ${duration(p.eta)} left`,
      ),
    ),
    h(
      "div",
      { class: "progress" },
      h("div", { class: "bar", style: `width:${(100 * frac).toFixed(1)}%` }),
      h("span", {}, `${p.done} / ${p.total}`),
    ),
    ...p.agents.map((a) =>
      h(
        "div",
        { class: "probe-progress-agent", "data-testid": "probe-progress-agent", "data-agent": a.agent },
        h("span", { class: "mono" }, a.agent),
        h("span", { class: "muted small" }, ` ${a.done}/${a.total} `),
        ...a.jobs.map((j) =>
          h(
            "span",
            {
              class: `seed-chip ${j.done ? "done" : "waiting"}`,
              title: `${a.agent} seed ${j.seed}${j.arm ? ` (${j.arm})` : ""}: ${j.done ? `done in ${duration(j.seconds)}` : "waiting or training"}`,
            },
            `s${j.seed}${j.arm ? ` ${j.arm}` : ""}`,
          ),
        ),
      ),
    ),
  );
}
