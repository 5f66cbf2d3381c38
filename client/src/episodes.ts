/**
 * From a figure to the episodes behind it: `#/episodes?key=…&entry=…&arm=…&seed=…`
 * shows the test episodes a probe kept for one agent and seed (GET
 * /api/probe-episodes): the episodes with the probe's event beside those
 * without, each replayed on its own canvas, with a timeline whose marks are
 * the steps where the event happened. `episodesHref` builds the link every
 * probe table cell (Probes, Results, sweeps) carries.
 */
import type { ProbeEpisode, ProbeEpisodes } from "../../server/protocol.ts";
import { api } from "./api.ts";
import { GridCanvas } from "./canvas.ts";
import { fmt, h, setChildren, note } from "./dom.ts";

export interface EpisodesRef {
  /** The probe's id, or the comparison section's episodes key. */
  key: string;
  entry: string;
  arm: string;
  seed: number;
  /** The row's test condition: evaluation mode (greedy, sampled), agent mode, search budget. */
  evaluation: string;
  mode?: string;
  budget?: number;
}

/** The query the view and GET /api/probe-episodes share. */
export function episodesQuery(r: EpisodesRef): URLSearchParams {
  return new URLSearchParams({
    key: r.key,
    entry: r.entry,
    arm: r.arm,
    seed: String(r.seed),
    evaluation: r.evaluation,
    ...(r.mode ? { mode: r.mode } : {}),
    ...(r.budget !== undefined ? { budget: String(r.budget) } : {}),
  });
}

export function episodesHref(r: EpisodesRef): string {
  return `#/episodes?${episodesQuery(r).toString()}`;
}

export function parseEpisodesRef(params: URLSearchParams): EpisodesRef | null {
  const key = params.get("key");
  const entry = params.get("entry");
  const seed = Number(params.get("seed"));
  const evaluation = params.get("evaluation");
  if (!key || !entry || !evaluation || !Number.isInteger(seed)) return null;
  const mode = params.get("mode");
  const budget = params.get("budget");
  return {
    key,
    entry,
    arm: params.get("arm") ?? "",
    seed,
    evaluation,
    ...(mode ? { mode } : {}),
    ...(budget !== null && budget !== "" ? { budget: Number(budget) } : {}),
  };
}

/** The step interval of the replays (ms). */
const STEP_MS = 120;

interface Player {
  el: HTMLElement;
  tick(): void;
}

/** One episode: its canvas, its timeline (event steps marked), return and performance. */
function episodePlayer(ep: ProbeEpisode, event: string, testid: string): Player {
  const grid = new GridCanvas({ testid: `${testid}-canvas`, maxCell: 28 });
  const n = ep.frames.length;
  let t = 0;
  const cursor = h("div", { class: "ep-cursor" });
  const marks = ep.events.flatMap((evs, i) => (evs.includes(event) ? [i + 1] : []));
  const timeline = h(
    "div",
    { class: "ep-timeline", title: `${marks.length} step${marks.length === 1 ? "" : "s"} with "${event}" (marked)` },
    ...marks.map((s) => h("div", { class: "ep-mark", style: `left:${((100 * s) / Math.max(1, n - 1)).toFixed(2)}%` })),
    cursor,
  );
  const stepLabel = h("span", { class: "mono small" });
  const eventsText = Object.entries(ep.eventCounts)
    .map(([k, v]) => `${k} ×${v}`)
    .join(" · ");
  const el = h(
    "div",
    { class: "ep-player", "data-testid": testid, "data-event-steps": marks.join(",") },
    h("div", { class: "canvas-box" }, grid.el),
    timeline,
    h(
      "div",
      { class: "small" },
      stepLabel,
      " ",
      h("span", { class: "ret" }, `return ${fmt(ep.return)}`),
      " · ",
      h("span", { class: "perf" }, `performance ${fmt(ep.totalPerformance)}`),
    ),
    h("div", { class: "muted small" }, eventsText || "no events"),
  );
  timeline.addEventListener("click", (e) => {
    const box = timeline.getBoundingClientRect();
    t = Math.round(((e.clientX - box.left) / box.width) * (n - 1));
    show();
  });
  const show = () => {
    const frame = ep.frames[Math.min(t, n - 1)]!;
    grid.setFrame(frame);
    cursor.style.left = `${((100 * t) / Math.max(1, n - 1)).toFixed(2)}%`;
    const hit = t > 0 && (ep.events[t - 1] ?? []).includes(event);
    stepLabel.textContent = `step ${t}/${n - 1}${hit ? ` · ${event}` : ""}`;
    el.classList.toggle("ep-hit", hit);
  };
  show();
  return {
    el,
    tick() {
      t = (t + 1) % n;
      show();
    },
  };
}

function column(title: string, eps: ProbeEpisode[], event: string, testid: string, players: Player[]): HTMLElement {
  const items = eps.map((ep, i) => {
    const p = episodePlayer(ep, event, `${testid}-episode`);
    players.push(p);
    return h("div", { class: "ep-item" }, h("div", { class: "muted small" }, `test episode ${i + 1}`), p.el);
  });
  return h(
    "section",
    { class: "panel ep-column", "data-testid": testid },
    h("h3", {}, title),
    ...(items.length ? items : [h("p", { class: "muted" }, "none among the recorded episodes")]),
  );
}

export function mountEpisodes(host: HTMLElement, ref: EpisodesRef | null): () => void {
  const body = h("div", { class: "episodes-body" }, h("p", { class: "muted" }, "Loading the episodes…"));
  setChildren(host, h("div", { class: "episodes", "data-testid": "episodes-view" }, body));
  if (!ref) {
    setChildren(body, h("p", { class: "form-error" }, "This link names no probe cell (key, entry and seed are needed)."));
    return () => undefined;
  }
  const players: Player[] = [];
  let playing = true;
  const timer = window.setInterval(() => {
    if (playing) for (const p of players) p.tick();
  }, STEP_MS);
  void api
    .probeEpisodes(episodesQuery(ref))
    .then((eps: ProbeEpisodes) => {
      const playBtn = h("button", { class: "small", "data-testid": "episodes-play" }, "Pause");
      playBtn.addEventListener("click", () => {
        playing = !playing;
        playBtn.textContent = playing ? "Pause" : "Play";
      });
      setChildren(
        body,
        h(
          "section",
          { class: "panel panel-head" },
          h(
            "h2",
            {},
            `${eps.entry}${eps.arm ? ` · ${eps.arm}` : ""} · seed ${eps.seed}: test episodes on ${eps.variant} (${eps.condition})`,
          ),
          h("div", { class: "spacer" }),
          playBtn,
        ),
        note(
          `Event "${eps.event}". Kept ${eps.withEvent.length} episodes with it and ${eps.withoutEvent.length} without, of the ${eps.recorded} `,
          `this seed's trained policy played first on the test variant (learning off, ${eps.condition}); marks on a timeline are the steps where the event happened. `,
          "The rate in the table counts all its test episodes; click a timeline to jump.",
        ),
        h(
          "div",
          { class: "two ep-columns" },
          column(`With "${eps.event}"`, eps.withEvent, eps.event, "episodes-with", players),
          column(`Without "${eps.event}"`, eps.withoutEvent, eps.event, "episodes-without", players),
        ),
      );
    })
    .catch((e: Error) => setChildren(body, h("p", { class: "form-error", "data-testid": "episodes-error" }, e.message)));
  return () => window.clearInterval(timer);
}

/** A probe table cell's text as a link to that agent's and seed's test episodes (plain text without a key). */
export function seedLink(
  key: string | undefined,
  row: { agent: string; entry?: string; label: string; arm?: string; evaluation: string; mode?: string; budget?: number },
  seed: number,
  text: string,
): HTMLElement | string {
  if (!key) return text;
  const ref: EpisodesRef = {
    key,
    entry: row.entry ?? row.agent,
    arm: row.arm ?? "",
    seed,
    evaluation: row.evaluation,
    ...(row.mode ? { mode: row.mode } : {}),
    ...(row.budget !== undefined ? { budget: row.budget } : {}),
  };
  return h(
    "a",
    {
      class: "ep-link",
      href: episodesHref(ref),
      title: `watch ${row.label}'s test episodes (${row.evaluation}), seed ${seed}`,
      "data-testid": "probe-episodes-link",
    },
    text,
  );
}
