/**
 * The runs list: status, progress, recent return and hidden performance,
 * events; open / pause / resume / stop / delete; select runs to compare.
 * Updated by the socket's `runs` event and by light polling (progress).
 */
import type { RunSummary } from "../../server/protocol.ts";
import { api, isActive } from "./api.ts";
import { ago, compact, confirmButton, flash, fmt, h, runColor, setChildren, shortId } from "./dom.ts";
import { onRuns } from "./socket.ts";

const POLL_MS = 2500;

interface Row {
  tr: HTMLTableRowElement;
  check: HTMLInputElement;
  cells: HTMLTableCellElement[];
  pause: HTMLButtonElement;
  stop: HTMLButtonElement;
}

export function statusBadge(status: string, testid?: string): HTMLElement {
  return h("span", { class: `badge status-${status}`, ...(testid ? { "data-testid": testid } : {}) }, status);
}

export function progressBar(done: number, total: number): HTMLElement {
  const frac = total > 0 ? Math.min(1, done / total) : 0;
  return h(
    "div",
    { class: "progress", title: `${done} / ${total} env steps` },
    h("div", { class: "bar", style: `width:${(frac * 100).toFixed(1)}%` }),
    h("span", {}, `${compact(done)} / ${compact(total)}`),
  );
}

/** The label of every eventsSummary: the share of episodes in which each event happened at least once. */
export const EVENTS_LABEL = "episodes with event";
export const EVENTS_TITLE = "the share of episodes (of the last 100) in which the event happened at least once";

/** Event shares (fractions of episodes with the event, 0 to 1) as "lap 84% · goal 3%". */
export function eventsSummary(shares: Record<string, number> | undefined, max = 3): string {
  if (!shares) return "–";
  const entries = Object.entries(shares)
    .filter(([, v]) => v > 0)
    .sort((a, b) => b[1] - a[1]);
  if (entries.length === 0) return "none";
  return entries
    .slice(0, max)
    .map(([k, v]) => `${k} ${pct(v)}`)
    .join(" · ");
}

function pct(v: number): string {
  const p = v * 100;
  return p > 0 && p < 1 ? "<1%" : `${p >= 99.5 && p < 100 ? ">99" : p.toFixed(0)}%`;
}

export async function runAction(run: RunSummary, action: "pause" | "resume" | "stop" | "delete"): Promise<void> {
  try {
    if (action === "pause") await api.pause(run.id);
    else if (action === "resume") await api.resume(run.id);
    else if (action === "stop") await api.stop(run.id);
    else await api.remove(run.id);
  } catch (e) {
    flash(`${action} ${shortId(run.id)}: ${(e as Error).message}`, "error");
  }
}

export function mountRunsList(host: HTMLElement): () => void {
  const selected = new Set<string>();
  const rows = new Map<string, Row>();
  let runs: RunSummary[] = [];

  const compareLink = h("a", { class: "button", "data-testid": "compare-link", href: "#/compare" }, "Compare selected");
  const count = h("span", { class: "muted small", "data-testid": "runs-count" });
  const tbody = h("tbody", {});
  const empty = h("p", { class: "muted empty", "data-testid": "runs-empty" }, "No runs yet: launch one with the form.");
  const table = h(
    "table",
    { class: "runs", "data-testid": "runs-table" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ...["", "run", "environment", "agent", "seed", "status", "progress", "return", "performance", EVENTS_LABEL, "steps/s", ""].map(
          (t) => h("th", t === EVENTS_LABEL ? { title: EVENTS_TITLE } : {}, t),
        ),
      ),
    ),
    tbody,
  );
  setChildren(
    host,
    h("div", { class: "panel-head" }, h("h2", {}, "Runs"), count, h("div", { class: "spacer" }), compareLink),
    h("div", { class: "table-wrap" }, table),
    empty,
  );

  function updateCompare(): void {
    const ids = runs.filter((r) => selected.has(r.id)).map((r) => r.id);
    compareLink.href = ids.length > 0 ? `#/compare?ids=${ids.map(encodeURIComponent).join(",")}` : "#/compare";
    compareLink.classList.toggle("disabled", ids.length < 2);
    compareLink.textContent = ids.length >= 2 ? `Compare ${ids.length} runs` : "Compare selected";
  }

  function makeRow(run: RunSummary): Row {
    const check = h("input", { type: "checkbox", "data-testid": "run-select", title: "select to compare" });
    check.addEventListener("change", () => {
      if (check.checked) selected.add(run.id);
      else selected.delete(run.id);
      updateCompare();
    });
    const current = () => runs.find((r) => r.id === run.id) ?? run;
    const pause = h("button", { class: "small", "data-testid": "run-pause" }, "pause");
    pause.addEventListener("click", () => {
      const r = current();
      void runAction(r, r.status === "paused" || r.resumable ? "resume" : "pause").then(refresh);
    });
    const stop = h("button", { class: "small", "data-testid": "run-stop" }, "stop");
    stop.addEventListener("click", () => void runAction(current(), "stop").then(refresh));
    const del = confirmButton("delete", "sure?", { class: "small danger", "data-testid": "run-delete" }, () => {
      selected.delete(run.id);
      void runAction(current(), "delete").then(refresh);
    });
    const open = h("a", { class: "button small", "data-testid": "run-open", href: `#/run/${encodeURIComponent(run.id)}` }, "open");
    const cells = Array.from({ length: 10 }, () => h("td", {}));
    const tr = h(
      "tr",
      { "data-testid": "run-row", "data-run-id": run.id },
      h("td", {}, check),
      ...cells,
      h("td", { class: "row-actions" }, open, pause, stop, del),
    );
    tr.addEventListener("dblclick", () => (location.hash = `#/run/${encodeURIComponent(run.id)}`));
    return { tr, check, cells, pause, stop };
  }

  function fillRow(row: Row, run: RunSummary): void {
    const [idCell, envCell, agentCell, seedCell, statusCell, progCell, retCell, perfCell, evCell, spsCell] = row.cells;
    setChildren(
      idCell!,
      h("i", { class: "run-dot", style: `background:${runColor(run.id)}`, title: "this run's colour in comparisons" }),
      h("a", { href: `#/run/${encodeURIComponent(run.id)}`, class: "mono", title: run.id }, shortId(run.id)),
      run.spec.label ? h("div", { class: "muted small" }, run.spec.label) : null,
      h("div", { class: "muted small" }, ago(run.createdAt)),
    );
    setChildren(
      envCell!,
      run.spec.env,
      h(
        "div",
        { class: "muted small" },
        run.variant !== run.spec.variant ? `${run.spec.variant} → ${run.variant}` : run.variant,
        run.learning ? "" : " · frozen",
      ),
    );
    setChildren(agentCell!, run.spec.agent);
    setChildren(seedCell!, String(run.spec.seed));
    setChildren(
      statusCell!,
      statusBadge(run.status),
      run.reason
        ? h("div", { class: "muted small", title: run.reason }, run.reason.length > 60 ? `${run.reason.slice(0, 58)}…` : run.reason)
        : null,
    );
    statusCell!.dataset.testid = "run-status";
    setChildren(progCell!, progressBar(run.envSteps, run.spec.steps));
    setChildren(retCell!, h("span", { class: "num ret" }, fmt(run.recent?.return)));
    setChildren(perfCell!, h("span", { class: "num perf" }, fmt(run.recent?.performance)));
    setChildren(evCell!, h("span", { class: "small" }, eventsSummary(run.recent?.events)));
    setChildren(spsCell!, h("span", { class: "num" }, run.stepsPerSecond ? compact(run.stepsPerSecond) : "–"));
    const active = isActive(run.status);
    row.pause.textContent = run.status === "paused" || run.resumable ? "resume" : "pause";
    row.pause.title = run.resumable ? "resume from the last checkpoint" : "";
    row.pause.disabled = !active && !run.resumable;
    row.stop.disabled = !active;
    row.check.checked = selected.has(run.id);
  }

  function render(list: RunSummary[]): void {
    runs = [...list].sort((a, b) => b.createdAt - a.createdAt);
    const ids = new Set(runs.map((r) => r.id));
    for (const [id, row] of rows) {
      if (!ids.has(id)) {
        row.tr.remove();
        rows.delete(id);
        selected.delete(id);
      }
    }
    let prev: HTMLTableRowElement | null = null;
    for (const run of runs) {
      let row = rows.get(run.id);
      if (!row) {
        row = makeRow(run);
        rows.set(run.id, row);
      }
      fillRow(row, run);
      // keep DOM order equal to list order without re-creating rows
      const want: ChildNode | null = prev ? prev.nextSibling : tbody.firstChild;
      if (want !== row.tr) tbody.insertBefore(row.tr, want);
      prev = row.tr;
    }
    empty.hidden = runs.length > 0;
    table.hidden = runs.length === 0;
    const active = runs.filter((r) => isActive(r.status)).length;
    count.textContent = `${runs.length} run${runs.length === 1 ? "" : "s"}${active ? `, ${active} active` : ""}`;
    updateCompare();
  }

  let alive = true;
  async function refresh(): Promise<void> {
    try {
      const list = await api.runs();
      if (alive) render(list);
    } catch (e) {
      if (alive) count.textContent = `could not load runs: ${(e as Error).message}`;
    }
  }

  void refresh();
  const offRuns = onRuns((e) => render(e.runs));
  const timer = window.setInterval(() => {
    if (document.visibilityState === "visible") void refresh();
  }, POLL_MS);
  return () => {
    alive = false;
    offRuns();
    window.clearInterval(timer);
  };
}
