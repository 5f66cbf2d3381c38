/** Tiny DOM helpers: enough to build views without a framework. */

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>;

/**
 * Creates an element: `h("button", {class: "primary", "data-testid": "x", onclick: fn}, "Go")`.
 * Attributes starting with "on" are event listeners; boolean true sets an empty attribute.
 */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "value" && "value" in el) {
      (el as HTMLInputElement).value = String(value);
    } else if (value === true) {
      el.setAttribute(key, "");
    } else {
      el.setAttribute(key, String(value));
    }
  }
  append(el, ...children);
  return el;
}

/** A table with one header row (a text per column) and the given body rows. */
export function table(attrs: Attrs, heads: string[], ...rows: Child[]): HTMLTableElement {
  return h("table", attrs, h("thead", {}, h("tr", {}, ...heads.map((t) => h("th", {}, t)))), h("tbody", {}, ...rows));
}

/** The muted small paragraph that explains a panel under its heading. */
export function note(...children: Child[]): HTMLParagraphElement {
  return h("p", { class: "muted small" }, ...children);
}

/** Inline code: a command, a file or a field name in running text. */
export function code(text: string): HTMLElement {
  return h("code", {}, text);
}

export function append(parent: Node, ...children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    parent.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
  }
}

/** Replaces all children of `parent`. */
export function setChildren(parent: Node, ...children: Child[]): void {
  while (parent.firstChild) parent.removeChild(parent.firstChild);
  append(parent, ...children);
}

export function option(value: string, label = value, selected = false): HTMLOptionElement {
  const o = document.createElement("option");
  o.value = value;
  o.textContent = label;
  o.selected = selected;
  return o;
}

/** A number for humans: 1234567 -> "1.23M", 0.000123 -> "1.23e-4". */
export function fmt(x: number | null | undefined, digits = 3): string {
  if (x === null || x === undefined || Number.isNaN(x)) return "–";
  if (!Number.isFinite(x)) return x > 0 ? "∞" : "−∞";
  const a = Math.abs(x);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) {
    if (a >= 1e6 && Number.isInteger(x)) return compact(x);
    return x.toExponential(digits - 1);
  }
  return String(Number(x.toPrecision(digits)));
}

/** Integers with k/M suffixes: 12500 -> "12.5k". */
export function compact(n: number): string {
  const a = Math.abs(n);
  if (a >= 1e9) return `${trim(n / 1e9)}G`;
  if (a >= 1e6) return `${trim(n / 1e6)}M`;
  if (a >= 1e4) return `${trim(n / 1e3)}k`;
  return String(Math.round(n));
}

function trim(x: number): string {
  return String(Number(x.toFixed(x >= 100 ? 0 : x >= 10 ? 1 : 2)));
}

export function ago(ms: number): string {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}m ago`;
  if (s < 86400) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

/** A stable colour for a string (unknown tile kinds, event names, run ids). */
export function hashHue(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return (h >>> 0) % 360;
}

/** Distinct colours for series and runs, readable on the dark background. */
export const PALETTE = ["#5fb3ff", "#ffb454", "#7ee787", "#ff7b9c", "#c39bff", "#4dd6c9", "#f2e36b", "#ff9a5c", "#9fb4c8", "#e08bff"];

export function colorAt(i: number): string {
  return PALETTE[i % PALETTE.length]!;
}

/** Each run's place among all runs by creation time (colours follow it; see runColor). */
const runOrder = new Map<string, number>();

/** Learns the runs' creation order from a full runs list (GET /api/runs, the socket's `runs`). */
export function learnRunOrder(runs: readonly { id: string; createdAt: number }[]): void {
  const sorted = [...runs].sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
  runOrder.clear();
  sorted.forEach((r, i) => runOrder.set(r.id, i));
}

/** Run colours: the palette without its first two entries, which mean return and performance elsewhere. */
const RUN_PALETTE = PALETTE.slice(2);

/**
 * A run's colour, the same in every view whatever else is selected: by its
 * place among all runs in creation order (runs made one after another, like
 * a sweep's seeds, get different colours), or from its id while that order
 * is not known yet.
 */
export function runColor(id: string): string {
  const i = runOrder.get(id);
  return i === undefined ? hslHex(hashHue(id), 0.72, 0.64) : RUN_PALETTE[i % RUN_PALETTE.length]!;
}

/** hsl -> "#rrggbb" (charts add alpha to hex colours). */
function hslHex(hue: number, s: number, l: number): string {
  const k = (n: number) => (n + hue / 30) % 12;
  const a = s * Math.min(l, 1 - l);
  const f = (n: number) => l - a * Math.max(-1, Math.min(k(n) - 3, Math.min(9 - k(n), 1)));
  const hex = (x: number) =>
    Math.round(x * 255)
      .toString(16)
      .padStart(2, "0");
  return `#${hex(f(0))}${hex(f(8))}${hex(f(4))}`;
}

/** Short run id for tables: first 8 characters. */
export function shortId(id: string): string {
  return id.length > 10 ? id.slice(0, 8) : id;
}

/** Button that asks for a second click within 3 s before acting (no blocking dialogs). */
export function confirmButton(label: string, confirmLabel: string, attrs: Attrs, action: () => void): HTMLButtonElement {
  let armed: number | null = null;
  const btn = h("button", attrs, label);
  btn.addEventListener("click", () => {
    if (armed !== null) {
      window.clearTimeout(armed);
      armed = null;
      btn.textContent = label;
      btn.classList.remove("armed");
      action();
      return;
    }
    btn.textContent = confirmLabel;
    btn.classList.add("armed");
    armed = window.setTimeout(() => {
      armed = null;
      btn.textContent = label;
      btn.classList.remove("armed");
    }, 3000);
  });
  return btn;
}

/** Toast-like message in the banner area for a few seconds. */
export function flash(message: string, kind: "info" | "error" = "info", ms = 4000): void {
  const host = document.getElementById("toasts") ?? document.body.appendChild(h("div", { id: "toasts", class: "toasts" }));
  const t = h("div", { class: `toast ${kind}`, "data-testid": `toast-${kind}` }, message);
  host.appendChild(t);
  window.setTimeout(() => t.remove(), ms);
}

/** "... at position 57" -> "... at position 57 (line 3, column 12)" when the browser does not say. */
export function jsonErrorWhere(message: string, text: string): string {
  const m = /position (\d+)/.exec(message);
  if (!m || /line \d+/.test(message)) return message;
  const before = text.slice(0, Number(m[1]));
  const line = before.split("\n").length;
  const column = before.length - before.lastIndexOf("\n");
  return `${message} (line ${line}, column ${column})`;
}
