/** A one-line progress bar on stderr: steps, steps/s, ETA and a caller's note. */
export class Progress {
  private readonly start = performance.now();
  private lastDraw = 0;
  private last = "";

  constructor(
    public total: number,
    private readonly enabled = true,
    private readonly label = "",
  ) {}

  update(done: number, note = ""): void {
    if (!this.enabled) return;
    const now = performance.now();
    if (now - this.lastDraw < 100 && done < this.total) return;
    this.lastDraw = now;
    const secs = (now - this.start) / 1000;
    const rate = done / Math.max(secs, 1e-9);
    const frac = Math.min(1, done / this.total);
    const width = 24;
    const bar = "#".repeat(Math.round(frac * width)).padEnd(width, ".");
    const eta = rate > 0 ? (this.total - done) / rate : Infinity;
    this.last = `${this.label}[${bar}] ${done}/${this.total}  ${rate < 10 ? rate.toFixed(2) : rate.toFixed(0)}/s  eta ${fmt(eta)}  ${note}`;
    if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K${this.last}`);
  }

  done(): void {
    if (!this.enabled) return;
    if (process.stderr.isTTY) process.stderr.write("\n");
    else if (this.last) process.stderr.write(this.last + "\n");
  }
}

function fmt(s: number): string {
  if (!Number.isFinite(s)) return "?";
  if (s < 60) return `${s.toFixed(0)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.round((s % 3600) / 60)).padStart(2, "0")}m`;
}
