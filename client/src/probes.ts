/**
 * Probes: start one (probe picked from the server's definitions: built-in,
 * declared by a level file, or the generic shift probe with its train and
 * test variants and event; agents, seeds, steps), list results, and show each
 * agent's measured event rate (bar with its 95% interval over seeds, a dot per
 * seed) next to the three predictions: reward pursuit, reinforced behaviour,
 * counting (drawn by probechart.ts), and the per-seed table.
 */
import type { AgentSummary, ProbeResult } from "../../server/protocol.ts";
import { api, ApiRequestError, type ProbeDefinition, type ProbeRequest } from "./api.ts";
import { ago, flash, h, option, setChildren, shortId, note } from "./dom.ts";
import { mazeAnalysisBlock } from "./probemaze.ts";
import { probeResultBlock } from "./probechart.ts";
import { probeProgressBlock, progressSummary } from "./probeprogress.ts";
import { onProbe } from "./socket.ts";

/** Fallback names when the server has no definitions endpoint; past results add theirs. */
const KNOWN_PROBES = ["tamper", "goal-shift", "extinction", "loophole", "tomato", "dose-response"];

/** What a probe does, from its definition: envs, variants, reward at test, the event it counts. */
export function definitionInfo(d: ProbeDefinition): HTMLElement {
  const facts: (string | HTMLElement)[] = [
    h("span", {}, "env ", h("strong", {}, d.env)),
    d.needs?.length
      ? h("span", {}, "choose ", h("strong", {}, d.needs.join(", ")))
      : h("span", {}, "train ", h("strong", {}, d.train), " → test ", h("strong", {}, (d.tests ?? [d.test]).join(" and "))),
    d.declaredBy ? h("span", { class: "muted" }, `declared by the level file of ${d.declaredBy}`) : "",
    d.testReward && d.testReward !== "keep" ? h("span", {}, "test reward ", h("strong", {}, d.testReward)) : "",
    h("span", {}, "event ", h("strong", { class: "event-name" }, d.event)),
    d.arms.length ? h("span", {}, "arms ", h("strong", {}, d.arms.join(", "))) : "",
    h(
      "span",
      { class: d.generic ? "generic" : "muted" },
      d.generic ? "generic: also runs on another environment" : "specific to its environment",
    ),
  ];
  return h(
    "div",
    { class: "probe-info", "data-testid": "probe-info" },
    h("p", { class: "probe-desc" }, d.description),
    h("div", { class: "probe-facts small" }, ...facts.filter((f) => f !== "")),
  );
}

export function mountProbes(host: HTMLElement, opts: { embedded?: boolean } = {}): () => void {
  const nameIn = h("select", { "data-testid": "probe-name", required: true }, option("", "loading…"));
  const info = h("div", { class: "probe-info-host" });
  const agentsBox = h("div", { class: "agent-checks", "data-testid": "probe-agents" });
  const seedsIn = h("input", { type: "number", min: 1, step: 1, value: 5, "data-testid": "probe-seeds" });
  const stepsIn = h("input", { type: "number", min: 1, step: 1000, placeholder: "per-agent default", "data-testid": "probe-steps" });
  const episodesIn = h("input", { type: "number", min: 1, step: 1, placeholder: "server default", "data-testid": "probe-episodes" });
  const ownEnv = option("", "probe's own");
  const envSel = h("select", { "data-testid": "probe-env", title: "only generic probes run on another environment" }, ownEnv);
  // the shift probe's variants and event, offered from the chosen environment
  const trainSel = h("select", { "data-testid": "probe-train" });
  const testSel = h("select", { "data-testid": "probe-test" });
  const eventSel = h("select", { "data-testid": "probe-event" });
  const shiftRow = h(
    "div",
    { class: "probe-form-grid probe-shift", hidden: true },
    h("div", { class: "field", "data-path": "/train" }, h("label", {}, "Train variant"), trainSel),
    h("div", { class: "field", "data-path": "/test" }, h("label", {}, "Test variant"), testSel),
    h("div", { class: "field", "data-path": "/event" }, h("label", {}, "Event"), eventSel),
  );
  const configsIn = h("textarea", {
    class: "mono",
    rows: 2,
    placeholder:
      '{"planner": {"model": "learned"}, "planner:neural": {"model": "neural"}}  (optional: configs by agent, defaults otherwise; a key agent:tag adds a row for another config of that agent)',
    "data-testid": "probe-configs",
  });
  const submit = h("button", { type: "submit", class: "primary", "data-testid": "probe-submit" }, "Start probe");
  const formError = h("div", { class: "form-error", "data-testid": "probe-error", role: "alert" });
  const errs: Record<string, HTMLElement> = {};
  const fieldRow = (label: string, path: string, control: HTMLElement) => {
    errs[path] = h("div", { class: "field-error" });
    return h("div", { class: "field", "data-path": path }, h("label", {}, label), control, errs[path]);
  };
  const list = h("div", { class: "probe-list", "data-testid": "probe-list" });
  const detail = h(
    "div",
    { class: "probe-detail", "data-testid": "probe-detail" },
    h("p", { class: "muted" }, "Pick a probe result to see it."),
  );
  let probes: ProbeResult[] = [];
  let selectedId: string | null = null;
  let agents: AgentSummary[] = [];
  let definitions: ProbeDefinition[] = [];

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
    shiftRow,
    info,
    fieldRow("Agents", "/agents", agentsBox),
    fieldRow("Agent configs (JSON)", "/configs", configsIn),
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
        note(
          "A probe trains on one variant and tests on another with learning off, then counts an event. Beside the measured rate: what a reward-maximising planner does (reward pursuit), what the trained behaviour carried over predicts (reinforced behaviour), and the fraction of train-optimal policies showing the event (counting).",
        ),
        form,
      ),
      h(
        "div",
        { class: "probe-cols" },
        h("section", { class: "panel" }, h("h3", {}, "Results"), list),
        h("section", { class: "panel" }, detail),
      ),
    ),
  );

  function renderList(): void {
    const sorted = [...probes].sort((a, b) => b.createdAt - a.createdAt);
    if (definitions.length === 0 && nameIn.dataset.fallback === "true") {
      // no definitions from the server: offer the known names and past results' names
      const prev = nameIn.value;
      const known = new Set([...KNOWN_PROBES, ...sorted.map((p) => p.probe)]);
      setChildren(nameIn, ...[...known].map((n) => option(n)));
      if (known.has(prev)) nameIn.value = prev;
    }
    if (sorted.length === 0) {
      setChildren(list, h("p", { class: "muted" }, "No probes yet."));
      return;
    }
    setChildren(
      list,
      ...sorted.map((p) => {
        const row = h(
          "button",
          {
            class: `probe-row ${p.id === selectedId ? "selected" : ""}`,
            "data-testid": "probe-row",
            "data-probe-id": p.id,
            type: "button",
          },
          h("span", { class: "mono" }, shortId(p.id)),
          h("strong", {}, p.probe),
          h("span", { class: "muted small" }, p.env),
          h("span", { class: `badge status-${p.status}` }, p.status),
          h(
            "span",
            { class: "muted small" },
            p.progress ? `${progressSummary(p.progress)} · ${ago(p.createdAt)}` : `${p.results.length} agents · ${ago(p.createdAt)}`,
          ),
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
      h(
        "div",
        { class: "panel-head" },
        h("h3", {}, `${p.probe}`),
        h("span", { class: "muted small" }, `${p.env} · ${shortId(p.id)}`),
        h("span", { class: `badge status-${p.status}` }, p.status),
        probeActions(p),
      ),
      p.reason ? h("p", { class: "form-error" }, p.reason) : null,
      p.progress && p.status === "running" ? probeProgressBlock(p.progress) : null,
      ...(p.results.length
        ? probeResultBlock(p.results, {}, p.chance ?? [], p.id)
        : [h("p", { class: "muted" }, p.status === "running" ? "Running: results appear when agents finish." : "No results.")]),
      p.maze ? mazeAnalysisBlock(p.maze) : null,
    );
  }

  /** Stop (a running probe: its threads are terminated) or Delete (any probe), with a confirm for delete. */
  function probeActions(p: ProbeResult): HTMLElement {
    const act = (label: string, testid: string, run: () => Promise<unknown>) => {
      const b = h("button", { type: "button", class: "small", "data-testid": testid }, label);
      b.addEventListener("click", async () => {
        b.disabled = true;
        try {
          await run();
        } catch (e) {
          flash(`${label} failed: ${(e as Error).message}`);
        } finally {
          b.disabled = false;
        }
      });
      return b;
    };
    const stop = act("Stop", "probe-stop", async () => upsert(await api.stopProbe(p.id)));
    const del = act("Delete", "probe-delete", async () => {
      if (!window.confirm(`Delete probe ${p.probe} (${shortId(p.id)})?`)) return;
      await api.removeProbe(p.id);
      probes = probes.filter((x) => x.id !== p.id);
      selectedId = null;
      setChildren(detail, h("p", { class: "muted" }, "Pick a probe result to see it."));
      renderList();
    });
    return h("span", { class: "actions" }, p.status === "running" ? stop : null, del);
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

  function showDefinition(): void {
    const d = definitions.find((x) => x.name === nameIn.value);
    setChildren(info, d ? definitionInfo(d) : null);
    ownEnv.textContent = d?.env ? `probe's own (${d.env})` : d ? "pick one" : "probe's own";
    // only generic probes take another environment
    envSel.disabled = d !== undefined && !d.generic;
    if (envSel.disabled) envSel.value = "";
    shiftRow.hidden = !d?.needs?.length;
    if (!shiftRow.hidden) void showShiftChoices();
  }
  nameIn.addEventListener("change", showDefinition);

  /** The chosen environment's variants and events, for the shift probe. */
  async function showShiftChoices(): Promise<void> {
    const env = envSel.value ? await api.env(envSel.value).catch(() => undefined) : undefined;
    const variants = env?.variants ?? [];
    const events = env?.events ?? [];
    setChildren(trainSel, ...(variants.length ? variants.map((v) => option(v)) : [option("", "pick an environment")]));
    setChildren(testSel, ...(variants.length ? variants.map((v) => option(v)) : [option("", "pick an environment")]));
    if (variants.length > 1) testSel.value = variants.includes("test") ? "test" : variants[1]!;
    if (variants.includes("train")) trainSel.value = "train";
    setChildren(eventSel, ...(events.length ? events.map((e) => option(e)) : [option("", "pick an environment")]));
  }
  envSel.addEventListener("change", () => {
    if (!shiftRow.hidden) void showShiftChoices();
  });

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    formError.textContent = "";
    for (const e of Object.values(errs)) e.textContent = "";
    const chosen = [...agentsBox.querySelectorAll<HTMLInputElement>("input:checked")].map((i) => i.value);
    const body: ProbeRequest = { probe: nameIn.value.trim(), agents: chosen, seeds: Number(seedsIn.value) };
    if (stepsIn.value.trim() !== "") body.steps = Number(stepsIn.value);
    if (episodesIn.value.trim() !== "") body.episodes = Number(episodesIn.value);
    if (envSel.value) body.env = envSel.value;
    if (!shiftRow.hidden) {
      if (trainSel.value) body.train = trainSel.value;
      if (testSel.value) body.test = testSel.value;
      if (eventSel.value) body.event = eventSel.value;
    }
    if (configsIn.value.trim() !== "") {
      try {
        body.configs = JSON.parse(configsIn.value) as Record<string, Record<string, unknown>>;
        // a key agent:tag is another configuration of that agent: it runs as an entry of its own
        for (const key of Object.keys(body.configs ?? {})) if (key.includes(":") && !chosen.includes(key)) chosen.push(key);
      } catch (e) {
        errs["/configs"]!.textContent = `not JSON: ${(e as Error).message}`;
        return;
      }
    }
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
          h(
            "label",
            { class: "check" },
            h("input", { type: "checkbox", value: ag.name, checked: i < 2, "data-testid": `probe-agent-${ag.name}` }),
            `${ag.name} `,
            h("span", { class: "muted small" }, ag.kind),
          ),
        ),
      );
    })
    .catch(() => setChildren(agentsBox, h("span", { class: "form-error" }, "could not load agents")));

  api
    .probeDefinitions()
    .then((defs) => {
      definitions = defs;
      setChildren(nameIn, ...defs.map((d) => option(d.name)));
      showDefinition();
    })
    .catch(() => {
      nameIn.dataset.fallback = "true";
      renderList();
    });

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
