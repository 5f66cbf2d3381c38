/**
 * Runs side by side: each run's live canvas, and their curves together: one
 * return panel per environment (each on its own scale; return solid, hidden
 * performance dashed), event rates and any update metric; then the probe
 * section. Every run keeps one colour (from its id) in every view. Runs that
 * differ only by seed can be grouped: the group's mean curve with a shaded
 * band from the lowest to the highest seed. The x axis is env steps or wall
 * time; every chart exports CSV and PNG.
 */
import type { RunSummary } from "../../server/protocol.ts";
import type { TrajectoryRecord } from "../../server/protocol.ts";
import { api, isActive } from "./api.ts";
import { FramePlayer, GridCanvas } from "./canvas.ts";
import { joinTables, LineChart, type Marker, type SeriesDef } from "./charts.ts";
import { fmt, h, option, runColor, setChildren, shortId } from "./dom.ts";
import { RunModel } from "./runmodel.ts";
import { EVENTS_LABEL, EVENTS_TITLE, eventsSummary, progressBar, statusBadge } from "./runs.ts";
import { smoothingControl } from "./runview.ts";
import { smooth } from "./series.ts";
import { onRuns } from "./socket.ts";

const MAX_RUNS = 8;
/** Points of a seed group's curves: the runs are resampled onto this many x values. */
const GROUP_POINTS = 120;

export interface CompareOptions {
  /** "demo": the home page's live demo (no run picker, no probes). */
  mode?: "full" | "demo";
  title?: string;
}

type XAxis = "steps" | "time";

/** What makes runs the same experiment: everything in the spec but the seed (and the label). */
export function groupKey(run: RunSummary): string {
  const { seed: _seed, label: _label, ...rest } = run.spec as RunSummary["spec"] & { label?: string };
  return JSON.stringify(rest, Object.keys(rest).sort());
}

/**
 * Resamples a curve onto `grid`: each grid x takes the last value at or
 * before it (null before the curve starts or after it ends).
 */
export function resample(xs: readonly number[], ys: readonly (number | null)[], grid: readonly number[]): (number | null)[] {
  const out: (number | null)[] = [];
  let j = -1;
  for (const g of grid) {
    while (j + 1 < xs.length && xs[j + 1]! <= g) j++;
    out.push(j < 0 || g > xs[xs.length - 1]! ? null : (ys[j] ?? null));
  }
  return out;
}

/** Mean, min and max across curves at each point (null where no curve has a value). */
export function bandStats(curves: (number | null)[][]): { mean: (number | null)[]; lo: (number | null)[]; hi: (number | null)[] } {
  const n = curves[0]?.length ?? 0;
  const mean: (number | null)[] = [];
  const lo: (number | null)[] = [];
  const hi: (number | null)[] = [];
  for (let i = 0; i < n; i++) {
    const vs = curves.map((c) => c[i]).filter((v): v is number => v !== null && v !== undefined && Number.isFinite(v));
    if (vs.length === 0) {
      mean.push(null);
      lo.push(null);
      hi.push(null);
      continue;
    }
    mean.push(vs.reduce((a, b) => a + b, 0) / vs.length);
    lo.push(Math.min(...vs));
    hi.push(Math.max(...vs));
  }
  return { mean, lo, hi };
}

interface Lane {
  /** Latest recorded episode, looped on the canvas once the run no longer streams. */
  loop: TrajectoryRecord | null;
  loopLoading: boolean;
  model: RunModel;
  grid: GridCanvas;
  player: FramePlayer;
  head: HTMLElement;
  stats: HTMLElement;
  hud: HTMLElement;
  color: string;
}

export function mountCompare(host: HTMLElement, ids: string[], opts: CompareOptions = {}): () => void {
  ids = [...new Set(ids)].slice(0, MAX_RUNS);
  const demo = opts.mode === "demo";
  // overlaid noisy runs read better smoothed harder than a single run
  let smoothing = 0.85;
  let dirty = true;
  let xAxis: XAxis = "steps";
  let grouped = true;

  const picker = h(
    "div",
    { class: "compare-picker", "data-testid": "compare-picker" },
    h("span", { class: "muted small" }, "loading runs…"),
  );
  const lanesBox = h("div", { class: "lanes", "data-testid": "compare-lanes" });
  const eventSel = h("select", { "data-testid": "compare-event" });
  const metricSel = h("select", { "data-testid": "compare-metric" });
  // the Probes page has the form and the results; the comparison only points there
  const probeLink = h(
    "p",
    { class: "muted small", "data-testid": "compare-probes-link" },
    "Does a trained policy pursue the reward or repeat what was reinforced? ",
    h("a", { href: "#/probes" }, "Run a probe"),
    " · ",
    h("a", { href: "#/results" }, "see the results table"),
  );

  const lanes: Lane[] = ids.map((id) => {
    const model = new RunModel(id);
    const grid = new GridCanvas({ testid: "compare-canvas", maxCell: 30, minCell: 4 });
    grid.el.dataset.runId = id;
    const player = new FramePlayer(grid);
    const hud = h("div", { class: "hud mono small" }, "waiting for frames…");
    player.onShow = (f) => {
      const replaying = model.run !== null && !isActive(model.run.status);
      // live: numbered like the stats (finished episodes + 1 is the one in progress); a replay: the recorded episode
      const ep = replaying ? f.episode : Math.max(model.run?.episodes ?? 0, model.episodes.rows) + 1;
      hud.textContent = `${replaying ? "replay of " : ""}ep ${ep} · t ${f.t}${f.events.length ? ` · ${f.events.join(" ")}` : ""}`;
    };
    model.onFrame = (f) => player.push(f);
    const color = runColor(id);
    model.onTrajectory = (t) => {
      lane.loop = t;
    };
    const lane: Lane = {
      loop: null,
      loopLoading: false,
      model,
      grid,
      player,
      head: h("div", { class: "lane-head" }),
      stats: h("div", { class: "lane-stats small" }),
      hud,
      color,
    };
    return lane;
  });

  /** Finished runs stream nothing: replay their latest recorded episode in a loop. */
  function loopFinished(l: Lane): void {
    const run = l.model.run;
    if (!run || isActive(run.status) || l.player.backlog > 0) return;
    if (l.loop) {
      const t = l.loop;
      t.frames.forEach((frame, i) =>
        l.player.push({
          frame,
          episode: t.episode,
          t: i,
          reward: t.rewards[i - 1] ?? 0,
          performance: t.performance[i - 1] ?? 0,
          events: t.events[i - 1] ?? [],
        }),
      );
      return;
    }
    if (l.loopLoading) return;
    l.loopLoading = true;
    void api
      .trajectories(run.id)
      .then((list) => {
        if (list.length === 0) return;
        const latest = Math.max(...list.map((t) => t.episode));
        return api.trajectory(run.id, latest).then((t) => {
          l.loop = t;
        });
      })
      .catch(() => undefined);
  }
  const loopTimer = window.setInterval(() => lanes.forEach(loopFinished), 1000);

  // interventions are placed by env steps: shown on that axis only
  const allMarkers = (): Marker[] =>
    xAxis !== "steps"
      ? []
      : lanes.flatMap((l) =>
          lanes.length > 1 ? l.model.markers().map((m) => ({ x: m.x, label: `${shortId(l.model.runId)}: ${m.label}` })) : l.model.markers(),
        );

  /** One return panel per environment (reward scales differ), created as runs become known. */
  const returnPanels = new Map<string, { chart: LineChart; signature: string }>();
  const returnBox = h("div", { class: "return-panels", "data-testid": "compare-return-panels" });
  const xSel = h(
    "select",
    { "data-testid": "compare-x" },
    option("steps", "x: env steps"),
    option("time", "x: wall time (estimated from the run's mean speed)"),
  );
  xSel.addEventListener("change", () => {
    xAxis = xSel.value as XAxis;
    dirty = true;
  });
  const groupCheck = h("input", { type: "checkbox", checked: true, "data-testid": "compare-group" });
  groupCheck.addEventListener("change", () => {
    grouped = groupCheck.checked;
    dirty = true;
  });
  const groupLabel = h(
    "label",
    { class: "check small", title: "runs identical but for the seed: their mean, and a band from the lowest to the highest seed" },
    groupCheck,
    " group seeds (mean, min–max band)",
  );

  const eventsChart = new LineChart({
    testid: "chart-compare-events",
    title: "Event rate (last 100 episodes)",
    height: 200,
    yRange: [0, 1],
    markers: allMarkers,
    series: lanes.map((l): SeriesDef => ({ label: shortId(l.model.runId), color: l.color, width: 2 })),
  });
  const metricChart = new LineChart({
    testid: "chart-compare-metric",
    title: "Update metric",
    height: 200,
    markers: allMarkers,
    series: lanes.map((l): SeriesDef => ({ label: shortId(l.model.runId), color: l.color, width: 2 })),
  });
  eventSel.addEventListener("change", () => (dirty = true));
  metricSel.addEventListener("change", () => (dirty = true));

  setChildren(
    host,
    h(
      "div",
      { class: "compare", "data-testid": "compare-view" },
      h(
        "section",
        { class: "panel" },
        h(
          "div",
          { class: "panel-head" },
          h("h2", {}, opts.title ?? "Compare runs"),
          h("div", { class: "spacer" }),
          groupLabel,
          xSel,
          smoothingControl((w) => ((smoothing = w), (dirty = true)), smoothing),
        ),
        demo ? null : picker,
      ),
      lanes.length
        ? lanesBox
        : h("section", { class: "panel" }, h("p", { class: "muted" }, "Pick two or more runs above (or select them in the runs list).")),
      lanes.length
        ? h(
            "section",
            { class: "panel charts" },
            returnBox,
            h(
              "div",
              { class: "two" },
              h("div", {}, h("div", { class: "metric-pick" }, "event ", eventSel), eventsChart.root),
              h("div", {}, h("div", { class: "metric-pick" }, "metric ", metricSel), metricChart.root),
            ),
          )
        : null,
      demo ? null : probeLink,
    ),
  );

  for (const l of lanes) {
    lanesBox.appendChild(
      h(
        "section",
        { class: "panel lane", "data-testid": "compare-lane", "data-run-id": l.model.runId, style: `border-top: 3px solid ${l.color}` },
        l.head,
        h("div", { class: "canvas-box" }, l.grid.el),
        l.hud,
        l.stats,
      ),
    );
  }

  function renderPicker(runs: RunSummary[]): void {
    const sorted = [...runs].sort((a, b) => b.createdAt - a.createdAt);
    setChildren(
      picker,
      ...sorted.map((r) => {
        const check = h("input", { type: "checkbox", checked: ids.includes(r.id), "data-testid": "compare-pick", "data-run-id": r.id });
        check.addEventListener("change", () => {
          const next = check.checked ? [...ids, r.id] : ids.filter((x) => x !== r.id);
          location.hash = next.length ? `#/compare?ids=${next.map(encodeURIComponent).join(",")}` : "#/compare";
        });
        return h(
          "label",
          { class: "chip pick" },
          check,
          h("i", { class: "run-dot", style: `background:${runColor(r.id)}` }),
          h("span", { class: "mono" }, shortId(r.id)),
          ` ${r.spec.env} · ${r.variant} · ${r.spec.agent} `,
          statusBadge(r.status),
        );
      }),
    );
    if (sorted.length === 0) setChildren(picker, h("span", { class: "muted" }, "No runs yet."));
  }

  function refreshLanes(): void {
    for (const l of lanes) {
      const run = l.model.run;
      if (!run) {
        if (l.model.missing) setChildren(l.head, h("span", { class: "form-error" }, `run ${l.model.runId} not found`));
        continue;
      }
      setChildren(
        l.head,
        h("a", { href: `#/run/${encodeURIComponent(run.id)}`, class: "mono", style: `color:${l.color}` }, shortId(run.id)),
        ` ${run.spec.env} · ${run.variant} · ${run.spec.agent} · seed ${run.spec.seed} `,
        statusBadge(run.status),
        // why a run waits or paused (a demo run that gave its slot to a user's run says so)
        run.reason && (run.status === "paused" || run.status === "queued")
          ? h("div", { class: "muted small", "data-testid": "lane-reason" }, run.reason)
          : null,
      );
      const recent = l.model.recentStats() ?? run.recent;
      setChildren(
        l.stats,
        progressBar(run.envSteps, run.spec.steps),
        h(
          "div",
          {},
          h("span", { class: "ret" }, `return ${fmt(recent?.return)}`),
          " · ",
          h("span", { class: "perf" }, `performance ${fmt(recent?.performance)}`),
        ),
        h("div", { class: "muted", title: EVENTS_TITLE }, `${EVENTS_LABEL}: ${eventsSummary(recent?.events)}`),
      );
    }
  }

  /** A lane's x values on the chosen axis: env steps, or seconds since start at the run's mean speed. */
  function xsOf(l: Lane, steps: number[]): number[] {
    if (xAxis === "steps") return steps;
    const run = l.model.run;
    const seconds = run ? Math.max(1e-3, (run.updatedAt - run.createdAt) / 1000) : 1;
    const perStep = run && run.envSteps > 0 ? seconds / run.envSteps : 0;
    return steps.map((s) => s * perStep);
  }

  function refreshReturnPanels(): void {
    const known = lanes.filter((l) => l.model.run);
    const envs = [...new Set(known.map((l) => l.model.run!.spec.env))];
    const xLabel = xAxis === "steps" ? "env steps" : "wall time (s, est.)";
    for (const env of envs) {
      const mine = known.filter((l) => l.model.run!.spec.env === env);
      // seed groups (in lane order); a group of one run is drawn as that run
      const groups = new Map<string, Lane[]>();
      for (const l of mine) {
        const k = grouped ? groupKey(l.model.run!) : l.model.runId;
        groups.set(k, [...(groups.get(k) ?? []), l]);
      }
      const series: SeriesDef[] = [];
      const bands: { upper: number; lower: number; color: string }[] = [];
      /** One table per run or seed group, [x, ...columns] in series order; joined on the union of their x. */
      const tables: [number[], ...(number | null)[][]][] = [];
      const curves = (l: Lane) => {
        const x = xsOf(l, l.model.episodes.x());
        return {
          x,
          ret: smooth(l.model.episodes.column("return"), smoothing),
          perf: smooth(l.model.episodes.column("performance"), smoothing),
        };
      };
      const many = [...groups.values()].some((g) => g.length > 1);
      for (const [, members] of groups) {
        const first = members[0]!;
        if (members.length === 1) {
          const name = shortId(first.model.runId);
          series.push(
            { label: `${name} return`, color: first.color, width: 2 },
            { label: `${name} perf`, color: first.color, width: 2, dash: [6, 4] },
          );
          const c = curves(first);
          tables.push([c.x, c.ret, c.perf]);
          continue;
        }
        const run = first.model.run!;
        // a seed group takes its first run's colour
        const color = first.color;
        const name = `${run.spec.agent} ×${members.length} seeds`;
        const base = series.length;
        series.push(
          { label: `${name} return (mean)`, color, width: 2 },
          { label: `${name} perf (mean)`, color, width: 2, dash: [6, 4] },
          { label: `${name} return max`, color, faint: true, width: 1, legend: false },
          { label: `${name} return min`, color, faint: true, width: 1, legend: false },
          { label: `${name} perf max`, color, faint: true, width: 1, dash: [2, 3], legend: false },
          { label: `${name} perf min`, color, faint: true, width: 1, dash: [2, 3], legend: false },
        );
        bands.push({ upper: base + 2, lower: base + 3, color }, { upper: base + 4, lower: base + 5, color });
        // the seeds resampled onto one grid over the group's span: mean, and min..max as the band
        const cs = members.map(curves);
        const start = Math.min(...cs.map((c) => c.x[0] ?? Number.POSITIVE_INFINITY));
        const end = Math.max(...cs.map((c) => c.x.at(-1) ?? 0));
        const grid =
          Number.isFinite(start) && end > start
            ? Array.from({ length: GROUP_POINTS + 1 }, (_, i) => start + ((end - start) * i) / GROUP_POINTS)
            : [];
        const ret = bandStats(cs.map((c) => resample(c.x, c.ret, grid)));
        const perf = bandStats(cs.map((c) => resample(c.x, c.perf, grid)));
        tables.push([grid, ret.mean, perf.mean, ret.hi, ret.lo, perf.hi, perf.lo]);
      }
      const signature = JSON.stringify([series.map((x) => x.label), xLabel]);
      let panel = returnPanels.get(env);
      if (!panel) {
        const chart = new LineChart({
          testid: `chart-compare-return-${env.replace(/[^a-zA-Z0-9]+/g, "-")}`,
          title: "",
          height: 240,
          markers: allMarkers,
          xLabel,
          series,
          bands,
        });
        chart.root.dataset.env = env;
        panel = { chart, signature };
        returnPanels.set(env, panel);
        returnBox.appendChild(chart.root);
      } else if (panel.signature !== signature) {
        panel.chart.setSeries(series, { bands, xLabel });
        panel.signature = signature;
      }
      panel.chart.root.dataset.groups = String([...groups.values()].filter((g) => g.length > 1).length);
      panel.chart.setTitle(
        `${env}: return (solid) and hidden performance (dashed), smoothed${many ? "; seed groups: mean with min–max band" : ""}`,
      );
      const joined = joinTables(tables);
      panel.chart.setData(joined[0], joined.slice(1) as (number | null)[][]);
    }
  }

  let drawnAxis: XAxis = "steps";
  function refreshCharts(): void {
    refreshReturnPanels();
    if (drawnAxis !== xAxis) {
      drawnAxis = xAxis;
      const xLabel = xAxis === "steps" ? "env steps" : "wall time (s, est.)";
      const perRun = lanes.map((l): SeriesDef => ({ label: shortId(l.model.runId), color: l.color, width: 2 }));
      eventsChart.setSeries(perRun, { xLabel });
      metricChart.setSeries(perRun, { xLabel });
    }

    const events = [...new Set(lanes.flatMap((l) => l.model.events))].sort();
    if (eventSel.options.length !== events.length) {
      const cur = eventSel.value;
      setChildren(eventSel, ...events.map((e) => option(e)));
      if (events.includes(cur)) eventSel.value = cur;
    }
    const ev = eventSel.value;
    const evJoined = joinTables(
      lanes.map((l) => [xsOf(l, l.model.eventRates.x()), l.model.eventRates.column(ev)] as [number[], (number | null)[]]),
    );
    eventsChart.setData(evJoined[0], evJoined.slice(1) as (number | null)[][]);

    const metrics = [...new Set(lanes.flatMap((l) => l.model.updates.columns))].sort();
    if (metricSel.options.length !== metrics.length) {
      const cur = metricSel.value;
      setChildren(metricSel, ...metrics.map((m) => option(m)));
      metricSel.value = metrics.includes(cur) ? cur : metrics.includes("losses/entropy") ? "losses/entropy" : (metrics[0] ?? "");
    }
    const mk = metricSel.value;
    const mJoined = joinTables(
      lanes.map(
        (l) => [xsOf(l, l.model.updates.x()), smooth(l.model.updates.column(mk), smoothing * 0.5)] as [number[], (number | null)[]],
      ),
    );
    metricChart.setData(mJoined[0], mJoined.slice(1) as (number | null)[][]);
  }

  const timer = window.setInterval(() => {
    if (!dirty) return;
    dirty = false;
    refreshLanes();
    if (lanes.length) refreshCharts();
  }, 400);

  let alive = true;
  const refreshPicker = () =>
    void api
      .runs()
      .then((runs) => alive && renderPicker(runs))
      .catch(() => setChildren(picker, h("span", { class: "form-error" }, "could not load runs")));
  refreshPicker();
  const offRuns = onRuns((e) => renderPicker(e.runs));
  const pickerTimer = window.setInterval(refreshPicker, 5000);
  void api.envs().then((envs) => {
    for (const l of lanes) {
      void api
        .run(l.model.runId)
        .then((run) => {
          const env = envs.find((e) => e.id === run.spec.env);
          if (!env) return;
          l.model.setKnownEvents(env.events);
          if (!l.grid.current) l.grid.setFrame(env.variantFrames?.[run.variant] ?? env.frame);
        })
        .catch(() => undefined);
    }
  });
  for (const l of lanes) {
    l.model.subscribe(() => (dirty = true));
    l.model.start();
    l.player.start();
  }
  const onResize = () => lanes.forEach((l) => l.grid.requestDraw());
  window.addEventListener("resize", onResize);

  return () => {
    alive = false;
    window.clearInterval(timer);
    window.clearInterval(loopTimer);
    window.clearInterval(pickerTimer);
    offRuns();
    window.removeEventListener("resize", onResize);
    for (const l of lanes) {
      l.player.stop();
      l.model.stop();
    }
    for (const p of returnPanels.values()) p.chart.destroy();
    eventsChart.destroy();
    metricChart.destroy();
  };
}
