/**
 * Sweeps: a spec editor (JSON, validated by the server; a 400's details are
 * listed beside it and select the offending part of the text), the list of
 * sweeps with live progress (socket `sweep`, polling while one runs), and the
 * selected sweep's aggregated probe tables (drawn like the probes view) and
 * its runs.
 */
import type { RunSummary, SweepView } from "../../server/protocol.ts";
import { api, ApiRequestError, type ProbeDefinition, type SweepSpec } from "./api.ts";
import { ago, compact, flash, fmt, h, jsonErrorWhere, setChildren, shortId, note, code } from "./dom.ts";
import { probeResultBlock } from "./probechart.ts";
import { definitionInfo } from "./probes.ts";
import { eventsSummary, progressBar, statusBadge } from "./runs.ts";
import { onRuns, onSweep } from "./socket.ts";

const DRAFT_KEY = "rewardlab.sweeps.draft";
const POLL_MS = 2500;
const MAX_RUN_ROWS = 200;

/** Small enough to finish in seconds on a laptop (cpu backend: identical results wherever a job runs). */
export const EXAMPLE_SPEC = {
  name: "tamper-small",
  backend: "cpu",
  grid: { env: ["TamperGrid-v0"], agent: ["reinforce", "ppo"], seeds: 2, steps: [4096], evalEpisodes: 10 },
  probes: [{ probe: "tamper", agents: ["planner"], seeds: 2, steps: 500, episodes: 10 }],
};

/** JSON indented by 2, with arrays of plain values kept on one line (specs are mostly such lists). */
export function formatSpec(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(
    /\[\s*\n([^[\]{}]*?)\n\s*\]/g,
    (_m, inner: string) => `[${inner.trim().replace(/,\s*\n\s*/g, ", ")}]`,
  );
}

/** Where a JSON Pointer's keys appear in the text (a good guess: the first match of each key after the previous one). */
export function locatePath(text: string, path: string): { start: number; end: number } | null {
  let at = 0;
  let found: { start: number; end: number } | null = null;
  for (const seg of path.split("/").filter(Boolean)) {
    if (/^\d+$/.test(seg)) continue;
    const re = new RegExp(`"${seg.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}"\\s*:`, "g");
    re.lastIndex = at;
    const m = re.exec(text);
    if (!m) break;
    found = { start: m.index, end: m.index + seg.length + 2 };
    at = m.index + m[0].length;
  }
  return found;
}

/** Completed, failed and running jobs as one bar. */
export function sweepProgress(s: SweepView): HTMLElement {
  const pct = (n: number) => (s.total > 0 ? (100 * Math.min(n, s.total)) / s.total : 0);
  const done = pct(s.completed);
  const failed = pct(s.failed);
  const running = Math.min(pct(s.running), 100 - done - failed);
  return h(
    "div",
    {
      class: "progress sweep-progress",
      "data-testid": "sweep-progress",
      "data-completed": s.completed,
      "data-failed": s.failed,
      "data-total": s.total,
      title: `${s.completed} completed · ${s.failed} failed · ${s.running} running · ${s.total} jobs`,
    },
    h("div", { class: "bar", style: `width:${done.toFixed(1)}%` }),
    failed > 0 ? h("div", { class: "bar failed", style: `left:${done.toFixed(1)}%;width:${failed.toFixed(1)}%` }) : null,
    running > 0 ? h("div", { class: "bar running", style: `left:${(done + failed).toFixed(1)}%;width:${running.toFixed(1)}%` }) : null,
    h("span", {}, `${s.completed + s.failed} / ${s.total}`),
  );
}

function counts(s: SweepView): string {
  const parts = [`${s.completed} completed`];
  if (s.failed) parts.push(`${s.failed} failed`);
  if (s.running) parts.push(`${s.running} running`);
  parts.push(`${s.total} job${s.total === 1 ? "" : "s"}`);
  return parts.join(" · ");
}

function duration(s: SweepView): string {
  if (s.status === "running") return `started ${ago(s.createdAt)}`;
  const secs = Math.max(0, (s.updatedAt - s.createdAt) / 1000);
  return `${secs < 100 ? fmt(secs, 2) : compact(secs)} s · ${ago(s.updatedAt)}`;
}

export function mountSweeps(host: HTMLElement, initialId?: string): () => void {
  const specIn = h("textarea", {
    rows: 16,
    spellcheck: false,
    "data-testid": "sweep-spec",
    class: "sweep-spec",
    "aria-label": "sweep spec (JSON)",
  });
  specIn.value = localStorage.getItem(DRAFT_KEY) || formatSpec(EXAMPLE_SPEC);
  const exampleBtn = h("button", { type: "button", "data-testid": "sweep-example" }, "Example");
  const formatBtn = h("button", { type: "button", "data-testid": "sweep-format" }, "Format");
  const submit = h("button", { type: "button", class: "primary", "data-testid": "sweep-submit" }, "Validate & start");
  const errorBox = h("div", { class: "form-error sweep-error", "data-testid": "sweep-error", role: "alert" });
  const statusLine = h("div", { class: "muted small", "data-testid": "sweep-status", role: "status" });
  const reference = h("div", { class: "sweep-ref small muted", "data-testid": "sweep-reference" });
  const count = h("span", { class: "muted small", "data-testid": "sweeps-count" });
  const list = h("div", { class: "sweep-list", "data-testid": "sweep-list" }, h("p", { class: "muted" }, "loading…"));
  const detail = h(
    "section",
    { class: "panel sweep-detail", "data-testid": "sweep-detail" },
    h("p", { class: "muted" }, "Pick a sweep to see its progress, probe tables and runs."),
  );

  let sweeps: SweepView[] = [];
  /** Views with their probe tables (GET /api/sweeps/:id, or the socket's final event). */
  const full = new Map<string, SweepView>();
  let selectedId: string | null = initialId ?? null;
  let runs: RunSummary[] = [];
  let definitions: ProbeDefinition[] = [];
  let alive = true;

  setChildren(
    host,
    h(
      "div",
      { class: "sweeps", "data-testid": "sweeps" },
      h(
        "div",
        { class: "sweep-top" },
        h(
          "section",
          { class: "panel sweep-editor" },
          h("h2", {}, "New sweep"),
          note(
            "A grid (every combination of ",
            code("env × variant × agent × config × steps"),
            ", each over ",
            code("seeds"),
            "), listed ",
            code("runs"),
            ", and ",
            code("probes"),
            " over seeds. Jobs are keyed by their resolved config: starting the same spec again skips what is done.",
          ),
          specIn,
          errorBox,
          reference,
          h("div", { class: "actions" }, statusLine, exampleBtn, formatBtn, submit),
        ),
        h("section", { class: "panel sweep-list-panel" }, h("div", { class: "panel-head" }, h("h2", {}, "Sweeps"), count), list),
      ),
      detail,
    ),
  );

  // ------------------------------------------------------------ editor

  function clearErrors(): void {
    setChildren(errorBox);
    specIn.classList.remove("invalid");
  }

  function select(range: { start: number; end: number } | null): void {
    if (!range) return;
    specIn.focus();
    specIn.setSelectionRange(range.start, range.end);
  }

  /** Shows why the spec was not started; `invalid` marks the editor (not for a busy server). */
  function showProblem(title: string, details: { path: string; message: string }[] = [], invalid = true): void {
    specIn.classList.toggle("invalid", invalid);
    setChildren(
      errorBox,
      h("strong", {}, title),
      details.length
        ? h(
            "ul",
            {},
            ...details.map((d) => {
              const where = locatePath(specIn.value, d.path);
              return h(
                "li",
                { "data-testid": "sweep-error-detail", "data-path": d.path },
                where
                  ? h(
                      "a",
                      { href: "#", class: "mono", onclick: ((ev: Event) => (ev.preventDefault(), select(where))) as EventListener },
                      d.path,
                    )
                  : h("span", { class: "mono" }, d.path),
                " ",
                d.message,
              );
            }),
          )
        : null,
    );
  }

  /** The spec as JSON, or null after showing why it is not. */
  function parseSpec(): SweepSpec | null {
    const text = specIn.value;
    try {
      const spec = JSON.parse(text) as unknown;
      if (!spec || typeof spec !== "object" || Array.isArray(spec)) {
        showProblem('A sweep spec is a JSON object: {"name": …, "grid" | "runs" | "probes": …}.');
        return null;
      }
      return spec as SweepSpec;
    } catch (e) {
      const message = (e as Error).message;
      showProblem("Not valid JSON:", [{ path: "", message: jsonErrorWhere(message, text) }]);
      const m = /position (\d+)/.exec(message);
      if (m) select({ start: Number(m[1]), end: Number(m[1]) + 1 });
      return null;
    }
  }

  async function start(): Promise<void> {
    clearErrors();
    statusLine.textContent = "";
    const spec = parseSpec();
    if (!spec) return;
    localStorage.setItem(DRAFT_KEY, specIn.value);
    submit.disabled = true;
    submit.textContent = "Starting…";
    try {
      const view = await api.startSweep(spec);
      upsert(view);
      choose(view.id);
      const already = view.total > 0 && view.completed + view.failed >= view.total;
      statusLine.textContent = `${view.name} (${shortId(view.id)}): ${view.total} job${view.total === 1 ? "" : "s"}${already ? ", all done before" : ""}`;
      flash(`Sweep ${view.name} started: ${view.total} jobs`);
      void loadRuns();
    } catch (e) {
      if (!(e instanceof ApiRequestError)) {
        showProblem(String(e), [], false);
      } else if (e.status === 429 || e.status === 0 || e.status >= 500) {
        // busy (one sweep at a time), unreachable or broken: the spec itself may be fine
        showProblem(`${e.message}.`, [], false);
      } else {
        // the message repeats the details after the first ": /": keep its head (it says where, e.g. "sweep spec /grid (env …)")
        const title = e.details.length ? e.message.split(/: (?=\/)/)[0]! : e.message;
        showProblem(title, e.details);
      }
    } finally {
      submit.disabled = false;
      submit.textContent = "Validate & start";
    }
  }

  submit.addEventListener("click", () => void start());
  specIn.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
      ev.preventDefault();
      void start();
    }
  });
  specIn.addEventListener("input", () => {
    specIn.classList.remove("invalid");
    localStorage.setItem(DRAFT_KEY, specIn.value);
  });
  exampleBtn.addEventListener("click", () => {
    specIn.value = formatSpec(EXAMPLE_SPEC);
    localStorage.setItem(DRAFT_KEY, specIn.value);
    clearErrors();
  });
  formatBtn.addEventListener("click", () => {
    clearErrors();
    const spec = parseSpec();
    if (spec) specIn.value = formatSpec(spec);
  });

  // ------------------------------------------------------------ list

  function renderList(): void {
    const sorted = [...sweeps].sort((a, b) => b.createdAt - a.createdAt);
    const running = sorted.filter((s) => s.status === "running").length;
    count.textContent = `${sorted.length} sweep${sorted.length === 1 ? "" : "s"}${running ? `, ${running} running` : ""}`;
    if (sorted.length === 0) {
      setChildren(list, h("p", { class: "muted" }, "No sweeps yet: start one with the editor."));
      return;
    }
    setChildren(
      list,
      ...sorted.map((s) => {
        const row = h(
          "button",
          {
            type: "button",
            class: `sweep-row ${s.id === selectedId ? "selected" : ""}`,
            "data-testid": "sweep-row",
            "data-sweep-id": s.id,
            "data-status": s.status,
          },
          h(
            "div",
            { class: "sweep-row-head" },
            h("strong", {}, s.name),
            h("span", { class: "mono muted small" }, shortId(s.id)),
            h("span", { class: "spacer" }),
            statusBadge(s.status),
            h(
              "span",
              {
                class: `badge mode-${s.mode}`,
                title: s.mode === "queue" ? "jobs go to BullMQ workers (Redis)" : "jobs run on this server's threads",
              },
              s.mode,
            ),
          ),
          sweepProgress(s),
          h("div", { class: "muted small" }, counts(s), " · ", duration(s)),
        );
        row.addEventListener("click", () => choose(s.id));
        return row;
      }),
    );
  }

  function choose(id: string): void {
    selectedId = id;
    history.replaceState(null, "", `#/sweeps?id=${encodeURIComponent(id)}`);
    renderList();
    renderDetail();
    void loadDetail(id);
    void loadRuns();
  }

  function upsert(v: SweepView): void {
    const i = sweeps.findIndex((x) => x.id === v.id);
    const before = i >= 0 ? sweeps[i]! : undefined;
    if (i >= 0) sweeps[i] = v;
    else sweeps.push(v);
    if (v.probes.length > 0 || v.status !== "running") {
      // a finished sweep's final event carries its probe tables; the list's views do not
      if (v.probes.length > 0 || !full.get(v.id)?.probes.length) full.set(v.id, v);
    }
    renderList();
    if (v.id === selectedId) {
      renderDetail();
      // just finished: fetch the probe tables (unless the event had them) and the runs' final state
      if (before?.status === "running" && v.status !== "running") {
        if (v.probes.length === 0) void loadDetail(v.id);
        void loadRuns();
      }
    }
  }

  async function refresh(): Promise<void> {
    try {
      const fresh = await api.sweeps();
      if (!alive) return;
      for (const v of fresh) {
        const old = sweeps.find((x) => x.id === v.id);
        if (old?.status === "running" && v.status !== "running" && v.id === selectedId) void loadDetail(v.id);
      }
      sweeps = fresh;
      if (!selectedId && sweeps.length) selectedId = [...sweeps].sort((a, b) => b.createdAt - a.createdAt)[0]!.id;
      renderList();
      if (selectedId) {
        renderDetail();
        if (!full.has(selectedId)) void loadDetail(selectedId);
      }
    } catch (e) {
      if (alive) setChildren(list, h("p", { class: "form-error" }, `could not load sweeps: ${(e as Error).message}`));
    }
  }

  async function loadDetail(id: string): Promise<void> {
    try {
      const v = await api.sweep(id);
      if (!alive) return;
      full.set(id, v);
      const i = sweeps.findIndex((x) => x.id === id);
      if (i >= 0) sweeps[i] = { ...v, probes: [] };
      else sweeps.push({ ...v, probes: [] });
      renderList();
      if (id === selectedId) renderDetail();
    } catch (e) {
      if (alive && id === selectedId && e instanceof ApiRequestError && e.status === 404) {
        setChildren(detail, h("p", { class: "form-error" }, `No sweep ${id} on this server.`));
      }
    }
  }

  async function loadRuns(): Promise<void> {
    try {
      const r = selectedId ? await api.runs({ sweep: selectedId, limit: MAX_RUN_ROWS }) : [];
      if (!alive) return;
      runs = r;
      renderRuns();
    } catch {
      // the table keeps what it had
    }
  }

  // ------------------------------------------------------------ detail

  const runsHost = h("div", { class: "sweep-runs-host" });

  function renderDetail(): void {
    const listed = sweeps.find((x) => x.id === selectedId);
    const known = selectedId ? full.get(selectedId) : undefined;
    // progress from the newest view, probe tables from the full one
    const s = listed && known ? (listed.updatedAt >= known.updatedAt ? { ...listed, probes: known.probes } : known) : (listed ?? known);
    if (!s) return;
    const defs = new Map(definitions.map((d) => [d.name, d]));
    let probesPart: (HTMLElement | null)[];
    if (s.probes.length > 0) {
      probesPart = s.probes.map((p) =>
        h(
          "div",
          { class: "sweep-probe", "data-testid": "sweep-probe", "data-probe": p.probe },
          h(
            "div",
            { class: "panel-head" },
            h("h3", {}, p.probe),
            h("span", { class: "muted small" }, `on ${p.env} · ${p.results.length} row${p.results.length === 1 ? "" : "s"}`),
          ),
          defs.get(p.probe) ? definitionInfo(defs.get(p.probe)!) : null,
          ...(p.results.length
            ? probeResultBlock(p.results, { chart: "sweep-probe-chart", table: "sweep-probe-table" })
            : [h("p", { class: "muted" }, "No results (its jobs failed?).")]),
        ),
      );
    } else {
      probesPart = [
        h(
          "p",
          { class: "muted", "data-testid": "sweep-probes-note" },
          s.status === "running"
            ? "Probe tables appear when the sweep finishes."
            : "No probe tables: the spec has no probes, or none of their jobs completed.",
        ),
      ];
    }
    setChildren(
      detail,
      h(
        "div",
        { class: "panel-head" },
        h("h2", {}, s.name),
        h("span", { class: "mono muted small", title: s.id }, s.id),
        statusBadge(s.status, "sweep-detail-status"),
        h("span", { class: `badge mode-${s.mode}` }, s.mode),
        sweepActions(s),
      ),
      s.reason ? h("p", { class: "muted small", "data-testid": "sweep-reason" }, s.reason) : null,
      h("div", { class: "sweep-detail-progress" }, sweepProgress(s), h("span", { class: "muted small" }, counts(s), " · ", duration(s))),
      h("h3", { class: "section" }, "Probe tables"),
      ...probesPart,
      runsHost,
    );
    renderRuns();
  }

  /** Stop (while it runs), resume (stopped, interrupted or failed) and delete, each asking the server and showing its answer. */
  function sweepActions(s: SweepView): HTMLElement {
    const act = (label: string, testid: string, f: () => Promise<unknown>, done: string) => {
      const b = h("button", { type: "button", class: "small", "data-testid": testid }, label);
      b.addEventListener("click", () => {
        b.setAttribute("disabled", "");
        f()
          .then(() => {
            flash(done);
            void refresh();
          })
          .catch((e: Error) => flash(e.message, "error"))
          .finally(() => b.removeAttribute("disabled"));
      });
      return b;
    };
    const remove = async () => {
      if (!confirm(`Delete sweep ${s.name} with its runs and results?`)) return;
      await api.deleteSweep(s.id);
      sweeps = sweeps.filter((x) => x.id !== s.id);
      full.delete(s.id);
      selectedId = null;
      setChildren(detail);
      renderList();
    };
    return h(
      "span",
      { class: "sweep-actions" },
      s.status === "running" ? act("Stop", "sweep-stop", () => api.stopSweep(s.id), `Sweep ${s.name} stopped`) : null,
      s.status !== "running" && s.status !== "completed"
        ? act("Resume", "sweep-resume", () => api.resumeSweep(s.id), `Sweep ${s.name} resumed: the jobs not yet stored run`)
        : null,
      act("Delete", "sweep-delete", remove, `Sweep ${s.name} deleted`),
    );
  }

  function renderRuns(): void {
    const s = sweeps.find((x) => x.id === selectedId) ?? (selectedId ? full.get(selectedId) : undefined);
    if (!s) return;
    // the server lists the sweep's runs (their job keys); those already stored are in the runs list
    const ids = new Set(s.runs ?? []);
    const mine = runs.filter((r) => ids.has(r.id));
    const how = `of ${ids.size} in this sweep (runs an earlier sweep already stored included)`;
    mine.sort(
      (a, b) =>
        a.spec.env.localeCompare(b.spec.env) ||
        a.spec.agent.localeCompare(b.spec.agent) ||
        a.spec.steps - b.spec.steps ||
        a.spec.seed - b.spec.seed,
    );
    const compareIds = mine.slice(0, 8).map((r) => encodeURIComponent(r.id));
    const head = h(
      "div",
      { class: "panel-head" },
      h("h3", {}, "Runs"),
      h("span", { class: "muted small" }, `${mine.length} · ${how}`),
      h("span", { class: "spacer" }),
      mine.length >= 2
        ? h(
            "a",
            { class: "button small", href: `#/compare?ids=${compareIds.join(",")}`, "data-testid": "sweep-compare" },
            `Compare ${compareIds.length}`,
          )
        : null,
    );
    if (mine.length === 0) {
      setChildren(
        runsHost,
        head,
        h(
          "p",
          { class: "muted", "data-testid": "sweep-runs-empty" },
          s.status === "running" ? "No runs yet." : "No runs (a probes-only sweep, or its runs were deleted).",
        ),
      );
      return;
    }
    const ev = (r: RunSummary) => r.evaluation;
    setChildren(
      runsHost,
      head,
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "runs sweep-runs", "data-testid": "sweep-runs" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              ...[
                "run",
                "environment",
                "agent",
                "seed",
                "status",
                "progress",
                "return",
                "performance",
                "eval return",
                "eval performance",
                "eval events",
              ].map((t) => h("th", {}, t)),
            ),
          ),
          h(
            "tbody",
            {},
            ...mine
              .slice(0, MAX_RUN_ROWS)
              .map((r) =>
                h(
                  "tr",
                  { "data-testid": "sweep-run-row", "data-run-id": r.id },
                  h("td", {}, h("a", { href: `#/run/${encodeURIComponent(r.id)}`, class: "mono", title: r.id }, shortId(r.id))),
                  h("td", {}, r.spec.env, h("div", { class: "muted small" }, r.variant)),
                  h("td", {}, r.spec.agent),
                  h("td", { class: "num" }, String(r.spec.seed)),
                  h("td", {}, statusBadge(r.status)),
                  h("td", {}, progressBar(r.envSteps, r.spec.steps)),
                  h("td", { class: "num ret" }, fmt(r.recent?.return)),
                  h("td", { class: "num perf" }, fmt(r.recent?.performance)),
                  h("td", { class: "num ret" }, fmt(ev(r)?.return.mean)),
                  h("td", { class: "num perf" }, fmt(ev(r)?.performance.mean)),
                  h("td", { class: "small" }, eventsSummary(ev(r)?.eventRates)),
                ),
              ),
          ),
        ),
      ),
      mine.length > MAX_RUN_ROWS ? note(`… and ${mine.length - MAX_RUN_ROWS} more`) : null,
    );
  }

  // ------------------------------------------------------------ reference, live updates

  Promise.all([api.envs().catch(() => []), api.agents().catch(() => []), api.probeDefinitions().catch(() => [] as ProbeDefinition[])])
    .then(([envs, agents, defs]) => {
      if (!alive) return;
      definitions = defs;
      const line = (label: string, names: string[]) =>
        names.length ? h("div", {}, h("span", { class: "ref-label" }, label), " ", h("span", { class: "mono" }, names.join(", "))) : null;
      setChildren(
        reference,
        line(
          "envs",
          envs.map((e) => e.id),
        ),
        line(
          "agents",
          agents.map((a) => a.name),
        ),
        line(
          "probes",
          defs.map((d) => d.name),
        ),
        h(
          "div",
          {},
          h("span", { class: "ref-label" }, "backend"),
          " ",
          h("span", { class: "mono" }, "cpu, wasm, tensorflow"),
          " · Ctrl+Enter starts",
        ),
      );
      if (selectedId) renderDetail();
    })
    .catch(() => undefined);

  void refresh();
  void loadRuns();
  const offSweep = onSweep((v) => {
    if (alive) upsert(v);
  });
  const offRuns = onRuns((e) => {
    runs = e.runs;
    renderRuns();
  });
  const timer = window.setInterval(() => {
    if (document.visibilityState !== "visible") return;
    // the socket carries progress; polling covers a lost connection and keeps "ago" fresh
    if (sweeps.some((s) => s.status === "running")) {
      void refresh();
      void loadRuns();
    }
  }, POLL_MS);
  return () => {
    alive = false;
    offSweep();
    offRuns();
    window.clearInterval(timer);
  };
}
