/**
 * uPlot line charts with x = env steps (or another x), redrawn at most once
 * per animation frame, resized with their container, with vertical markers
 * for interventions, optional shaded bands (a seed group's min..max), and
 * CSV and PNG export of what is drawn. Data arrive already downsampled
 * (series.ts).
 */
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { compact, fmt, h } from "./dom.ts";

export interface SeriesDef {
  label: string;
  color: string;
  width?: number;
  dash?: number[];
  /** "y" (left axis, default) or "y2" (right axis). */
  scale?: "y" | "y2";
  /** Drawn faintly (raw values under a smoothed line). */
  faint?: boolean;
  /** Hidden in the legend (e.g. raw twins of smoothed series). */
  legend?: boolean;
}

export interface Marker {
  x: number;
  label: string;
}

export interface ChartOptions {
  testid: string;
  title: string;
  height?: number;
  yLabel?: string;
  y2Label?: string;
  yRange?: [number, number];
  series: SeriesDef[];
  markers?: () => Marker[];
  /** Show uPlot's legend with live values (default true). */
  legend?: boolean;
  /** Write each marker's label beside its line (default true; off for small charts). */
  markerLabels?: boolean;
  /** Name of the x values (legend, CSV header, axis); default "env steps". */
  xLabel?: string;
  /** Shaded areas between two series (indices into `series`), e.g. a seed group's min and max. */
  bands?: { upper: number; lower: number; color: string }[];
}

/** Saves text or a blob as a file download. */
function download(name: string, data: Blob): void {
  const url = URL.createObjectURL(data);
  const a = h("a", { href: url, download: name });
  document.body.appendChild(a);
  a.click();
  a.remove();
  window.setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/** A CSV cell: numbers as they are, text quoted when it needs to be. */
function csvCell(v: string | number | null | undefined): string {
  if (v === null || v === undefined || (typeof v === "number" && !Number.isFinite(v))) return "";
  const s = String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

const AXIS = "#8b95a7";
const GRID = "rgba(139,149,167,0.12)";

/** Tick labels: short, and exponents only for tiny or huge values ("2.5e-4", "1.2M"). */
export function tick(v: number): string {
  const a = Math.abs(v);
  if (a === 0) return "0";
  if (a < 1e-3) return v.toExponential(1).replace("e-", "e−");
  if (a >= 1e6) return compact(v);
  return String(Number(v.toPrecision(4)));
}

function markerPlugin(get: () => Marker[], labels: boolean): uPlot.Plugin {
  return {
    hooks: {
      draw: [
        (u: uPlot) => {
          const markers = get();
          if (markers.length === 0) return;
          const { ctx } = u;
          const { top, height, left, width } = u.bbox;
          const dpr = window.devicePixelRatio || 1;
          ctx.save();
          ctx.strokeStyle = "rgba(255, 216, 77, 0.85)";
          ctx.fillStyle = "rgba(255, 216, 77, 0.95)";
          ctx.lineWidth = 1.5 * dpr;
          ctx.setLineDash([5 * dpr, 4 * dpr]);
          ctx.font = `${11 * dpr}px system-ui, sans-serif`;
          ctx.textBaseline = "top";
          ctx.textAlign = "left";
          // labels of nearby markers go on successive lines instead of overlapping
          const lineH = 13 * dpr;
          const rowEnds: number[] = [];
          for (const m of markers) {
            const x = Math.round(u.valToPos(m.x, "x", true));
            if (x < left - 1 || x > left + width + 1) continue;
            ctx.beginPath();
            ctx.moveTo(x, top);
            ctx.lineTo(x, top + height);
            ctx.stroke();
            if (!labels) continue;
            const tw = ctx.measureText(m.label).width;
            const tx = x + 4 * dpr + tw > left + width ? x - 4 * dpr - tw : x + 4 * dpr;
            let row = rowEnds.findIndex((end) => end < tx);
            if (row < 0) row = rowEnds.length;
            if (row > 3) continue;
            rowEnds[row] = tx + tw + 6 * dpr;
            ctx.fillStyle = "rgba(15, 18, 23, 0.75)";
            ctx.fillRect(tx - 2 * dpr, top + 2 * dpr + row * lineH, tw + 4 * dpr, lineH - dpr);
            ctx.fillStyle = "rgba(255, 216, 77, 0.95)";
            ctx.fillText(m.label, tx, top + 2 * dpr + row * lineH);
          }
          ctx.restore();
        },
      ],
    },
  };
}

function withAlpha(color: string, alpha: number): string {
  if (color.startsWith("#") && color.length === 7) {
    const a = Math.round(alpha * 255)
      .toString(16)
      .padStart(2, "0");
    return color + a;
  }
  return color;
}

export class LineChart {
  readonly root: HTMLElement;
  private readonly plotHost: HTMLElement;
  private readonly titleEl: HTMLElement;
  private readonly titleText: HTMLElement;
  private plot: uPlot | null = null;
  private opts: ChartOptions;
  private data: uPlot.AlignedData;
  private pending = false;
  private resizeObs: ResizeObserver;
  private lastWidth = 0;

  constructor(opts: ChartOptions) {
    this.opts = opts;
    this.data = [[], ...opts.series.map(() => [])] as uPlot.AlignedData;
    this.plotHost = h("div", { class: "plot" });
    this.titleText = h("span", { class: "chart-title-text" }, opts.title);
    const csv = h(
      "button",
      { type: "button", class: "chart-export", title: "download the data drawn, as CSV", "data-testid": `${opts.testid}-csv` },
      "CSV",
    );
    const png = h(
      "button",
      { type: "button", class: "chart-export", title: "download the chart as a PNG image", "data-testid": `${opts.testid}-png` },
      "PNG",
    );
    csv.addEventListener("click", () => download(`${this.fileName()}.csv`, new Blob([this.toCSV()], { type: "text/csv" })));
    png.addEventListener("click", () => void this.toPNG().then((b) => b && download(`${this.fileName()}.png`, b)));
    this.titleEl = h("div", { class: "chart-title" }, this.titleText, h("span", { class: "chart-tools" }, csv, png));
    this.root = h("div", { class: "chart", "data-testid": opts.testid, "data-points": 0 }, this.titleEl, this.plotHost);
    this.resizeObs = new ResizeObserver(() => {
      const w = this.width();
      if (w !== this.lastWidth) {
        this.lastWidth = w;
        this.plot?.setSize({ width: w, height: this.opts.height ?? 220 });
        if (!this.plot) this.schedule();
      }
    });
    this.resizeObs.observe(this.root);
  }

  private width(): number {
    return Math.max(200, Math.floor(this.root.clientWidth || 480));
  }

  /** Replaces the series definitions (and bands, x label; the chart is rebuilt on next draw). */
  setSeries(series: SeriesDef[], extra: Pick<ChartOptions, "bands" | "xLabel"> = {}): void {
    this.opts = { ...this.opts, series, bands: extra.bands ?? [], ...(extra.xLabel ? { xLabel: extra.xLabel } : {}) };
    this.plot?.destroy();
    this.plot = null;
    this.data = [[], ...series.map(() => [])] as uPlot.AlignedData;
    this.schedule();
  }

  setTitle(title: string): void {
    this.titleText.textContent = title;
  }

  private fileName(): string {
    return `rewardlab-${this.opts.testid.replace(/^chart-/, "")}`;
  }

  /** The data drawn, as CSV: the x column, then one column per series (labels as headers). */
  toCSV(): string {
    const header = [this.opts.xLabel ?? "env steps", ...this.opts.series.map((s) => s.label)];
    const cols = this.data as unknown as (number | null)[][];
    const rows = [header.map(csvCell).join(",")];
    const n = cols[0]?.length ?? 0;
    for (let i = 0; i < n; i++) rows.push(cols.map((c) => csvCell(c[i])).join(","));
    return `${rows.join("\n")}\n`;
  }

  /** The chart as a PNG: the plot (axes and lines) on the panel's background, under its title. */
  async toPNG(): Promise<Blob | null> {
    const src = this.plot?.ctx.canvas;
    if (!src) return null;
    const dpr = window.devicePixelRatio || 1;
    const head = Math.round(24 * dpr);
    const c = document.createElement("canvas");
    c.width = src.width;
    c.height = src.height + head;
    const ctx = c.getContext("2d")!;
    ctx.fillStyle = "#161a21";
    ctx.fillRect(0, 0, c.width, c.height);
    ctx.fillStyle = "#dfe5ee";
    ctx.font = `${13 * dpr}px system-ui, sans-serif`;
    ctx.textBaseline = "middle";
    ctx.fillText(this.titleText.textContent ?? "", 8 * dpr, head / 2);
    ctx.drawImage(src, 0, head);
    return new Promise((res) => c.toBlob((b) => res(b), "image/png"));
  }

  get seriesCount(): number {
    return this.opts.series.length;
  }

  /** New data: x and one array per series (same length as x). Drawn on the next frame. */
  setData(x: number[], ys: (number | null)[][]): void {
    this.data = [x, ...ys] as uPlot.AlignedData;
    this.root.dataset.points = String(x.length);
    this.schedule();
  }

  /** Redraw (e.g. markers changed). */
  redraw(): void {
    this.plot?.redraw(false, true);
  }

  private schedule(): void {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.render();
    });
  }

  private render(): void {
    if (!this.root.isConnected) return;
    if (!this.plot) {
      this.plot = new uPlot(this.options(), this.data, this.plotHost);
      this.lastWidth = this.width();
      return;
    }
    this.plot.setData(this.data, true);
  }

  private options(): uPlot.Options {
    const o = this.opts;
    const hasY2 = o.series.some((s) => s.scale === "y2");
    const axis = (scale: string, side: 1 | 3, label?: string): uPlot.Axis => ({
      scale,
      side,
      stroke: AXIS,
      grid: { stroke: GRID, width: 1, show: side === 3 },
      ticks: { stroke: GRID, width: 1 },
      label,
      labelSize: label ? 18 : 0,
      labelFont: "11px system-ui, sans-serif",
      font: "11px system-ui, sans-serif",
      // wide enough for the longest tick label
      size: (_u, values) => Math.max(36, ...(values ?? []).map((s) => s.length * 6.5 + 16)),
      values: (_u, splits) => splits.map(tick),
    });
    return {
      width: this.width(),
      height: o.height ?? 220,
      padding: [10, 18, 0, 0],
      legend: { show: o.legend !== false, live: true },
      // lines hidden under lines stay findable: near a line (or over its legend entry) the others fade
      cursor: { drag: { x: true, y: false }, points: { size: 5 }, focus: { prox: 12 } },
      focus: { alpha: 0.25 },
      scales: {
        x: { time: false },
        y: o.yRange ? { range: o.yRange } : { auto: true },
        ...(hasY2 ? { y2: { auto: true } } : {}),
      },
      axes: [
        {
          stroke: AXIS,
          grid: { stroke: GRID, width: 1 },
          ticks: { stroke: GRID, width: 1 },
          font: "11px system-ui, sans-serif",
          values: (_u, splits) => splits.map((v) => compact(v)),
        },
        axis("y", 3, o.yLabel),
        ...(hasY2 ? [axis("y2", 1, o.y2Label)] : []),
      ],
      series: [
        { label: o.xLabel ?? "env steps", value: (_u, v) => (v === null || v === undefined ? "–" : compact(v)) },
        ...o.series.map(
          (s, i): uPlot.Series => ({
            label: s.label,
            stroke: s.faint ? withAlpha(s.color, 0.28) : s.color,
            width: s.width ?? (s.faint ? 1 : underlayWidth(o.series, i)),
            ...(s.dash ? { dash: s.dash } : {}),
            scale: s.scale ?? "y",
            spanGaps: true,
            // a line needs two points: until a series has them (e.g. one batch of episodes that ended together, or a
            // run just started beside a long one) show its points
            points: { show: (u: uPlot, si: number) => singleX(u.data[0]) || fewValues(u.data[si]), size: 6 },
            value: (_u, v) => fmt(v, 4),
            ...(s.legend === false ? { class: "legend-hidden" } : {}),
          }),
        ),
      ],
      ...(o.bands?.length
        ? { bands: o.bands.map((b) => ({ series: [b.upper + 1, b.lower + 1] as [number, number], fill: withAlpha(b.color, 0.18) })) }
        : {}),
      plugins: o.markers ? [markerPlugin(o.markers, o.markerLabels !== false)] : [],
    };
  }

  destroy(): void {
    this.resizeObs.disconnect();
    this.plot?.destroy();
    this.plot = null;
  }
}

/**
 * Small multiples: one small chart per metric, each on its own scale (a value
 * loss of 40 and a KL of 0.001 do not share an axis). New metrics add a chart.
 */
export class ChartGrid {
  readonly root: HTMLElement;
  private readonly charts = new Map<string, LineChart>();
  private readonly markers: (() => Marker[]) | undefined;

  constructor(opts: { testid: string; title: string; markers?: () => Marker[] }) {
    this.markers = opts.markers;
    this.root = h(
      "div",
      { class: "chart-grid-wrap", "data-testid": opts.testid, "data-points": 0 },
      h("div", { class: "chart-title" }, opts.title),
    );
    this.grid = h("div", { class: "chart-grid" });
    this.root.appendChild(this.grid);
  }

  private readonly grid: HTMLElement;

  /** x and one column per metric key; charts appear in key order. */
  setData(x: number[], columns: [string, (number | null)[]][]): void {
    columns.forEach(([key, ys], i) => {
      let chart = this.charts.get(key);
      if (!chart) {
        const name = key.includes("/") ? key.slice(key.indexOf("/") + 1) : key;
        chart = new LineChart({
          testid: `chart-${key.replace(/[^a-zA-Z0-9]+/g, "-")}`,
          title: name,
          height: 120,
          legend: false,
          markerLabels: false,
          series: [{ label: name, color: PALETTE_LOSSES[i % PALETTE_LOSSES.length]!, width: 1.5 }],
          ...(this.markers ? { markers: this.markers } : {}),
        });
        this.charts.set(key, chart);
        this.grid.appendChild(chart.root);
      }
      chart.setData(x, [ys]);
    });
    this.root.dataset.points = String(x.length);
  }

  destroy(): void {
    for (const c of this.charts.values()) c.destroy();
    this.charts.clear();
  }
}

const PALETTE_LOSSES = ["#ff7b9c", "#f2e36b", "#7ee787", "#5fb3ff", "#c39bff", "#4dd6c9", "#ff9a5c", "#9fb4c8"];

/** Joins per-run tables (each [x, ...ys]) onto the union of their x values, for overlaid runs. */
export function joinTables(tables: [number[], ...(number | null)[][]][]): [number[], ...(number | null)[][]] {
  if (tables.length === 0) return [[]];
  const joined = uPlot.join(tables as uPlot.AlignedData[]);
  return joined as unknown as [number[], ...(number | null)[][]];
}

/**
 * Line widths that keep equal series visible: lines are drawn in order, so an
 * earlier line is drawn wider than the ones after it (2 px for the last, 1.5
 * px more per line before it, at most 6.5): where two lines coincide (two
 * returns at 50, event rates at 1) the earlier one shows as a border around the later.
 */
export function underlayWidth(series: readonly Pick<SeriesDef, "faint" | "width">[], i: number): number {
  const solid = series.map((s, j) => ({ s, j })).filter(({ s }) => !s.faint && s.width === undefined);
  const rank = solid.findIndex(({ j }) => j === i);
  return rank < 0 ? 2 : Math.min(6.5, 2 + 1.5 * (solid.length - 1 - rank));
}

/** Whether a series has fewer than two values to draw a line between. */
function fewValues(ys: ArrayLike<number | null | undefined> | undefined): boolean {
  if (!ys) return false;
  let n = 0;
  for (let i = 0; i < ys.length && n < 2; i++) if (ys[i] !== null && ys[i] !== undefined) n++;
  return n < 2;
}

/** Whether a series' x values hold fewer than two distinct values (nothing to draw a line between). */
function singleX(x: ArrayLike<number>): boolean {
  return x.length > 0 && x[0] === x[x.length - 1];
}
