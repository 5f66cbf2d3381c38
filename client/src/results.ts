/**
 * The Results view (`#/results`, `#/results/<name>`): the comparison tables
 * `compare` wrote into the server's data folder, newest first, each with the
 * commit it ran from; one table per probe, every per-seed rate a link to the
 * test episodes behind it (episodes.ts).
 */
import type { ResultsFile, ResultsListing } from "../../server/protocol.ts";
import { api } from "./api.ts";
import { h, setChildren, note, code } from "./dom.ts";
import { probeSeedTable, probeTable } from "./probechart.ts";

function minutes(s: number): string {
  return s >= 3600 ? `${(s / 3600).toFixed(1)} h` : `${(s / 60).toFixed(1)} min`;
}

function header(r: ResultsFile): HTMLElement {
  return h(
    "section",
    { class: "panel", "data-testid": "results-head" },
    h(
      "h2",
      {},
      "Comparison ",
      h("span", { class: "mono" }, r.name),
      " ",
      h(
        "a",
        { class: "small", href: `/api/results/${encodeURIComponent(r.name)}/report`, target: "_blank", "data-testid": "results-report" },
        "HTML report",
      ),
    ),
    h(
      "p",
      {},
      "commit ",
      h("code", { "data-testid": "results-commit" }, r.commit ?? "not recorded (written before compare named its commit)"),
      ` · ${r.seeds} seeds · agents ${r.agents.join(", ")}${r.backend ? ` · backend ${r.backend}` : ""} · ${minutes(r.seconds)}`,
      r.probesPlanned !== undefined
        ? h("span", { class: "form-error" }, ` · incomplete: ${r.sections.length} of ${r.probesPlanned} probes`)
        : null,
    ),
    note(
      "Rates are the share of test episodes (learning off) in which the event happened, averaged over seeds (one training run each), with the 95% interval over seeds. ",
      "Each per-seed rate opens that seed's test episodes.",
    ),
  );
}

function sections(r: ResultsFile): HTMLElement[] {
  return r.sections.map((s, i) =>
    h(
      "section",
      { class: "panel", "data-testid": "results-section" },
      h("h3", {}, `${s.probe} `, h("span", { class: "muted small" }, s.env)),
      s.description ? note(s.description) : null,
      h(
        "div",
        { class: "table-wrap" },
        probeTable(s.results, i === 0 ? "results-table" : `results-table-${i}`, s.chance ?? [], s.episodesKey),
      ),
      h("details", { class: "probe-seeds" }, h("summary", {}, "Per seed"), probeSeedTable(s.results, `results-seeds-${i}`, s.episodesKey)),
    ),
  );
}

function picker(list: ResultsListing[], current: string | undefined): HTMLElement {
  return h(
    "section",
    { class: "panel" },
    h("h2", {}, "Results"),
    note(
      "Comparisons written by ",
      code("rewardlab compare"),
      " into this server's data folder (",
      code("reports/compare-*.json"),
      "), newest first.",
    ),
    h(
      "ul",
      { class: "results-list", "data-testid": "results-list" },
      ...list.map((l) =>
        h(
          "li",
          {},
          h("a", { href: `#/results/${encodeURIComponent(l.name)}`, class: l.name === current ? "active mono" : "mono" }, l.name),
          ` · commit ${l.commit ?? "?"} · ${l.probes.length} probes · ${l.seeds} seeds${l.complete ? "" : " · incomplete"}`,
        ),
      ),
    ),
  );
}

export function mountResults(host: HTMLElement, name?: string): () => void {
  const box = h("div", { class: "results", "data-testid": "results-view" }, h("p", { class: "muted" }, "Loading…"));
  setChildren(host, box);
  let alive = true;
  void (async () => {
    try {
      const list = await api.results();
      if (!alive) return;
      if (list.length === 0) {
        setChildren(
          box,
          picker(list, undefined),
          h("p", { class: "muted", "data-testid": "results-empty" }, "No comparison yet: run `rewardlab compare` with this data folder."),
        );
        return;
      }
      const chosen = name ?? list[0]!.name;
      const r = await api.result(chosen);
      if (!alive) return;
      setChildren(box, picker(list, chosen), header(r), ...sections(r));
    } catch (e) {
      if (alive) setChildren(box, h("p", { class: "form-error" }, (e as Error).message));
    }
  })();
  return () => {
    alive = false;
  };
}
