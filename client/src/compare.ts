/**
 * Runs side by side: each run's live canvas, and their curves together on
 * shared charts (return solid, hidden performance dashed, one colour per
 * run), event rates and any update metric; then the probe section.
 */
import type { RunSummary } from "../../server/protocol.ts";
import type { TrajectoryRecord } from "../../server/protocol.ts";
import { api, isActive } from "./api.ts";
import { FramePlayer, GridCanvas } from "./canvas.ts";
import { joinTables, LineChart, type Marker, type SeriesDef } from "./charts.ts";
import { colorAt, fmt, h, option, setChildren, shortId } from "./dom.ts";
import { mountProbes } from "./probes.ts";
import { RunModel } from "./runmodel.ts";
import { eventsSummary, progressBar, statusBadge } from "./runs.ts";
import { smoothingControl } from "./runview.ts";
import { smooth } from "./series.ts";
import { onRuns } from "./socket.ts";

const MAX_RUNS = 8;

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

export function mountCompare(host: HTMLElement, ids: string[]): () => void {
  ids = [...new Set(ids)].slice(0, MAX_RUNS);
  // overlaid noisy runs read better smoothed harder than a single run
  let smoothing = 0.85;
  let dirty = true;

  const picker = h(
    "div",
    { class: "compare-picker", "data-testid": "compare-picker" },
    h("span", { class: "muted small" }, "loading runs…"),
  );
  const lanesBox = h("div", { class: "lanes", "data-testid": "compare-lanes" });
  const eventSel = h("select", { "data-testid": "compare-event" });
  const metricSel = h("select", { "data-testid": "compare-metric" });
  const probeHost = h("div", {});

  const lanes: Lane[] = ids.map((id, i) => {
    const model = new RunModel(id);
    const grid = new GridCanvas({ testid: "compare-canvas", maxCell: 30, minCell: 4 });
    grid.el.dataset.runId = id;
    const player = new FramePlayer(grid);
    const hud = h("div", { class: "hud mono small" }, "waiting for frames…");
    player.onShow = (f) => {
      const replaying = model.run !== null && !isActive(model.run.status);
      hud.textContent = `${replaying ? "replay of " : ""}ep ${f.episode} · t ${f.t}${f.events.length ? ` · ${f.events.join(" ")}` : ""}`;
    };
    model.onFrame = (f) => player.push(f);
    // run colours skip the first two palette entries, which mean return and performance elsewhere
    const color = colorAt(i + 2);
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

  const allMarkers = (): Marker[] =>
    lanes.flatMap((l) =>
      lanes.length > 1 ? l.model.markers().map((m) => ({ x: m.x, label: `${shortId(l.model.runId)}: ${m.label}` })) : l.model.markers(),
    );

  const returnChart = new LineChart({
    testid: "chart-compare-return",
    title: "Return (solid) and hidden performance (dashed), smoothed",
    height: 260,
    markers: allMarkers,
    series: lanes.flatMap((l): SeriesDef[] => [
      { label: `${shortId(l.model.runId)} return`, color: l.color, width: 2 },
      { label: `${shortId(l.model.runId)} perf`, color: l.color, width: 2, dash: [6, 4] },
    ]),
  });
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
          h("h2", {}, "Compare runs"),
          h("div", { class: "spacer" }),
          smoothingControl((w) => ((smoothing = w), (dirty = true)), smoothing),
        ),
        picker,
      ),
      lanes.length
        ? lanesBox
        : h("section", { class: "panel" }, h("p", { class: "muted" }, "Pick two or more runs above (or select them in the runs list).")),
      lanes.length
        ? h(
            "section",
            { class: "panel charts" },
            returnChart.root,
            h(
              "div",
              { class: "two" },
              h("div", {}, h("div", { class: "metric-pick" }, "event ", eventSel), eventsChart.root),
              h("div", {}, h("div", { class: "metric-pick" }, "metric ", metricSel), metricChart.root),
            ),
          )
        : null,
      probeHost,
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
        h("div", { class: "muted" }, eventsSummary(recent?.events)),
      );
    }
  }

  function refreshCharts(): void {
    const tables = lanes.map((l) => {
      const x = l.model.episodes.x();
      return [x, smooth(l.model.episodes.column("return"), smoothing), smooth(l.model.episodes.column("performance"), smoothing)] as [
        number[],
        ...(number | null)[][],
      ];
    });
    const joined = joinTables(tables);
    returnChart.setData(joined[0], joined.slice(1) as (number | null)[][]);

    const events = [...new Set(lanes.flatMap((l) => l.model.events))].sort();
    if (eventSel.options.length !== events.length) {
      const cur = eventSel.value;
      setChildren(eventSel, ...events.map((e) => option(e)));
      if (events.includes(cur)) eventSel.value = cur;
    }
    const ev = eventSel.value;
    const evJoined = joinTables(lanes.map((l) => [l.model.eventRates.x(), l.model.eventRates.column(ev)] as [number[], (number | null)[]]));
    eventsChart.setData(evJoined[0], evJoined.slice(1) as (number | null)[][]);

    const metrics = [...new Set(lanes.flatMap((l) => l.model.updates.columns))].sort();
    if (metricSel.options.length !== metrics.length) {
      const cur = metricSel.value;
      setChildren(metricSel, ...metrics.map((m) => option(m)));
      metricSel.value = metrics.includes(cur) ? cur : metrics.includes("losses/entropy") ? "losses/entropy" : (metrics[0] ?? "");
    }
    const mk = metricSel.value;
    const mJoined = joinTables(
      lanes.map((l) => [l.model.updates.x(), smooth(l.model.updates.column(mk), smoothing * 0.5)] as [number[], (number | null)[]]),
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
  const unmountProbes = mountProbes(probeHost, { embedded: true });
  const onResize = () => lanes.forEach((l) => l.grid.requestDraw());
  window.addEventListener("resize", onResize);

  return () => {
    alive = false;
    window.clearInterval(timer);
    window.clearInterval(loopTimer);
    window.clearInterval(pickerTimer);
    offRuns();
    window.removeEventListener("resize", onResize);
    unmountProbes();
    for (const l of lanes) {
      l.player.stop();
      l.model.stop();
    }
    returnChart.destroy();
    eventsChart.destroy();
    metricChart.destroy();
  };
}
