/**
 * The live run view: the agent on the grid (streamed frames, or a replay of a
 * stored episode), the reinforcement ledger painted on the grid, learning
 * curves with return and hidden performance on the same axes, losses, event
 * rates, run controls and live interventions (marked on every chart).
 */
import type { EnvSummary, InterventionRecord, LedgerTotals, TrajectoryRecord } from "../../server/protocol.ts";
import { api, ApiRequestError, isActive, type Intervention, type TrajectoryListing } from "./api.ts";
import { FramePlayer, GridCanvas, kindLegend, type QueuedFrame } from "./canvas.ts";
import { ChartGrid, LineChart, type SeriesDef } from "./charts.ts";
import { compact, confirmButton, flash, fmt, h, option, setChildren, shortId, note } from "./dom.ts";
import { RunModel } from "./runmodel.ts";
import { isConnected } from "./socket.ts";
import { EVENTS_LABEL, eventsSummary, progressBar, runAction, statusBadge } from "./runs.ts";
import { addLedgerEntries, emptyCellLedger, emptyCellSearch, setSearchVisits, smooth, type CellLedger, type CellSearch } from "./series.ts";
import { colorAt } from "./dom.ts";

const RETURN_COLOR = "#5fb3ff";
const PERF_COLOR = "#ffb454";
const LEDGER_REFRESH_MS = 4000;
const CHART_REFRESH_MS = 300;
/** Losses shown first, in CleanRL's order; any other losses/* follow alphabetically. */
const LOSS_ORDER = [
  "losses/policy_loss",
  "losses/value_loss",
  "losses/entropy",
  "losses/approx_kl",
  "losses/clipfrac",
  "losses/explained_variance",
];

export function smoothingControl(onChange: (w: number) => void, initial = 0.6): HTMLElement {
  const input = h("input", { type: "range", min: 0, max: 0.99, step: 0.01, value: initial, "data-testid": "chart-smoothing" });
  const out = h("span", { class: "mono small" }, initial.toFixed(2));
  input.addEventListener("input", () => {
    out.textContent = Number(input.value).toFixed(2);
    onChange(Number(input.value));
  });
  return h("label", { class: "smoothing" }, "smoothing", input, out);
}

export function mountRunView(host: HTMLElement, runId: string): () => void {
  const model = new RunModel(runId);
  let env: EnvSummary | undefined;
  let smoothing = 0.6;
  let dirty = true;
  const cleanups: (() => void)[] = [];

  // ------------------------------------------------------------ header

  const title = h("h2", { class: "run-title" }, `Run ${shortId(runId)}`);
  const meta = h("div", { class: "muted small", "data-testid": "run-meta" });
  const statusBox = h("span", { "data-testid": "run-status" });
  const progressBox = h("div", { class: "run-progress" });
  const stats = h("div", { class: "run-stats", "data-testid": "run-stats" });
  const pauseBtn = h("button", { "data-testid": "run-pause" }, "Pause");
  const stopBtn = h("button", { "data-testid": "run-stop" }, "Stop");
  const deleteBtn = confirmButton("Delete", "Really delete?", { class: "danger", "data-testid": "run-delete" }, () => {
    void api
      .remove(runId)
      .then(() => {
        flash(`Run ${shortId(runId)} deleted`);
        location.hash = "#/";
      })
      .catch((e: Error) => flash(e.message, "error"));
  });
  const compareLink = h(
    "a",
    { class: "button", "data-testid": "run-compare-link", href: `#/compare?ids=${encodeURIComponent(runId)}` },
    "Compare…",
  );
  pauseBtn.addEventListener("click", () => {
    if (!model.run) return;
    const resume = model.run.status === "paused" || model.run.resumable;
    void runAction(model.run, resume ? "resume" : "pause").then(() => model.refreshSummary());
  });
  stopBtn.addEventListener("click", () => {
    if (model.run) void runAction(model.run, "stop").then(() => model.refreshSummary());
  });

  // ------------------------------------------------------------ stage (canvas)

  const grid = new GridCanvas({ testid: "run-canvas", maxCell: 44 });
  const player = new FramePlayer(grid);
  const modeLabel = h("span", { class: "badge mode-live", "data-testid": "canvas-mode" }, "live");
  const hud = h("div", { class: "hud mono", "data-testid": "run-hud" }, "waiting for frames…");
  const fpsSel = h(
    "select",
    { "data-testid": "canvas-fps", title: "playback speed" },
    ...[5, 10, 20, 30].map((f) => option(String(f), `${f} fps`, f === player.fps)),
  );
  fpsSel.addEventListener("change", () => (player.fps = Number(fpsSel.value)));
  const livePause = h(
    "button",
    { class: "small", "data-testid": "canvas-pause", title: "freeze the live picture (training continues)" },
    "freeze",
  );
  livePause.addEventListener("click", () => {
    player.paused = !player.paused;
    livePause.textContent = player.paused ? "unfreeze" : "freeze";
  });
  const ledgerToggle = h("input", { type: "checkbox", "data-testid": "toggle-ledger" });
  const heatToggle = h("input", { type: "checkbox", "data-testid": "toggle-heatmap" });
  const searchToggle = h("input", { type: "checkbox", "data-testid": "toggle-search" });
  // shown once the agent reports a search (expit in search mode)
  const searchLabel = h("label", { class: "check", hidden: true }, searchToggle, "search visits");
  const ledgerNote = h("div", { class: "muted small", "data-testid": "ledger-note" });
  const kindBox = h("div", {});
  ledgerToggle.addEventListener("change", () => grid.setOverlays({ ledger: ledgerToggle.checked }));
  heatToggle.addEventListener("change", () => grid.setOverlays({ heatmap: heatToggle.checked }));
  searchToggle.addEventListener("change", () => grid.setOverlays({ search: searchToggle.checked }));

  /** Episodes finished, as the stats and the HUD both count them. */
  const episodesFinished = () => Math.max(model.run?.episodes ?? 0, model.episodes.rows);
  let episodeAcc = { episode: -1, ret: 0, perf: 0 };
  player.onShow = (f: QueuedFrame) => {
    if (f.episode !== episodeAcc.episode || f.t === 0) episodeAcc = { episode: f.episode, ret: 0, perf: 0 };
    episodeAcc.ret += f.reward;
    episodeAcc.perf += f.performance;
    // numbered like the stats: the run's finished episodes + 1 is the one in progress (on env copy 0)
    showHud(episodesFinished() + 1, f.t, f.reward, f.performance, f.events, episodeAcc.ret, episodeAcc.perf, f.frame.hud);
  };
  model.onFrame = (f) => {
    if (replay) return; // the replay owns the canvas; live frames resume afterwards
    player.push(f);
  };

  function showHud(
    episode: number,
    t: number,
    r: number,
    p: number,
    events: string[],
    ret: number,
    perf: number,
    extra?: Record<string, number | string | boolean>,
  ): void {
    setChildren(
      hud,
      h("span", {}, `episode ${episode}`),
      h("span", {}, `t ${t}`),
      h("span", { class: "ret" }, `r ${fmt(r)} (Σ ${fmt(ret)})`),
      h("span", { class: "perf" }, `perf ${fmt(p)} (Σ ${fmt(perf)})`),
      events.length ? h("span", { class: "events" }, events.join(" ")) : null,
      ...(extra
        ? Object.entries(extra).map(([k, v]) => h("span", { class: "muted" }, `${k} ${typeof v === "number" ? fmt(v) : String(v)}`))
        : []),
    );
  }

  // ------------------------------------------------------------ ledger overlay

  let ledger: CellLedger | null = null;
  let ledgerActions: string[] = [];
  async function refreshLedger(): Promise<void> {
    try {
      const totals: LedgerTotals = await api.ledger(runId);
      if (!totals.width || !totals.height) {
        ledgerNote.textContent = "This environment has no state keys: no ledger.";
        return;
      }
      const cells = emptyCellLedger(totals.width, totals.height, totals.actions.length);
      addLedgerEntries(cells, totals.entries, totals.visits);
      ledger = cells;
      ledgerActions = totals.actions;
      grid.setLedger(ledger, ledgerActions);
      const n = Object.keys(totals.entries).length;
      ledgerNote.textContent = n
        ? `${n} states reinforced · arrow size ∝ √|Σ lr × policy-gradient coefficient| per action`
        : "Nothing reinforced yet.";
    } catch (e) {
      ledgerNote.textContent =
        e instanceof ApiRequestError && e.status === 404 ? "No ledger for this run." : `ledger: ${(e as Error).message}`;
    }
  }
  model.onLedger = (delta) => {
    if (!ledger) return;
    addLedgerEntries(ledger, delta.entries);
    grid.setLedger(ledger, ledgerActions);
  };

  // the root visit counts of a searching agent, latest per cell (the grid's size comes with the ledger totals)
  let search: CellSearch | null = null;
  model.onSearch = (visits) => {
    if (!ledger) return;
    search ??= emptyCellSearch(ledger.width, ledger.height, ledgerActions.length);
    setSearchVisits(search, visits);
    grid.setSearch(search, ledgerActions);
    if (searchLabel.hidden) {
      searchLabel.hidden = false;
      searchLabel.title = "each cell's latest root visit distribution: arrow length ∝ the action's share of the search's visits";
    }
  };

  // ------------------------------------------------------------ replay

  const replaySel = h("select", { "data-testid": "replay-select" }, option("", "no recorded episodes yet"));
  const replayPrev = h("button", { class: "small", "data-testid": "replay-prev", title: "step back" }, "◀");
  const replayPlay = h("button", { class: "small", "data-testid": "replay-play" }, "play");
  const replayNext = h("button", { class: "small", "data-testid": "replay-next", title: "step forward" }, "▶");
  const replayLive = h("button", { class: "small", "data-testid": "replay-live" }, "back to live");
  const replayScrub = h("input", { type: "range", min: 0, max: 0, value: 0, "data-testid": "replay-scrub" });
  const replayInfo = h("div", { class: "muted small mono", "data-testid": "replay-info" });
  let trajectories: TrajectoryListing[] = [];
  const trajectoryCache = new Map<number, TrajectoryRecord>();
  let replay: { rec: TrajectoryRecord; index: number; playing: boolean; timer: number } | null = null;

  function renderTrajectoryList(): void {
    const current = replaySel.value;
    const sorted = [...trajectories].sort((a, b) => b.episode - a.episode);
    setChildren(
      replaySel,
      option("", sorted.length ? `${sorted.length} recorded episodes: pick one` : "no recorded episodes yet"),
      ...sorted.map((t) =>
        option(
          String(t.episode),
          `ep ${t.episode} @ ${compact(t.envSteps)} · ${t.variant} · R ${fmt(t.return)} · P ${fmt(t.performance)} · ${t.length} steps`,
        ),
      ),
    );
    replaySel.value = current;
  }

  async function loadTrajectories(): Promise<void> {
    try {
      trajectories = await api.trajectories(runId);
      renderTrajectoryList();
      // a finished run streams nothing: show its latest recorded episode instead
      const run = model.run ?? (await api.run(runId).catch(() => null));
      if (run && !isActive(run.status) && trajectories.length && !replay) {
        const latest = Math.max(...trajectories.map((t) => t.episode));
        replaySel.value = String(latest);
        void startReplay(latest);
      }
    } catch {
      // listed again on the next trajectory event
    }
  }

  model.onTrajectory = (t) => {
    trajectoryCache.set(t.episode, t);
    if (trajectoryCache.size > 8) trajectoryCache.delete(trajectoryCache.keys().next().value!);
    if (!trajectories.some((x) => x.episode === t.episode)) {
      trajectories.push({
        episode: t.episode,
        envSteps: t.envSteps,
        variant: t.variant,
        length: t.actions.length,
        return: t.rewards.reduce((a, b) => a + b, 0),
        performance: t.performance.reduce((a, b) => a + b, 0),
      });
      if (trajectories.length > 500) trajectories.splice(0, trajectories.length - 500);
      renderTrajectoryList();
    }
  };

  async function startReplay(episode: number): Promise<void> {
    let rec = trajectoryCache.get(episode);
    if (!rec) {
      try {
        rec = await api.trajectory(runId, episode);
      } catch (e) {
        flash(`replay: ${(e as Error).message}`, "error");
        return;
      }
    }
    stopReplayTimer();
    replay = { rec, index: 0, playing: false, timer: 0 };
    player.clear();
    replayScrub.max = String(Math.max(0, rec.frames.length - 1));
    modeLabel.textContent = `replay ep ${rec.episode}`;
    modeLabel.className = "badge mode-replay";
    showReplayFrame();
    setReplayPlaying(true);
  }

  function showReplayFrame(): void {
    if (!replay) return;
    const { rec, index } = replay;
    const frame = rec.frames[index];
    if (!frame) return;
    grid.setFrame(frame);
    replayScrub.value = String(index);
    // frame i shows the state after action i-1
    const i = index - 1;
    let ret = 0;
    let perf = 0;
    for (let k = 0; k <= i; k++) {
      ret += rec.rewards[k] ?? 0;
      perf += rec.performance[k] ?? 0;
    }
    const action = i >= 0 ? (env?.actions[rec.actions[i] ?? -1] ?? String(rec.actions[i])) : "–";
    showHud(
      rec.episode,
      index,
      i >= 0 ? (rec.rewards[i] ?? 0) : 0,
      i >= 0 ? (rec.performance[i] ?? 0) : 0,
      i >= 0 ? (rec.events[i] ?? []) : [],
      ret,
      perf,
      frame.hud,
    );
    replayInfo.textContent = `step ${index}/${rec.frames.length - 1} · action ${action} · variant ${rec.variant} · @ ${compact(rec.envSteps)} env steps`;
  }

  function stopReplayTimer(): void {
    if (replay?.timer) window.clearInterval(replay.timer);
    if (replay) replay.timer = 0;
  }

  function setReplayPlaying(on: boolean): void {
    if (!replay) return;
    stopReplayTimer();
    replay.playing = on;
    replayPlay.textContent = on ? "pause" : "play";
    if (!on) return;
    if (replay.index >= replay.rec.frames.length - 1) replay.index = 0;
    replay.timer = window.setInterval(() => {
      if (!replay) return;
      if (replay.index >= replay.rec.frames.length - 1) {
        setReplayPlaying(false);
        return;
      }
      replay.index++;
      showReplayFrame();
    }, 1000 / player.fps);
  }

  function exitReplay(): void {
    stopReplayTimer();
    replay = null;
    replaySel.value = "";
    replayInfo.textContent = "";
    replayPlay.textContent = "play";
    modeLabel.textContent = "live";
    modeLabel.className = "badge mode-live";
    hud.textContent = "waiting for frames…";
  }

  replaySel.addEventListener("change", () => {
    if (replaySel.value === "") exitReplay();
    else void startReplay(Number(replaySel.value));
  });
  replayPlay.addEventListener("click", () => {
    if (!replay) {
      const first = trajectories.length ? Math.max(...trajectories.map((t) => t.episode)) : null;
      if (first !== null) {
        replaySel.value = String(first);
        void startReplay(first);
      }
      return;
    }
    setReplayPlaying(!replay.playing);
  });
  const stepReplay = (d: number) => {
    if (!replay) return;
    setReplayPlaying(false);
    replay.index = Math.max(0, Math.min(replay.rec.frames.length - 1, replay.index + d));
    showReplayFrame();
  };
  replayPrev.addEventListener("click", () => stepReplay(-1));
  replayNext.addEventListener("click", () => stepReplay(1));
  replayLive.addEventListener("click", exitReplay);
  replayScrub.addEventListener("input", () => {
    if (!replay) return;
    setReplayPlaying(false);
    replay.index = Number(replayScrub.value);
    showReplayFrame();
  });

  // ------------------------------------------------------------ intervention

  const ivVariant = h("select", { "data-testid": "intervene-variant" });
  const ivLearning = h("input", { type: "checkbox", "data-testid": "intervene-learning", checked: true });
  const ivReward = h("select", { "data-testid": "intervene-reward" }, option("keep"), option("removed"), option("negated"));
  const ivApply = h("button", { class: "primary", "data-testid": "intervene-apply" }, "Apply");
  const ivState = h("div", { class: "muted small", "data-testid": "intervene-state" });
  const ivLog = h("ol", { class: "iv-log", "data-testid": "intervention-log" });
  let ivTouched = false;
  for (const el of [ivVariant, ivLearning, ivReward]) el.addEventListener("change", () => (ivTouched = true));

  /** Shows the run's current settings in the controls, unless the user is editing them. */
  function syncIntervention(): void {
    const run = model.run;
    if (!run) return;
    if (env && ivVariant.options.length !== env.variants.length) setChildren(ivVariant, ...env.variants.map((v) => option(v)));
    if (!env && ivVariant.options.length === 0) setChildren(ivVariant, option(run.variant));
    if (!ivTouched) {
      ivVariant.value = run.variant;
      ivLearning.checked = run.learning;
      ivReward.value = model.currentReward();
    }
    const active = isActive(run.status);
    ivApply.disabled = !active;
    setChildren(
      ivState,
      `now: variant `,
      h("strong", {}, run.variant),
      ` · learning `,
      h("strong", {}, run.learning ? "on" : "off"),
      ` · reward `,
      h("strong", {}, model.currentReward()),
      active ? "" : " · (run not active)",
    );
  }

  function renderInterventionLog(): void {
    const marks = model.markers();
    setChildren(
      ivLog,
      ...model.interventions.map((iv: InterventionRecord, i) =>
        h("li", {}, h("span", { class: "mono" }, `@${compact(iv.envSteps)}`), " ", marks[i]?.label ?? ""),
      ),
    );
  }

  ivApply.addEventListener("click", async () => {
    const run = model.run;
    if (!run) return;
    const body: Intervention = {};
    if (ivVariant.value && ivVariant.value !== run.variant) body.variant = ivVariant.value;
    if (ivLearning.checked !== run.learning) body.learning = ivLearning.checked;
    if (ivReward.value !== model.currentReward()) body.reward = ivReward.value as NonNullable<Intervention["reward"]>;
    if (Object.keys(body).length === 0) {
      flash("Nothing to change: pick a different variant, learning or reward setting.");
      return;
    }
    ivApply.disabled = true;
    try {
      const updated = await api.intervene(runId, body);
      // the answer carries the requested settings (the worker applies them a moment later)
      model.run = updated;
      ivTouched = false;
      flash(`Intervention applied at ${compact(updated.envSteps)} env steps`);
      // the socket's intervention event adds the marker; without a socket, read the list
      if (!isConnected()) {
        const list = await api.interventions(runId).catch(() => null);
        if (list) model.interventions = list;
      }
      dirty = true;
      syncIntervention();
    } catch (e) {
      flash(`intervene: ${(e as Error).message}`, "error");
    } finally {
      ivApply.disabled = !(model.run && isActive(model.run.status));
    }
  });
  model.onIntervention = () => {
    renderInterventionLog();
    syncIntervention();
    dirty = true;
  };

  // ------------------------------------------------------------ charts

  const markers = () => model.markers();
  const returnChart = new LineChart({
    testid: "chart-return",
    title: "Return (what the agent learns from) vs hidden performance, per episode",
    height: 240,
    markers,
    series: [
      { label: "return (raw)", color: RETURN_COLOR, faint: true },
      { label: "performance (raw)", color: PERF_COLOR, faint: true },
      { label: "return", color: RETURN_COLOR, width: 2 },
      // dashed, so that where return and performance coincide (GoalShift) both stay visible
      { label: "performance", color: PERF_COLOR, width: 2, dash: [7, 5] },
    ],
  });
  const eventsChart = new LineChart({
    testid: "chart-events",
    title: "Event rates: fraction of the last 100 episodes with each event",
    height: 200,
    yRange: [0, 1],
    markers,
    series: [],
  });
  const lossesChart = new ChartGrid({ testid: "chart-losses", title: "Losses, entropy, KL (per update, each on its own scale)", markers });
  const metricSel = h("select", { "data-testid": "chart-metric-select" });
  const metricChart = new LineChart({ testid: "chart-metric", title: "Metric", height: 180, markers, series: [] });
  let metricPicked = false;
  metricSel.addEventListener("change", () => (metricPicked = true));
  const showMetric = () => {
    metricChart.setSeries([{ label: metricSel.value, color: "#c39bff" }]);
    metricChart.setTitle(`${metricSel.value} (${metricSel.value.startsWith("episode/") ? "per episode" : "per update"})`);
    dirty = true;
  };
  metricSel.addEventListener("change", showMetric);

  function sameKeys(chart: LineChart, keys: string[], known: string[]): boolean {
    return chart.seriesCount === keys.length && keys.every((k, i) => known[i] === k);
  }
  let eventKeys: string[] = [];

  function refreshCharts(): void {
    const ep = model.episodes;
    const x = ep.x();
    const ret = ep.column("return");
    const perf = ep.column("performance");
    returnChart.setData(x, [ret, perf, smooth(ret, smoothing), smooth(perf, smoothing)]);

    const events = model.events;
    if (!sameKeys(eventsChart, events, eventKeys)) {
      eventKeys = [...events];
      eventsChart.setSeries(eventKeys.map((e, i): SeriesDef => ({ label: e, color: colorAt(i + 2) })));
    }
    eventsChart.setData(
      model.eventRates.x(),
      eventKeys.map((e) => model.eventRates.column(e)),
    );

    const up = model.updates;
    const cols = up.columns;
    const rank = (k: string) => (LOSS_ORDER.includes(k) ? LOSS_ORDER.indexOf(k) : LOSS_ORDER.length);
    // the world models' fit is charted beside the losses (planner "neural", expit)
    const modelFit = ["model/loss", "model/accuracy", "model/disagreement"];
    const losses = cols
      .filter((c) => c.startsWith("losses/") || modelFit.includes(c))
      .sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
    const ux = up.x();
    lossesChart.setData(
      ux,
      losses.map((k) => [k, smooth(up.column(k), smoothing * 0.5)]),
    );

    // metric explorer: every update metric, plus episode length
    const options = ["episode/length", ...cols.filter((c) => !losses.includes(c)).sort(), ...losses];
    if (metricSel.options.length !== options.length) {
      const current = metricSel.value;
      setChildren(metricSel, ...options.map((o) => option(o)));
      const preferred = options.includes("charts/learning_rate") ? "charts/learning_rate" : options[0]!;
      metricSel.value = metricPicked && options.includes(current) ? current : preferred;
      showMetric();
    }
    if (metricSel.value === "episode/length") metricChart.setData(x, [smooth(ep.column("length"), smoothing)]);
    else metricChart.setData(ux, [smooth(up.column(metricSel.value), smoothing * 0.5)]);
  }

  // ------------------------------------------------------------ header, evaluation, metrics

  const evalBox = h("div", { "data-testid": "run-evaluation" }, note("Evaluated with learning off when the run completes."));
  const metricsBox = h("table", { class: "kv", "data-testid": "run-metrics" });
  const missingBox = h("div", { class: "form-error", hidden: true, "data-testid": "run-missing" });
  const learningBox = h("div", { class: "learning-check", hidden: true, role: "status", "data-testid": "learning-check" });

  function refreshHeader(): void {
    const run = model.run;
    if (model.missing && !run) {
      missingBox.hidden = false;
      missingBox.textContent = `Run ${runId} does not exist (deleted?).`;
      return;
    }
    if (!run) return;
    const recent = model.recentStats() ?? run.recent;
    title.textContent = `Run ${shortId(run.id)}${run.spec.label ? ` · ${run.spec.label}` : ""}`;
    setChildren(
      meta,
      `${run.spec.env} · `,
      run.variant !== run.spec.variant ? `${run.spec.variant} → ${run.variant}` : run.variant,
      ` · ${run.spec.agent} · seed ${run.spec.seed} · reward ${model.currentReward()}${run.learning ? "" : " · learning off"}`,
      run.spec.env === "Maze-v0"
        ? h("a", { href: `#/run/${encodeURIComponent(run.id)}/steer`, "data-testid": "steer-link" }, " · steer")
        : null,
    );
    setChildren(statusBox, statusBadge(run.status), run.reason ? h("span", { class: "muted small" }, ` ${run.reason}`) : null);
    setChildren(progressBox, progressBar(run.envSteps, run.spec.steps));
    learningBox.hidden = !run.learningCheck;
    learningBox.textContent = run.learningCheck ?? "";
    setChildren(
      stats,
      stat("episodes", compact(episodesFinished())),
      stat("updates", compact(run.updates)),
      stat("steps/s", run.stepsPerSecond ? compact(run.stepsPerSecond) : "–"),
      stat("return (last 100)", fmt(recent?.return), "ret"),
      stat("performance (last 100)", fmt(recent?.performance), "perf"),
      stat(`${EVENTS_LABEL} (last 100)`, eventsSummary(recent?.events, 4)),
    );
    const active = isActive(run.status);
    pauseBtn.textContent = run.status === "paused" || run.resumable ? "Resume" : "Pause";
    pauseBtn.title = run.resumable ? "resume from the last checkpoint" : "";
    pauseBtn.disabled = !active && !run.resumable;
    stopBtn.disabled = !active;
    const ev = model.evaluation;
    if (ev) {
      setChildren(
        evalBox,
        h(
          "p",
          { class: "small" },
          `${ev.episodes} episodes on `,
          h("strong", {}, ev.variant),
          ` at ${compact(ev.envSteps)} env steps, ${ev.greedy ? "greedy" : "sampled"} policy`,
        ),
        h(
          "table",
          { class: "kv" },
          h(
            "tr",
            {},
            h("th", {}, "return"),
            h("td", { class: "ret" }, `${fmt(ev.return.mean)} [${fmt(ev.return.ci[0])}, ${fmt(ev.return.ci[1])}]`),
          ),
          h(
            "tr",
            {},
            h("th", {}, "performance"),
            h("td", { class: "perf" }, `${fmt(ev.performance.mean)} [${fmt(ev.performance.ci[0])}, ${fmt(ev.performance.ci[1])}]`),
          ),
          h("tr", {}, h("th", {}, "length"), h("td", {}, fmt(ev.length))),
          ...Object.entries(ev.eventRates).map(([k, v]) => h("tr", {}, h("th", {}, `rate: ${k}`), h("td", {}, fmt(v)))),
        ),
      );
    }
    const entries = Object.entries(model.latestMetrics).sort(([a], [b]) => a.localeCompare(b));
    setChildren(metricsBox, ...entries.map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", { class: "mono" }, fmt(v, 4)))));
    syncIntervention();
  }

  function stat(label: string, value: string, cls = ""): HTMLElement {
    return h("div", { class: "stat" }, h("div", { class: `value ${cls}` }, value), h("div", { class: "label" }, label));
  }

  // ------------------------------------------------------------ layout

  setChildren(
    host,
    h(
      "div",
      { class: "runview", "data-testid": "run-view", "data-run-id": runId },
      h(
        "section",
        { class: "panel run-head" },
        h("div", { class: "run-head-main" }, title, meta, h("div", { class: "run-status-line" }, statusBox, progressBox)),
        h("div", { class: "run-controls" }, pauseBtn, stopBtn, deleteBtn, compareLink),
        stats,
        learningBox,
        missingBox,
      ),
      h(
        "div",
        { class: "run-grid" },
        h(
          "div",
          { class: "col-left" },
          h(
            "section",
            { class: "panel stage" },
            h("div", { class: "panel-head" }, h("h3", {}, "Environment"), modeLabel, h("div", { class: "spacer" }), fpsSel, livePause),
            h("div", { class: "canvas-box" }, grid.el),
            hud,
            h(
              "div",
              { class: "overlay-controls" },
              h("label", { class: "check" }, ledgerToggle, "reinforcement ledger"),
              h("label", { class: "check" }, heatToggle, "visitation heatmap"),
              searchLabel,
              h("span", { class: "ledger-key" }, h("i", { class: "pos" }), "reinforced", h("i", { class: "neg" }), "discouraged"),
            ),
            ledgerNote,
            kindBox,
          ),
          // intervene right under the canvas: its Apply button stays above the fold at 1440x900
          h(
            "section",
            { class: "panel intervene", "data-testid": "intervene" },
            h("h3", {}, "Intervene live"),
            note(
              "Change the world under a training agent: switch the variant, freeze learning, or remove the reward. Marked on every chart.",
            ),
            h(
              "div",
              { class: "iv-grid" },
              h("label", {}, "variant", ivVariant),
              h("label", {}, "reward", ivReward),
              h("label", { class: "check" }, ivLearning, "learning"),
              ivApply,
            ),
            ivState,
            ivLog,
          ),
          h(
            "section",
            { class: "panel replay" },
            h("h3", {}, "Replay a recorded episode"),
            replaySel,
            h("div", { class: "replay-controls" }, replayPrev, replayPlay, replayNext, replayScrub, replayLive),
            replayInfo,
          ),
          h("section", { class: "panel" }, h("h3", {}, "Evaluation"), evalBox),
          h("section", { class: "panel" }, h("h3", {}, "Latest update metrics"), metricsBox),
        ),
        h(
          "div",
          { class: "col-right" },
          h(
            "section",
            { class: "panel charts" },
            h(
              "div",
              { class: "panel-head" },
              h("h3", {}, "Learning"),
              h("div", { class: "spacer" }),
              smoothingControl((w) => ((smoothing = w), (dirty = true)), smoothing),
            ),
            returnChart.root,
            eventsChart.root,
            lossesChart.root,
            h("div", { class: "metric-pick" }, metricSel),
            metricChart.root,
          ),
        ),
      ),
    ),
  );

  // ------------------------------------------------------------ wiring

  model.subscribe(() => (dirty = true));
  const chartTimer = window.setInterval(() => {
    if (!dirty) return;
    dirty = false;
    refreshHeader();
    refreshCharts();
    renderInterventionLog();
  }, CHART_REFRESH_MS);
  let ledgerTimer = 0;
  const scheduleLedger = () => {
    ledgerTimer = window.setTimeout(async () => {
      if (!model.run || isActive(model.run.status) || !ledger) await refreshLedger();
      scheduleLedger();
    }, LEDGER_REFRESH_MS);
  };

  api
    .envs()
    .then((envs) => {
      return api.run(runId).then((run) => {
        env = envs.find((e) => e.id === run.spec.env);
        if (env) {
          model.setKnownEvents(env.events);
          const frame = env.variantFrames?.[run.variant] ?? env.frame;
          if (!grid.current) grid.setFrame(frame);
          setChildren(kindBox, kindLegend(frame));
        }
        dirty = true;
      });
    })
    .catch(() => undefined)
    .finally(() => {
      model.start();
      player.start();
      void loadTrajectories();
      void refreshLedger();
      scheduleLedger();
    });

  const onResize = () => grid.requestDraw();
  window.addEventListener("resize", onResize);
  cleanups.push(() => window.removeEventListener("resize", onResize));

  // keys: space plays/pauses the replay (or freezes the live picture), arrows step the replay
  const onKey = (ev: KeyboardEvent) => {
    const target = ev.target as HTMLElement | null;
    if (target && /^(INPUT|SELECT|TEXTAREA|BUTTON)$/.test(target.tagName)) return;
    if (ev.key === " ") {
      ev.preventDefault();
      if (replay) setReplayPlaying(!replay.playing);
      else livePause.click();
    } else if (ev.key === "ArrowLeft" && replay) {
      stepReplay(-1);
    } else if (ev.key === "ArrowRight" && replay) {
      stepReplay(1);
    }
  };
  window.addEventListener("keydown", onKey);
  cleanups.push(() => window.removeEventListener("keydown", onKey));

  return () => {
    for (const c of cleanups) c();
    window.clearInterval(chartTimer);
    window.clearTimeout(ledgerTimer);
    stopReplayTimer();
    player.stop();
    model.stop();
    returnChart.destroy();
    eventsChart.destroy();
    lossesChart.destroy();
    metricChart.destroy();
  };
}
