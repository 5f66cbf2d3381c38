/**
 * The run launcher: environment (with its first frame and doc), variant,
 * agent, seed, step budget, and the agent's config form generated from its
 * JSON Schema. A 400's field details are shown beside the matching fields.
 * A level (JSON, data only) can be uploaded from here; the new environment
 * is then selected with its preview.
 */
import type { AgentSummary, EnvSummary } from "../../server/protocol.ts";
import { api, ApiRequestError, type RunRequest } from "./api.ts";
import { GridCanvas, kindLegend } from "./canvas.ts";
import { compact, flash, h, jsonErrorWhere, option, setChildren, note, code } from "./dom.ts";
import { SchemaForm, type ObjectSchema } from "./schemaform.ts";

const STORAGE_KEY = "rewardlab.launcher";

interface Remembered {
  env?: string;
  variant?: string;
  agent?: string;
  seed?: number;
  steps?: number;
}

function remembered(): Remembered {
  try {
    return JSON.parse(localStorage.getItem(STORAGE_KEY) ?? "{}") as Remembered;
  } catch {
    return {};
  }
}

/** A labelled input with an error line under it, addressed by a request-body path. */
function field(label: string, path: string, control: HTMLElement, hint?: string): { row: HTMLElement; error: HTMLElement } {
  const error = h("div", { class: "field-error", "data-testid": `${control.dataset.testid}-error`, role: "alert" });
  const row = h(
    "div",
    { class: "field", "data-path": path },
    h("label", { for: control.id }, label, hint ? h("span", { class: "hint" }, hint) : null),
    control,
    error,
  );
  return { row, error };
}

/** The server's limit for a level upload (POST /api/levels answers 413 above it). */
const LEVEL_LIMIT = 64 * 1024;

/** A small level to start from (the format: docs/environments.md, schema: GET /api/levels/schema). */
const EXAMPLE_LEVEL = {
  id: "MyLevel-v0",
  description: "A corridor with a hazard beside the goal.",
  legend: {
    "#": "wall",
    " ": "floor",
    A: "start",
    G: { kind: "goal", reward: 1, performance: 1 },
    x: { kind: "hazard", reward: -1, performance: -1, terminates: true },
  },
  stepReward: -0.01,
  maxEpisodeSteps: 40,
  variants: [
    { name: "train", art: ["#######", "#A   G#", "#######"] },
    { name: "test", art: ["#######", "#A  xG#", "#######"] },
  ],
};

export function mountLauncher(host: HTMLElement): () => void {
  const envSel = h("select", { id: "launcher-env", "data-testid": "launcher-env" });
  const variantSel = h("select", { id: "launcher-variant", "data-testid": "launcher-variant" });
  const agentSel = h("select", { id: "launcher-agent", "data-testid": "launcher-agent" });
  const seedIn = h("input", { id: "launcher-seed", "data-testid": "launcher-seed", type: "number", min: 0, step: 1, value: 0 });
  const stepsIn = h("input", { id: "launcher-steps", "data-testid": "launcher-steps", type: "number", min: 1, step: 1000, value: 50000 });
  const evalIn = h("input", {
    id: "launcher-eval",
    "data-testid": "launcher-eval",
    type: "number",
    min: 0,
    step: 1,
    placeholder: "server default",
  });
  const rewardSel = h(
    "select",
    { id: "launcher-reward", "data-testid": "launcher-reward" },
    option("keep"),
    option("removed"),
    option("negated"),
  );
  const labelIn = h("input", { id: "launcher-label", "data-testid": "launcher-label", type: "text", placeholder: "optional" });
  const openAfter = h("input", { id: "launcher-open", "data-testid": "launcher-open", type: "checkbox", checked: true });
  const submit = h("button", { type: "submit", class: "primary", "data-testid": "launcher-submit" }, "Launch run");
  const resetBtn = h("button", { type: "button", "data-testid": "launcher-reset" }, "Defaults");
  const generalError = h("div", { class: "form-error", "data-testid": "launcher-error", role: "alert" });

  const preview = new GridCanvas({ testid: "launcher-preview", maxCell: 32, minCell: 6 });
  const previewBox = h("div", { class: "preview" }, preview.el);
  const legendBox = h("div", {});
  const envInfo = h("div", { class: "env-info" });
  const agentInfo = h("div", { class: "agent-info muted small" });
  const agentFormHost = h("div", { class: "config-host" });

  const levelFile = h("input", { type: "file", accept: ".json,application/json", "data-testid": "level-file" });
  const levelText = h("textarea", {
    rows: 9,
    spellcheck: false,
    "data-testid": "level-json",
    placeholder: "choose a file, or paste a level's JSON here",
  });
  const levelExample = h("button", { type: "button", class: "small", "data-testid": "level-example" }, "Example");
  const levelUpload = h("button", { type: "button", class: "primary", "data-testid": "level-upload" }, "Upload level");
  const levelError = h("div", { class: "form-error", "data-testid": "level-error", role: "alert" });
  const levelStatus = h("div", { class: "level-status small", "data-testid": "level-status", role: "status" });
  const uploadBox = h(
    "details",
    { class: "config upload", "data-testid": "level-panel" },
    h("summary", {}, "Upload a level"),
    note(
      "A level is data: an id like ",
      code("Name-v0"),
      ", a legend of characters, and variants drawn as text art (docs/environments.md; ",
      h("a", { href: "/api/levels/schema", target: "_blank", rel: "noopener" }, "JSON Schema"),
      "). At most 64 KiB; uploading the same id again replaces your earlier upload.",
    ),
    h("div", { class: "upload-row" }, levelFile, levelExample),
    levelText,
    levelError,
    h("div", { class: "actions" }, levelStatus, levelUpload),
  );
  const envFormHost = h("div", { class: "config-host" });

  const top: Record<string, { row: HTMLElement; error: HTMLElement }> = {
    "/env": field("Environment", "/env", envSel),
    "/variant": field("Variant", "/variant", variantSel),
    "/agent": field("Agent", "/agent", agentSel),
    "/seed": field("Seed", "/seed", seedIn, "integer ≥ 0"),
    "/steps": field("Env steps", "/steps", stepsIn, "budget"),
    "/evalEpisodes": field("Eval episodes", "/evalEpisodes", evalIn, "learning off, at the end"),
    "/reward": field("Reward wrapper", "/reward", rewardSel),
    "/label": field("Label", "/label", labelIn),
  };

  const requestPreview = h("pre", { class: "mono small", "data-testid": "launcher-request" });
  let envs: EnvSummary[] = [];
  let agents: AgentSummary[] = [];
  let agentForm: SchemaForm | null = null;
  let envForm: SchemaForm | null = null;
  const memory = remembered();

  const form = h(
    "form",
    { class: "launcher", "data-testid": "launcher", novalidate: true },
    h(
      "div",
      { class: "launcher-grid" },
      h("div", { class: "col" }, top["/env"]!.row, top["/variant"]!.row, previewBox, legendBox, envInfo, uploadBox),
      h(
        "div",
        { class: "col" },
        top["/agent"]!.row,
        agentInfo,
        h("div", { class: "row2" }, top["/seed"]!.row, top["/steps"]!.row),
        h("details", { class: "config", open: true }, h("summary", {}, "Agent config"), agentFormHost),
        h(
          "details",
          { class: "config" },
          h("summary", {}, "Advanced"),
          envFormHost,
          h("div", { class: "row2" }, top["/evalEpisodes"]!.row, top["/reward"]!.row),
          top["/label"]!.row,
        ),
      ),
    ),
    generalError,
    h(
      "details",
      { class: "request-preview" },
      h("summary", {}, "What will be sent"),
      note("Only the settings you changed; the server fills every other default (PPO's totalSteps from the env steps)."),
      requestPreview,
    ),
    h("div", { class: "actions" }, h("label", { class: "check" }, openAfter, "open the run after launch"), resetBtn, submit),
  );
  form.addEventListener("input", syncPreview);
  form.addEventListener("change", syncPreview);
  setChildren(host, h("h2", {}, "New run"), form);

  function currentEnv(): EnvSummary | undefined {
    return envs.find((e) => e.id === envSel.value);
  }

  function showEnv(): void {
    const env = currentEnv();
    if (!env) return;
    const prev = variantSel.value;
    setChildren(variantSel, ...env.variants.map((v) => option(v)));
    if (env.variants.includes(prev)) variantSel.value = prev;
    else if (memory.env === env.id && memory.variant && env.variants.includes(memory.variant)) variantSel.value = memory.variant;
    setChildren(
      envInfo,
      h("p", { class: "env-desc" }, env.description),
      note(`actions: ${env.actions.join(", ")} · events: ${env.events.join(", ") || "none"} · max ${env.maxEpisodeSteps} steps/episode`),
      h("details", { class: "doc" }, h("summary", {}, "Documentation"), h("pre", { "data-testid": "launcher-doc" }, env.doc || "(no doc)")),
    );
    envForm = new SchemaForm(env.configSchema as ObjectSchema, { testidPrefix: "envcfg", pathPrefix: "/envConfig", exclude: ["variant"] });
    setChildren(envFormHost, envForm.empty ? null : h("h4", {}, "Environment config"), envForm.empty ? null : envForm.root);
    showVariant();
  }

  function showVariant(): void {
    const env = currentEnv();
    if (!env) return;
    const frame = env.variantFrames?.[variantSel.value] ?? env.frame;
    preview.setFrame(frame);
    setChildren(legendBox, kindLegend(frame));
  }

  function showAgent(): void {
    const agent = agents.find((a) => a.name === agentSel.value);
    if (!agent) return;
    setChildren(agentInfo, h("span", { class: `badge kind-${agent.kind}` }, agent.kind), " ", agent.description);
    agentForm = new SchemaForm(agent.configSchema as ObjectSchema, {
      testidPrefix: "config",
      pathPrefix: "/config",
      values: agent.defaults,
    });
    setChildren(agentFormHost, agentForm.root);
    syncPreview();
  }

  function clearErrors(): void {
    generalError.textContent = "";
    for (const f of Object.values(top)) {
      f.error.textContent = "";
      f.row.classList.remove("invalid");
    }
    agentForm?.clearErrors();
    envForm?.clearErrors();
  }

  function showErrors(message: string, details: { path: string; message: string }[]): void {
    let rest = agentForm ? agentForm.showErrors(details) : details;
    rest = envForm ? envForm.showErrors(rest) : rest;
    const general: string[] = [];
    for (const d of rest) {
      const f = top[d.path];
      if (f) {
        f.error.textContent = d.message;
        f.row.classList.add("invalid");
      } else {
        general.push(`${d.path} ${d.message}`);
      }
    }
    setChildren(generalError, h("strong", {}, message), general.length ? h("ul", {}, ...general.map((g) => h("li", {}, g))) : null);
    // open a collapsed section that holds an invalid field
    form.querySelectorAll(".field.invalid").forEach((el) => {
      const d = el.closest("details");
      if (d) d.open = true;
    });
  }

  function intOrNaN(input: HTMLInputElement): number {
    return input.value.trim() === "" ? Number.NaN : Number(input.value);
  }

  /** The request the form would send now, and the problems found before sending. */
  function buildBody(): { body: RunRequest; local: { path: string; message: string }[] } {
    const body: RunRequest = {
      env: envSel.value,
      variant: variantSel.value,
      agent: agentSel.value,
      config: {},
      seed: intOrNaN(seedIn),
      steps: intOrNaN(stepsIn),
    };
    const local: { path: string; message: string }[] = [];
    for (const [key, value] of [
      ["seed", body.seed],
      ["steps", body.steps],
    ] as const) {
      if (!Number.isInteger(value)) local.push({ path: `/${key}`, message: "must be an integer" });
    }
    if (agentForm) {
      // only what the user changed: the server fills defaults, and derived fields
      // (e.g. PPO's totalSteps, set from the run's budget) stay unpinned
      local.push(...agentForm.collect().errors);
      body.config = agentForm.changed();
    }
    if (envForm && !envForm.empty) {
      const changed = envForm.changed();
      local.push(...envForm.collect().errors);
      if (Object.keys(changed).length > 0) body.envConfig = changed;
    }
    if (evalIn.value.trim() !== "") body.evalEpisodes = Number(evalIn.value);
    if (rewardSel.value !== "keep") body.reward = rewardSel.value as RunRequest["reward"];
    if (labelIn.value.trim() !== "") body.label = labelIn.value.trim();
    return { body, local };
  }

  /** Derived agent settings follow the budget (PPO's totalSteps shows the run's env steps), and the request preview follows the form. */
  function syncPreview(): void {
    const steps = intOrNaN(stepsIn);
    if (Number.isInteger(steps) && steps > 0) agentForm?.follow("totalSteps", steps);
    const { body } = buildBody();
    requestPreview.textContent = `POST /api/runs ${JSON.stringify(body)}`;
  }

  async function launch(ev: Event): Promise<void> {
    ev.preventDefault();
    clearErrors();
    const { body, local } = buildBody();
    if (local.length > 0) {
      showErrors("Please fix the highlighted fields.", local);
      return;
    }
    submit.disabled = true;
    submit.textContent = "Launching…";
    try {
      const run = await api.createRun(body);
      localStorage.setItem(
        STORAGE_KEY,
        JSON.stringify({ env: body.env, variant: body.variant, agent: body.agent, seed: body.seed, steps: body.steps }),
      );
      flash(`Run ${run.id} launched`);
      form.dispatchEvent(new CustomEvent("launched", { detail: run, bubbles: true }));
      if (openAfter.checked) location.hash = `#/run/${encodeURIComponent(run.id)}`;
    } catch (e) {
      if (e instanceof ApiRequestError) showErrors(e.message, e.details);
      else showErrors(String(e), []);
    } finally {
      submit.disabled = false;
      submit.textContent = "Launch run";
    }
  }

  function levelProblem(title: string, items: string[] = []): void {
    levelStatus.textContent = "";
    setChildren(levelError, h("strong", {}, title), items.length ? h("ul", {}, ...items.map((i) => h("li", {}, i))) : null);
  }

  async function uploadLevel(): Promise<void> {
    setChildren(levelError);
    levelStatus.textContent = "";
    const text = levelText.value.trim();
    if (!text) return levelProblem("Choose a level file or paste its JSON first.");
    const size = new TextEncoder().encode(text).length;
    if (size > LEVEL_LIMIT) return levelProblem(`The level is ${compact(size)} bytes; the server accepts at most 64 KiB.`);
    let level: unknown;
    try {
      level = JSON.parse(text);
    } catch (e) {
      return levelProblem("Not valid JSON:", [jsonErrorWhere((e as Error).message, text)]);
    }
    if (!level || typeof level !== "object" || Array.isArray(level))
      return levelProblem("A level is a JSON object (with id, legend and variants).");
    const id = (level as { id?: unknown }).id;
    const replacing = typeof id === "string" && envs.some((e) => e.id === id);
    levelUpload.disabled = true;
    levelUpload.textContent = "Uploading…";
    try {
      const env = await api.uploadLevel(level);
      envs = await api.envs().catch(() => envs);
      if (!envs.some((e) => e.id === env.id)) envs = [...envs, env];
      else envs = envs.map((e) => (e.id === env.id ? env : e));
      setChildren(envSel, ...envs.map((x) => option(x.id, x.id)));
      envSel.value = env.id;
      showEnv();
      setChildren(
        levelStatus,
        h("strong", {}, env.id),
        ` ${replacing ? "replaced" : "added"} and selected · ${env.variants.length} variant${env.variants.length === 1 ? "" : "s"} · events: ${env.events.join(", ") || "none"}`,
      );
      flash(`Level ${env.id} ${replacing ? "replaced" : "uploaded"}`);
    } catch (e) {
      if (!(e instanceof ApiRequestError)) return levelProblem(String(e));
      // a 400 lists every problem (e.g. "unknown character 'Z' at row 2, column 2"); 409 an id clash; 413 the size
      const items = e.details.map((d) => (d.path && d.path !== "/" ? `${d.path}: ${d.message}` : d.message.replace(/^:\s*/, "")));
      const title =
        e.status === 409
          ? e.message
          : e.status === 413
            ? `Too large: ${e.message}`
            : items.length
              ? `The level was refused (${items.length} problem${items.length === 1 ? "" : "s"}):`
              : e.message;
      levelProblem(title, e.status === 409 ? [] : items);
    } finally {
      levelUpload.disabled = false;
      levelUpload.textContent = "Upload level";
    }
  }

  levelFile.addEventListener("change", async () => {
    const file = levelFile.files?.[0];
    if (!file) return;
    setChildren(levelError);
    if (file.size > LEVEL_LIMIT * 4) return levelProblem(`${file.name} is ${compact(file.size)} bytes; the server accepts at most 64 KiB.`);
    levelText.value = await file.text();
    levelStatus.textContent = `${file.name} loaded: edit it here if needed, then upload.`;
  });
  levelExample.addEventListener("click", () => {
    levelText.value = JSON.stringify(EXAMPLE_LEVEL, null, 2);
    setChildren(levelError);
    levelStatus.textContent = "An example level: change its id and art, then upload.";
  });
  levelUpload.addEventListener("click", () => void uploadLevel());

  envSel.addEventListener("change", showEnv);
  variantSel.addEventListener("change", showVariant);
  agentSel.addEventListener("change", showAgent);
  form.addEventListener("submit", (ev) => void launch(ev));
  resetBtn.addEventListener("click", () => {
    agentForm?.reset();
    envForm?.reset();
    seedIn.value = "0";
    stepsIn.value = "50000";
    evalIn.value = "";
    rewardSel.value = "keep";
    clearErrors();
    syncPreview();
  });

  let alive = true;
  Promise.all([api.envs(), api.agents()])
    .then(([e, a]) => {
      if (!alive) return;
      envs = e;
      agents = a;
      setChildren(envSel, ...envs.map((env) => option(env.id, env.id)));
      setChildren(agentSel, ...agents.map((ag) => option(ag.name, `${ag.name} (${ag.kind})`)));
      if (memory.env && envs.some((x) => x.id === memory.env)) envSel.value = memory.env;
      if (memory.agent && agents.some((x) => x.name === memory.agent)) agentSel.value = memory.agent;
      if (memory.seed !== undefined) seedIn.value = String(memory.seed);
      if (memory.steps !== undefined) stepsIn.value = String(memory.steps);
      showEnv();
      showAgent();
      form.dataset.ready = "true";
    })
    .catch((e: unknown) => showErrors(`Could not load environments and agents: ${(e as Error).message}`, []));

  const onResize = () => preview.requestDraw();
  window.addEventListener("resize", onResize);
  return () => {
    alive = false;
    window.removeEventListener("resize", onResize);
  };
}
