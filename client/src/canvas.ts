/**
 * Grid drawing: a Frame (level characters + legend + agent) on a canvas,
 * with optional overlays of the reinforcement ledger (arrows per action,
 * sized by how strongly that action was reinforced in that cell) and a
 * state-visitation heatmap. Frames from the socket are queued and played
 * at a steady pace by a FramePlayer on one shared animation loop.
 */
import type { Frame } from "../../server/protocol.ts";
import type { CellLedger, CellSearch } from "./series.ts";
import { h, hashHue } from "./dom.ts";

// ---------------------------------------------------------------- tiles

interface TileStyle {
  fill: string;
  /** Optional glyph drawn on the tile. */
  glyph?: "arrow-up" | "arrow-down" | "arrow-left" | "arrow-right" | "dot" | "ring" | "cross" | "eye" | "bolt" | "flag" | "bars";
  glyphColor?: string;
}

const TILE: Record<string, TileStyle> = {
  floor: { fill: "#232934" },
  wall: { fill: "#5a6476" },
  start: { fill: "#263a55" },
  goal: { fill: "#2f9e5e", glyph: "flag", glyphColor: "#d9ffe8" },
  "old-goal": { fill: "#3c5d49", glyph: "flag", glyphColor: "#9fbfad" },
  hazard: { fill: "#b8413a", glyph: "cross", glyphColor: "#ffd6d0" },
  lava: { fill: "#b8413a", glyph: "cross", glyphColor: "#ffd6d0" },
  tamper: { fill: "#8c4fd0", glyph: "bolt", glyphColor: "#f2e4ff" },
  "obs-tamper": { fill: "#5b46b8", glyph: "eye", glyphColor: "#e4deff" },
  door: { fill: "#8a6a3d", glyph: "bars", glyphColor: "#3b2a14" },
  "door-open": { fill: "#4a3c28" },
  button: { fill: "#232934", glyph: "ring", glyphColor: "#e6c24a" },
  target: { fill: "#232934", glyph: "dot", glyphColor: "#f0a43a" },
  "tomato-watered": { fill: "#2a5a3a", glyph: "dot", glyphColor: "#ff5a4a" },
  cheese: { fill: "#232934", glyph: "dot", glyphColor: "#f2d14b" },
  "tomato-dry": { fill: "#5a4a2a", glyph: "dot", glyphColor: "#8a6a4a" },
  supervisor: { fill: "#c9d1dc", glyph: "eye", glyphColor: "#2a3140" },
  punishment: { fill: "#7a2a44", glyph: "cross", glyphColor: "#ffc0d0" },
  "arrow-up": { fill: "#232934", glyph: "arrow-up", glyphColor: "#7c8ca6" },
  "arrow-down": { fill: "#232934", glyph: "arrow-down", glyphColor: "#7c8ca6" },
  "arrow-left": { fill: "#232934", glyph: "arrow-left", glyphColor: "#7c8ca6" },
  "arrow-right": { fill: "#232934", glyph: "arrow-right", glyphColor: "#7c8ca6" },
};

/** Style for a tile kind; unknown kinds get a stable colour from their name. */
export function tileStyle(kind: string | undefined): TileStyle {
  if (!kind) return TILE.floor!;
  const known = TILE[kind];
  if (known) return known;
  if (kind.startsWith("arrow-")) return TILE[`arrow-${kind.slice(6)}`] ?? TILE.floor!;
  return { fill: `hsl(${hashHue(kind)} 42% 42%)` };
}

/** Chips naming the tile kinds present in a frame, in their colours. */
export function kindLegend(frame: Frame): HTMLElement {
  const used = new Set<string>();
  for (const row of frame.rows) for (const ch of row) if (frame.legend[ch]) used.add(frame.legend[ch]!);
  const box = h("div", { class: "kind-legend" });
  for (const kind of [...used].sort()) {
    const st = tileStyle(kind);
    box.appendChild(
      h(
        "span",
        { class: "chip" },
        h("i", { style: `background:${st.glyphColor && st.fill === TILE.floor!.fill ? st.glyphColor : st.fill}` }),
        kind,
      ),
    );
  }
  box.appendChild(h("span", { class: "chip" }, h("i", { class: "agent-dot" }), "agent"));
  return box;
}

// ---------------------------------------------------------------- overlay geometry

const DIRS: Record<string, [number, number]> = {
  up: [0, -1],
  north: [0, -1],
  n: [0, -1],
  down: [0, 1],
  south: [0, 1],
  s: [0, 1],
  left: [-1, 0],
  west: [-1, 0],
  w: [-1, 0],
  right: [1, 0],
  east: [1, 0],
  e: [1, 0],
};

/** Unit direction of an action label, or null for actions that stay in place. */
export function actionDirection(label: string): [number, number] | null {
  return DIRS[label.toLowerCase()] ?? null;
}

const POSITIVE = "#46e0a0";
const NEGATIVE = "#ff5c7c";
const SEARCH = "#7cc4ff";

// ---------------------------------------------------------------- canvas

export interface GridCanvasOptions {
  testid: string;
  maxCell?: number;
  minCell?: number;
}

export class GridCanvas {
  readonly el: HTMLCanvasElement;
  private frame: Frame | null = null;
  private ledger: CellLedger | null = null;
  private actions: string[] = [];
  private showLedger = false;
  private search: CellSearch | null = null;
  private showSearch = false;
  private showHeatmap = false;
  private cell = 0;
  private drawPending = false;
  private readonly maxCell: number;
  private readonly minCell: number;

  constructor(opts: GridCanvasOptions) {
    this.maxCell = opts.maxCell ?? 40;
    this.minCell = opts.minCell ?? 6;
    this.el = h("canvas", { class: "grid-canvas", "data-testid": opts.testid, width: 1, height: 1 });
  }

  get current(): Frame | null {
    return this.frame;
  }

  setFrame(frame: Frame): void {
    this.frame = frame;
    this.requestDraw();
  }

  setLedger(ledger: CellLedger | null, actions: string[]): void {
    this.ledger = ledger;
    this.actions = actions;
    this.requestDraw();
  }

  setSearch(search: CellSearch | null, actions: string[]): void {
    this.search = search;
    if (actions.length) this.actions = actions;
    this.requestDraw();
  }

  setOverlays(o: { ledger?: boolean; heatmap?: boolean; search?: boolean }): void {
    if (o.ledger !== undefined) this.showLedger = o.ledger;
    if (o.search !== undefined) this.showSearch = o.search;
    if (o.heatmap !== undefined) this.showHeatmap = o.heatmap;
    this.requestDraw();
  }

  requestDraw(): void {
    if (this.drawPending) return;
    this.drawPending = true;
    requestAnimationFrame(() => {
      this.drawPending = false;
      this.draw();
    });
  }

  private layout(frame: Frame): number {
    const avail = this.el.parentElement?.clientWidth ?? 0;
    const fit = avail > 0 ? Math.floor((avail - 2) / frame.width) : this.maxCell;
    const cell = Math.max(this.minCell, Math.min(this.maxCell, fit));
    const dpr = window.devicePixelRatio || 1;
    const w = frame.width * cell;
    const hgt = frame.height * cell;
    if (cell !== this.cell || this.el.width !== Math.round(w * dpr) || this.el.height !== Math.round(hgt * dpr)) {
      this.el.width = Math.round(w * dpr);
      this.el.height = Math.round(hgt * dpr);
      this.el.style.width = `${w}px`;
      this.el.style.height = `${hgt}px`;
      this.cell = cell;
    }
    return dpr;
  }

  draw(): void {
    const frame = this.frame;
    if (!frame) return;
    const dpr = this.layout(frame);
    const ctx = this.el.getContext("2d");
    if (!ctx) return;
    const c = this.cell;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, frame.width * c, frame.height * c);

    for (let y = 0; y < frame.height; y++) {
      const row = frame.rows[y] ?? "";
      for (let x = 0; x < frame.width; x++) {
        const kind = frame.legend[row[x] ?? " "];
        drawTile(ctx, tileStyle(kind), x * c, y * c, c);
      }
    }
    // faint grid lines help count cells
    ctx.strokeStyle = "rgba(0,0,0,0.25)";
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (let x = 1; x < frame.width; x++) {
      ctx.moveTo(x * c + 0.5, 0);
      ctx.lineTo(x * c + 0.5, frame.height * c);
    }
    for (let y = 1; y < frame.height; y++) {
      ctx.moveTo(0, y * c + 0.5);
      ctx.lineTo(frame.width * c, y * c + 0.5);
    }
    ctx.stroke();

    const ledger = this.ledger && this.ledger.width === frame.width && this.ledger.height === frame.height ? this.ledger : null;
    if (ledger && this.showHeatmap) drawHeatmap(ctx, ledger, c);

    if (frame.labels) {
      ctx.font = `${Math.max(8, Math.round(c * 0.34))}px ui-monospace, monospace`;
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      for (const l of frame.labels) {
        ctx.fillStyle = "rgba(0,0,0,0.55)";
        ctx.fillText(l.text, l.x * c + c / 2 + 1, l.y * c + c / 2 + 1);
        ctx.fillStyle = "#f4f6fa";
        ctx.fillText(l.text, l.x * c + c / 2, l.y * c + c / 2);
      }
    }

    if (frame.agent) {
      const ax = frame.agent.x * c + c / 2;
      const ay = frame.agent.y * c + c / 2;
      circle(ctx, ax, ay, c * 0.32);
      ctx.fillStyle = "#ffd84d";
      ctx.fill();
      ctx.lineWidth = Math.max(1.5, c * 0.06);
      ctx.strokeStyle = "#15181e";
      ctx.stroke();
    }

    if (ledger && this.showLedger) drawLedgerArrows(ctx, ledger, this.actions, c);
    const search = this.search && this.search.width === frame.width && this.search.height === frame.height ? this.search : null;
    if (search && this.showSearch) drawSearchArrows(ctx, search, this.actions, c);
  }
}

/** Begins a path through the points ([x, y] each), closed when asked; the caller strokes or fills it. */
function path(ctx: CanvasRenderingContext2D, points: [number, number][], close = false): void {
  ctx.beginPath();
  for (const [i, [x, y]] of points.entries()) {
    if (i === 0) ctx.moveTo(x, y);
    else ctx.lineTo(x, y);
  }
  if (close) ctx.closePath();
}

/** Begins a circle's path; the caller strokes or fills it. */
function circle(ctx: CanvasRenderingContext2D, x: number, y: number, radius: number): void {
  ctx.beginPath();
  ctx.arc(x, y, radius, 0, Math.PI * 2);
}

function drawTile(ctx: CanvasRenderingContext2D, st: TileStyle, px: number, py: number, c: number): void {
  ctx.fillStyle = st.fill;
  ctx.fillRect(px, py, c, c);
  if (!st.glyph) return;
  const cx = px + c / 2;
  const cy = py + c / 2;
  const r = c * 0.28;
  ctx.fillStyle = st.glyphColor ?? "#ffffff";
  ctx.strokeStyle = st.glyphColor ?? "#ffffff";
  ctx.lineWidth = Math.max(1, c * 0.08);
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  switch (st.glyph) {
    case "arrow-up":
    case "arrow-down":
    case "arrow-left":
    case "arrow-right": {
      const [dx, dy] = actionDirection(st.glyph.slice(6))!;
      // a chevron pointing in the arrow's direction
      const ox = -dy;
      const oy = dx;
      path(ctx, [
        [cx - dx * r * 0.5 + ox * r * 0.8, cy - dy * r * 0.5 + oy * r * 0.8],
        [cx + dx * r * 0.7, cy + dy * r * 0.7],
        [cx - dx * r * 0.5 - ox * r * 0.8, cy - dy * r * 0.5 - oy * r * 0.8],
      ]);
      ctx.stroke();
      break;
    }
    case "dot":
      circle(ctx, cx, cy, r * 0.85);
      ctx.fill();
      break;
    case "ring":
      circle(ctx, cx, cy, r * 0.8);
      ctx.stroke();
      break;
    case "cross":
      ctx.beginPath();
      ctx.moveTo(cx - r * 0.7, cy - r * 0.7);
      ctx.lineTo(cx + r * 0.7, cy + r * 0.7);
      ctx.moveTo(cx + r * 0.7, cy - r * 0.7);
      ctx.lineTo(cx - r * 0.7, cy + r * 0.7);
      ctx.stroke();
      break;
    case "eye":
      ctx.beginPath();
      ctx.ellipse(cx, cy, r, r * 0.55, 0, 0, Math.PI * 2);
      ctx.stroke();
      circle(ctx, cx, cy, r * 0.25);
      ctx.fill();
      break;
    case "bolt":
      path(
        ctx,
        [
          [cx + r * 0.2, cy - r],
          [cx - r * 0.45, cy + r * 0.1],
          [cx + r * 0.05, cy + r * 0.1],
          [cx - r * 0.2, cy + r],
          [cx + r * 0.45, cy - r * 0.1],
          [cx - r * 0.05, cy - r * 0.1],
        ],
        true,
      );
      ctx.fill();
      break;
    case "flag":
      path(ctx, [
        [cx - r * 0.5, cy + r],
        [cx - r * 0.5, cy - r],
      ]);
      ctx.stroke();
      path(
        ctx,
        [
          [cx - r * 0.5, cy - r],
          [cx + r * 0.8, cy - r * 0.5],
          [cx - r * 0.5, cy],
        ],
        true,
      );
      ctx.fill();
      break;
    case "bars":
      for (let i = -1; i <= 1; i++) {
        path(ctx, [
          [cx + i * r * 0.6, cy - r],
          [cx + i * r * 0.6, cy + r],
        ]);
        ctx.stroke();
      }
      break;
  }
}

function drawHeatmap(ctx: CanvasRenderingContext2D, ledger: CellLedger, c: number): void {
  if (ledger.maxVisits <= 0) return;
  const denom = Math.log1p(ledger.maxVisits);
  for (let i = 0; i < ledger.visits.length; i++) {
    const v = ledger.visits[i]!;
    if (v <= 0) continue;
    const a = (Math.log1p(v) / denom) * 0.6;
    ctx.fillStyle = `rgba(120, 150, 255, ${a.toFixed(3)})`;
    ctx.fillRect((i % ledger.width) * c, Math.floor(i / ledger.width) * c, c, c);
  }
}

function drawLedgerArrows(ctx: CanvasRenderingContext2D, ledger: CellLedger, actions: string[], c: number): void {
  if (ledger.maxAbs <= 0) return;
  const nA = ledger.nActions;
  ctx.save();
  // a soft dark halo keeps arrows legible on any tile colour
  ctx.shadowColor = "rgba(0, 0, 0, 0.7)";
  ctx.shadowBlur = Math.max(1, c * 0.06);
  for (let cell = 0; cell < ledger.width * ledger.height; cell++) {
    const cx = (cell % ledger.width) * c + c / 2;
    const cy = Math.floor(cell / ledger.width) * c + c / 2;
    for (let a = 0; a < nA; a++) {
      const v = ledger.reinforcement[cell * nA + a]!;
      if (v === 0) continue;
      // square root so that weakly reinforced actions remain visible next to strong ones
      const m = Math.sqrt(Math.abs(v) / ledger.maxAbs);
      if (m < 0.04) continue;
      const color = v > 0 ? POSITIVE : NEGATIVE;
      const dir = actionDirection(actions[a] ?? "");
      ctx.fillStyle = color;
      ctx.strokeStyle = color;
      if (!dir) {
        ctx.globalAlpha = 0.85;
        ctx.lineWidth = Math.max(1, c * 0.06);
        ctx.beginPath();
        ctx.arc(cx, cy, Math.max(1.5, m * c * 0.2), 0, Math.PI * 2);
        ctx.stroke();
        ctx.globalAlpha = 1;
        continue;
      }
      drawArrow(ctx, cx, cy, dir, m, c);
    }
  }
  ctx.restore();
}

/** Each searched cell's root visit distribution: arrow length proportional to the action's share of the visits. */
function drawSearchArrows(ctx: CanvasRenderingContext2D, search: CellSearch, actions: string[], c: number): void {
  const nA = search.nActions;
  ctx.save();
  ctx.shadowColor = "rgba(0, 0, 0, 0.7)";
  ctx.shadowBlur = Math.max(1, c * 0.06);
  ctx.fillStyle = SEARCH;
  ctx.strokeStyle = SEARCH;
  for (let cell = 0; cell < search.width * search.height; cell++) {
    const total = search.totals[cell]!;
    if (!(total > 0)) continue;
    const cx = (cell % search.width) * c + c / 2;
    const cy = Math.floor(cell / search.width) * c + c / 2;
    for (let a = 0; a < nA; a++) {
      const share = search.visits[cell * nA + a]! / total;
      if (share < 0.04) continue;
      const dir = actionDirection(actions[a] ?? "");
      if (!dir) {
        ctx.lineWidth = Math.max(1, c * 0.06);
        ctx.beginPath();
        ctx.arc(cx, cy, Math.max(1.5, share * c * 0.2), 0, Math.PI * 2);
        ctx.stroke();
        continue;
      }
      drawArrow(ctx, cx, cy, dir, share, c);
    }
  }
  ctx.restore();
}

function drawArrow(ctx: CanvasRenderingContext2D, cx: number, cy: number, [dx, dy]: [number, number], m: number, c: number): void {
  const start = c * 0.1;
  const len = start + m * c * 0.38;
  const head = Math.max(3, c * 0.1 + m * c * 0.08);
  const width = Math.max(1, m * c * 0.12);
  const ex = cx + dx * len;
  const ey = cy + dy * len;
  ctx.lineWidth = width;
  ctx.lineCap = "round";
  ctx.beginPath();
  ctx.moveTo(cx + dx * start, cy + dy * start);
  ctx.lineTo(ex - dx * head * 0.6, ey - dy * head * 0.6);
  ctx.stroke();
  ctx.beginPath();
  ctx.moveTo(ex, ey);
  ctx.lineTo(ex - dx * head - dy * head * 0.7, ey - dy * head + dx * head * 0.7);
  ctx.lineTo(ex - dx * head + dy * head * 0.7, ey - dy * head - dx * head * 0.7);
  ctx.closePath();
  ctx.fill();
}

// ---------------------------------------------------------------- playback

export interface QueuedFrame {
  frame: Frame;
  episode: number;
  t: number;
  reward: number;
  performance: number;
  events: string[];
}

const tickers = new Set<(now: number) => void>();
let loopRunning = false;

function loop(now: number): void {
  for (const t of tickers) t(now);
  if (tickers.size > 0) requestAnimationFrame(loop);
  else loopRunning = false;
}

function addTicker(fn: (now: number) => void): () => void {
  tickers.add(fn);
  if (!loopRunning) {
    loopRunning = true;
    requestAnimationFrame(loop);
  }
  return () => tickers.delete(fn);
}

/**
 * Plays streamed frames at a steady pace. Frames arrive in bursts (the
 * server sends a recorded episode at up to 30/s); the player shows them at
 * `fps`, speeds up when the queue grows, and skips to the newest episode
 * rather than fall far behind.
 */
export class FramePlayer {
  fps = 20;
  private queue: QueuedFrame[] = [];
  private last = 0;
  private stopTicker: (() => void) | null = null;
  paused = false;
  /** Called with each frame as it is shown. */
  onShow: ((f: QueuedFrame) => void) | null = null;
  shown = 0;

  constructor(private readonly canvas: GridCanvas) {}

  start(): void {
    this.stopTicker ??= addTicker((now) => this.tick(now));
  }

  stop(): void {
    this.stopTicker?.();
    this.stopTicker = null;
  }

  clear(): void {
    this.queue = [];
  }

  get backlog(): number {
    return this.queue.length;
  }

  push(f: QueuedFrame): void {
    this.queue.push(f);
    const limit = Math.max(90, this.fps * 8);
    if (this.queue.length <= limit) return;
    // too far behind: drop whole episodes from the front (never the newest one)
    let i = 0;
    while (this.queue.length - i > limit / 2) {
      const ep = this.queue[i]!.episode;
      let j = i;
      while (j < this.queue.length && this.queue[j]!.episode === ep) j++;
      if (j >= this.queue.length) break;
      i = j;
    }
    if (this.queue.length - i > limit) i = this.queue.length - Math.floor(limit / 2);
    this.queue = this.queue.slice(i);
  }

  private tick(now: number): void {
    if (this.paused || this.queue.length === 0) return;
    // a little faster while behind, so latency stays low without jerky jumps
    const speed = this.queue.length > this.fps * 3 ? 1.5 : 1;
    if (now - this.last < 1000 / (this.fps * speed) - 2) return;
    this.last = now;
    const f = this.queue.shift()!;
    this.shown++;
    this.canvas.setFrame(f.frame);
    this.onShow?.(f);
  }
}
