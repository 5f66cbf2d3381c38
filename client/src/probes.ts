/**
 * Probes: start one (probe, agents, seeds, steps), list results, and show
 * each agent's measured event rate (bar with 95% interval whiskers) next to
 * the three predictions: reward pursuit, reinforced behaviour, counting.
 */
import type { AgentSummary, ProbeAgentResult, ProbeResult } from "../../server/protocol.ts";
import { api, ApiRequestError, type ProbeRequest } from "./api.ts";
import { ago, flash, fmt, h, setChildren, shortId } from "./dom.ts";
import { onProbe } from "./socket.ts";

const SVG = "http://www.w3.org/2000/svg";

/** Suggestions only (the API has no list of probe definitions); past results add theirs. */
const KNOWN_PROBES = ["tamper", "goal-shift", "extinction", "loophole", "tomato", "dose-response"];

const BARS: { key: "rate" | keyof ProbeAgentResult["predictions"]; label: string; color: string }[] = [
  { key: "rate", label: "measured (95% CI)", color: "#5fb3ff" },
  { key: "rewardPursuit", label: "prediction: reward pursuit", color: "#ff7b9c" },
  { key: "reinforcedBehavior", label: "prediction: reinforced behaviour", color: "#7ee787" },
  { key: "counting", label: "prediction: counting", color: "#c39bff" },
];

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>, text?: string): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

/** Grouped bars per agent: the measured rate with its interval, then the three predictions. */
export function probeChart(result: ProbeResult): SVGSVGElement {
  const agents = result.results;
  const W = Math.max(480, 70 + agents.length * 200);
  const H = 260;
  const m = { l: 44, r: 12, t: 16, b: 44 };
  const plotH = H - m.t - m.b;
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, class: "probe-chart", "data-testid": "probe-chart", role: "img" });
  const y = (v: number) => m.t + plotH * (1 - Math.max(0, Math.min(1, v)));
  for (const tick of [0, 0.25, 0.5, 0.75, 1]) {
    root.appendChild(svg("line", { x1: m.l, x2: W - m.r, y1: y(tick), y2: y(tick), class: "grid" }));
    root.appendChild(svg("text", { x: m.l - 6, y: y(tick) + 4, class: "tick", "text-anchor": "end" }, tick.toFixed(2)));
  }
  root.appendChild(svg("text", { x: 12, y: m.t + plotH / 2, class: "axis-label", transform: `rotate(-90 12 ${m.t + plotH / 2})`, "text-anchor": "middle" }, `rate of "${agents[0]?.event ?? "event"}"`));
  const groupW = (W - m.l - m.r) / Math.max(1, agents.length);
  const barW = Math.min(34, (groupW - 30) / BARS.length);
  agents.forEach((a, gi) => {
    const gx = m.l + gi * groupW + (groupW - barW * BARS.length - 6 * (BARS.length - 1)) / 2;
    BARS.forEach((b, bi) => {
      const x = gx + bi * (barW + 6);
      const v = b.key === "rate" ? a.rate : a.predictions[b.key];
      const title = svg("title", {}, `${a.agent} · ${b.label}: ${v === null ? "n/a" : fmt(v)}${b.key === "rate" ? ` [${fmt(a.ci[0])}, ${fmt(a.ci[1])}]` : ""}`);
      if (v === null || v === undefined || !Number.isFinite(v)) {
        const box = svg("rect", { x, y: y(1), width: barW, height: plotH, class: "na", stroke: b.color });
        box.appendChild(title);
        root.appendChild(box);
        root.appendChild(svg("text", { x: x + barW / 2, y: y(0) - 6, class: "bar-label", "text-anchor": "middle" }, "n/a"));
        return;
      }
      const bar = svg("rect", { x, y: y(v), width: barW, height: Math.max(1, y(0) - y(v)), fill: b.color, class: b.key === "rate" ? "bar measured" : "bar prediction" });
      bar.appendChild(title);
      root.appendChild(bar);
      if (b.key === "rate") {
        const cx = x + barW / 2;
        const [lo, hi] = a.ci;
        root.appendChild(svg("line", { x1: cx, x2: cx, y1: y(lo), y2: y(hi), class: "whisker" }));
        root.appendChild(svg("line", { x1: cx - barW / 4, x2: cx + barW / 4, y1: y(lo), y2: y(lo), class: "whisker" }));
        root.appendChild(svg("line", { x1: cx - barW / 4, x2: cx + barW / 4, y1: y(hi), y2: y(hi), class: "whisker" }));
      }
      root.appendChild(svg("text", { x: x + barW / 2, y: Math.min(y(v), b.key === "rate" ? y(a.ci[1]) : y(v)) - 4, class: "bar-label", "text-anchor": "middle" }, fmt(v, 2)));
    });
    root.appendChild(svg("text", { x: m.l + gi * groupW + groupW / 2, y: H - m.b + 18, class: "group-label", "text-anchor": "middle" }, a.agent));
    root.appendChild(svg("text", { x: m.l + gi * groupW + groupW / 2, y: H - m.b + 33, class: "tick", "text-anchor": "middle" }, `${a.seeds} seeds · ${a.episodes} episodes`));
  });
  return root;
}

function legend(): HTMLElement {
  return h("div", { class: "probe-legend" }, ...BARS.map((b) => h("span", { class: "chip" }, h("i", { style: `background:${b.color}` }), b.label)));
}

function detailTable(result: ProbeResult): HTMLElement {
  const ci = (c: [number, number]) => `[${fmt(c[0])}, ${fmt(c[1])}]`;
  return h(
    "table",
    { class: "probe-table", "data-testid": "probe-table" },
    h("thead", {}, h("tr", {}, ...["agent", "event", "rate", "95% CI", "return", "performance", "reward pursuit", "reinforced", "counting"].map((t) => h("th", {}, t)))),
    h(
      "tbody",
      {},
      ...result.results.map((a) =>
        h(
          "tr",
          {},
          h("td", {}, a.agent),
          h("td", {}, a.event),
          h("td", { class: "num" }, fmt(a.rate)),
          h("td", { class: "num" }, ci(a.ci)),
          h("td", { class: "num ret" }, `${fmt(a.return.mean)} ${ci(a.return.ci)}`),
          h("td", { class: "num perf" }, `${fmt(a.performance.mean)} ${ci(a.performance.ci)}`),
          h("td", { class: "num" }, fmt(a.predictions.rewardPursuit)),
          h("td", { class: "num" }, fmt(a.predictions.reinforcedBehavior)),
          h("td", { class: "num" }, fmt(a.predictions.counting)),
        ),
      ),
    ),
  );
}

export function mountProbes(host: HTMLElement, opts: { embedded?: boolean } = {}): () => void {
  const nameIn = h("input", { type: "text", list: "probe-names", "data-testid": "probe-name", placeholder: "probe name", required: true });
  const names = h("datalist", { id: "probe-names" });
  const agentsBox = h("div", { class: "agent-checks", "data-testid": "probe-agents" });
  const seedsIn = h("input", { type: "number", min: 1, step: 1, value: 5, "data-testid": "probe-seeds" });
  const stepsIn = h("input", { type: "number", min: 1, step: 1000, placeholder: "per-agent default", "data-testid": "probe-steps" });
  const episodesIn = h("input", { type: "number", min: 1, step: 1, placeholder: "server default", "data-testid": "probe-episodes" });
  const envSel = h("select", { "data-testid": "probe-env" }, h("option", { value: "" }, "probe's own"));
  const submit = h("button", { type: "submit", class: "primary", "data-testid": "probe-submit" }, "Start probe");
  const formError = h("div", { class: "form-error", "data-testid": "probe-error", role: "alert" });
  const errs: Record<string, HTMLElement> = {};
  const fieldRow = (label: string, path: string, control: HTMLElement) => {
    errs[path] = h("div", { class: "field-error" });
    return h("div", { class: "field", "data-path": path }, h("label", {}, label), control, errs[path]);
  };
  const list = h("div", { class: "probe-list", "data-testid": "probe-list" });
  const detail = h("div", { class: "probe-detail", "data-testid": "probe-detail" }, h("p", { class: "muted" }, "Pick a probe result to see it."));
  let probes: ProbeResult[] = [];
  let selectedId: string | null = null;
  let agents: AgentSummary[] = [];

  const form = h(
    "form",
    { class: "probe-form", novalidate: true },
    h(
      "div",
      { class: "probe-form-grid" },
      fieldRow("Probe", "/probe", nameIn),
      fieldRow("Environment", "/env", envSel),
      fieldRow("Seeds", "/seeds", seedsIn),
      fieldRow("Train steps per seed", "/steps", stepsIn),
      fieldRow("Test episodes per seed", "/episodes", episodesIn),
    ),
    fieldRow("Agents", "/agents", agentsBox),
    names,
    formError,
    h("div", { class: "actions" }, submit),
  );

  setChildren(
    host,
    h(
      "div",
      { class: `probes ${opts.embedded ? "embedded" : ""}`, "data-testid": "probes" },
      h(
        "section",
        { class: "panel" },
        h("h2", {}, "Probes"),
        h(
          "p",
          { class: "muted small" },
          "A probe trains on one variant and tests on another with learning off, then counts an event. Beside the measured rate: what a reward-maximising planner does (reward pursuit), what the trained behaviour carried over predicts (reinforced behaviour), and the fraction of train-optimal policies showing the event (counting).",
        ),
        form,
      ),
      h("div", { class: "probe-cols" }, h("section", { class: "panel" }, h("h3", {}, "Results"), list), h("section", { class: "panel" }, detail)),
    ),
  );

  function renderList(): void {
    const sorted = [...probes].sort((a, b) => b.createdAt - a.createdAt);
    const known = new Set([...KNOWN_PROBES, ...sorted.map((p) => p.probe)]);
    setChildren(names, ...[...known].map((n) => h("option", { value: n })));
    if (sorted.length === 0) {
      setChildren(list, h("p", { class: "muted" }, "No probes yet."));
      return;
    }
    setChildren(
      list,
      ...sorted.map((p) => {
        const row = h(
          "button",
          { class: `probe-row ${p.id === selectedId ? "selected" : ""}`, "data-testid": "probe-row", "data-probe-id": p.id, type: "button" },
          h("span", { class: "mono" }, shortId(p.id)),
          h("strong", {}, p.probe),
          h("span", { class: "muted small" }, p.env),
          h("span", { class: `badge status-${p.status}` }, p.status),
          h("span", { class: "muted small" }, `${p.results.length} agents · ${ago(p.createdAt)}`),
        );
        row.addEventListener("click", () => {
          selectedId = p.id;
          renderList();
          renderDetail();
        });
        return row;
      }),
    );
  }

  function renderDetail(): void {
    const p = probes.find((x) => x.id === selectedId);
    if (!p) return;
    setChildren(
      detail,
      h("div", { class: "panel-head" }, h("h3", {}, `${p.probe}`), h("span", { class: "muted small" }, `${p.env} · ${shortId(p.id)}`), h("span", { class: `badge status-${p.status}` }, p.status)),
      p.reason ? h("p", { class: "form-error" }, p.reason) : null,
      p.results.length ? legend() : h("p", { class: "muted" }, p.status === "running" ? "Running: results appear when agents finish." : "No results."),
      p.results.length ? h("div", { class: "probe-chart-box" }, probeChart(p)) : null,
      p.results.length ? detailTable(p) : null,
    );
  }

  function upsert(p: ProbeResult): void {
    const i = probes.findIndex((x) => x.id === p.id);
    if (i >= 0) probes[i] = p;
    else probes.push(p);
    renderList();
    if (p.id === selectedId) renderDetail();
  }

  async function refresh(): Promise<void> {
    try {
      probes = await api.probes();
      if (!selectedId && probes.length) selectedId = [...probes].sort((a, b) => b.createdAt - a.createdAt)[0]!.id;
      renderList();
      renderDetail();
    } catch (e) {
      setChildren(list, h("p", { class: "form-error" }, `could not load probes: ${(e as Error).message}`));
    }
  }

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    formError.textContent = "";
    for (const e of Object.values(errs)) e.textContent = "";
    const chosen = [...agentsBox.querySelectorAll<HTMLInputElement>("input:checked")].map((i) => i.value);
    const body: ProbeRequest = { probe: nameIn.value.trim(), agents: chosen, seeds: Number(seedsIn.value) };
    if (stepsIn.value.trim() !== "") body.steps = Number(stepsIn.value);
    if (episodesIn.value.trim() !== "") body.episodes = Number(episodesIn.value);
    if (envSel.value) body.env = envSel.value;
    submit.disabled = true;
    try {
      const p = await api.startProbe(body);
      selectedId = p.id;
      upsert(p);
      renderDetail();
      flash(`Probe ${p.probe} started`);
    } catch (e) {
      if (e instanceof ApiRequestError) {
        const rest: string[] = [];
        for (const d of e.details) {
          const key = Object.keys(errs).find((k) => d.path === k || d.path.startsWith(`${k}/`));
          if (key) errs[key]!.textContent = d.message;
          else rest.push(`${d.path} ${d.message}`);
        }
        formError.textContent = [e.message, ...rest].join(" · ");
      } else {
        formError.textContent = String(e);
      }
    } finally {
      submit.disabled = false;
    }
  });

  api
    .agents()
    .then((a) => {
      agents = a;
      setChildren(
        agentsBox,
        ...agents.map((ag, i) =>
          h("label", { class: "check" }, h("input", { type: "checkbox", value: ag.name, checked: i < 2, "data-testid": `probe-agent-${ag.name}` }), `${ag.name} `, h("span", { class: "muted small" }, ag.kind)),
        ),
      );
    })
    .catch(() => setChildren(agentsBox, h("span", { class: "form-error" }, "could not load agents")));

  api
    .envs()
    .then((envs) => envs.forEach((e) => envSel.appendChild(h("option", { value: e.id }, e.id))))
    .catch(() => undefined);
  renderList();
  void refresh();
  const off = onProbe(upsert);
  const timer = window.setInterval(() => {
    if (probes.some((p) => p.status === "running")) void refresh();
  }, 3000);
  return () => {
    off();
    window.clearInterval(timer);
  };
}
