/**
 * Browser test of the client against the real server: launch a run from the
 * form, watch the canvas change and the charts gain points, intervene, replay
 * an episode, upload a level and run on it, compare two runs, run a probe,
 * run a sweep and see its probe bars. Screenshots go to test-results/. Runs
 * only under vitest.e2e.config.ts (it sets REWARDLAB_E2E).
 */
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { canvasChanges, canvasDrawn, canvasSignature as signature, type E2eSession, openSession, ROOT, until } from "./browser.ts";

const SHOTS = join(ROOT, "test-results");
const STEPS = 100_000;
/** examples/levels/two-rooms.json is uploaded under this id. */
const LEVEL_ID = "E2eRooms-v0";
const SWEEP = {
  name: "e2e",
  backend: "cpu",
  grid: { env: ["TamperGrid-v0"], agent: ["reinforce"], seeds: 2, steps: [256], evalEpisodes: 2 },
  probes: [{ probe: "tamper", agents: ["planner"], seeds: 1, steps: 200, episodes: 5 }],
};

let session: E2eSession | null = null;
let base = "";
let page: Page;
const consoleErrors: string[] = [];
/**
 * Console errors the browser prints for what the tests do on purpose: 4xx
 * answers to bad requests (the views show them as form errors) and the
 * refused connections while the test restarts the server. Anything else is
 * printed after the run.
 */
const EXPECTED_CONSOLE = [
  /Failed to load resource: the server responded with a status of 4\d\d/,
  /ERR_CONNECTION_REFUSED/,
  /WebSocket connection to .* failed/,
];
let firstRunId = "";

async function shot(name: string): Promise<void> {
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

const canvasSignature = (selector: string) => signature(page, selector);
const api = <T>(method: string, path: string, body?: unknown) => session!.server.api<T>(method, path, body);

/**
 * Sets learning on or off in the Intervene panel, applies it, and waits for the `nth` entry in the intervention
 * log; with `unlessEnded`, ending the run first (a short run on a loaded machine) also ends the wait, and the
 * entry is then not required. Returns whether the entry arrived.
 */
async function intervene(learning: boolean, nth: number, unlessEnded = false): Promise<boolean> {
  await page.setChecked("[data-testid=intervene-learning]", learning);
  await page.click("[data-testid=intervene-apply]");
  const state = async () => ({
    entries: await page.$$eval("[data-testid=intervention-log] li", (l) => l.length),
    live: ["running", "paused"].includes((await api<{ status: string }>("GET", `/api/runs/${firstRunId}`)).status),
  });
  const last = await until(`intervention ${nth} in the log`, state, (s) => s.entries >= nth || (unlessEnded && !s.live), 60_000);
  return last.entries >= nth;
}

async function points(testid: string): Promise<number> {
  const v = await page.getAttribute(`[data-testid=${testid}]`, "data-points");
  return Number(v ?? 0);
}

/** Waits until the chart `testid` has more than `than` points; resolves with the count. */
const pointsOver = (testid: string, than: number, what: string, timeoutMs: number) =>
  until(
    what,
    () => points(testid),
    (n) => n > than,
    timeoutMs,
  );

describe.skipIf(!process.env.REWARDLAB_E2E)("browser client", () => {
  beforeAll(async () => {
    await mkdir(SHOTS, { recursive: true });
    session = await openSession({ args: ["--no-demo"] });
    base = session.server.base;
    page = session.page;
    page.on("console", (m) => {
      if (m.type() === "error" && !EXPECTED_CONSOLE.some((re) => re.test(m.text()))) consoleErrors.push(m.text());
    });
  });

  afterAll(async () => {
    await session?.close();
    if (consoleErrors.length) console.warn(`browser console errors:\n${consoleErrors.join("\n")}`);
  });

  it("shows environments, agents and the generated config form", async () => {
    await page.goto(`${base}/#/`);
    await page.waitForSelector("[data-testid=launcher][data-ready=true]", { timeout: 30_000 });
    await until(
      "socket connection",
      () => page.getAttribute("[data-testid=conn-status]", "data-state"),
      (s) => s === "connected",
      20_000,
    );
    const envIds = await page.$$eval("[data-testid=launcher-env] option", (os) => os.map((o) => (o as HTMLOptionElement).value));
    expect(envIds).toContain("BoatRace-v0");
    await page.selectOption("[data-testid=launcher-env]", "BoatRace-v0");
    await page.selectOption("[data-testid=launcher-agent]", "ppo");
    expect(await canvasSignature("[data-testid=launcher-preview]")).not.toMatch(/^(none|blank)$/);
    const fields = await page.$$("[data-testid=config-form] .field");
    expect(fields.length).toBeGreaterThan(0);
    await shot("launcher");
  });

  it("shows a 400's field errors beside the fields", async () => {
    await page.fill("[data-testid=launcher-steps]", "0");
    await page.click("[data-testid=launcher-submit]");
    await page.waitForSelector("[data-testid=launcher-steps-error]:not(:empty)", { timeout: 10_000 });
    expect(await page.textContent("[data-testid=launcher-steps-error]")).toMatch(/\S/);

    // an agent-config field with a minimum: put it below, expect the message beside that field
    await page.fill("[data-testid=launcher-steps]", String(STEPS));
    const key = await page.$$eval("[data-testid=config-form] input[type=number][min]", (els) => {
      const el = els.find((e) => (e as HTMLInputElement).min !== "" && Number.isFinite(Number((e as HTMLInputElement).min)));
      return el ? (el as HTMLInputElement).name : null;
    });
    if (key) {
      const min = Number(await page.getAttribute(`[data-testid=config-${key}]`, "min"));
      const original = await page.inputValue(`[data-testid=config-${key}]`);
      await page.fill(`[data-testid=config-${key}]`, String(min - 1000));
      await page.click("[data-testid=launcher-submit]");
      await page.waitForSelector(`[data-testid=config-${key}-error]:not(:empty)`, { timeout: 10_000 });
      await shot("launcher-errors");
      await page.fill(`[data-testid=config-${key}]`, original);
    } else {
      await shot("launcher-errors");
    }
    expect(page.url()).not.toContain("#/run/");
  });

  it("launches a run and streams frames and curves", async () => {
    await page.fill("[data-testid=launcher-seed]", "1");
    await page.fill("[data-testid=launcher-steps]", String(STEPS));
    await page.click("[data-testid=launcher-submit]");
    await page.waitForURL(/#\/run\//, { timeout: 20_000 });
    firstRunId = decodeURIComponent(page.url().split("#/run/")[1]!);
    expect(firstRunId).toMatch(/\S/);
    await page.waitForSelector("[data-testid=run-canvas]");

    // the canvas changes as streamed frames are played
    const first = await canvasDrawn(page, "[data-testid=run-canvas]", "a drawn canvas", 30_000);
    await until(
      "the canvas to change",
      () => canvasSignature("[data-testid=run-canvas]"),
      (s) => s !== first && s !== "blank",
      60_000,
      250,
    );

    // the charts gain points
    const p1 = await pointsOver("chart-return", 0, "episodes on the return chart", 90_000);
    await pointsOver("chart-return", p1, "more points on the return chart", 90_000);
    await pointsOver("chart-losses", 0, "points on the losses chart", 90_000);
    expect(await page.textContent("[data-testid=run-hud]")).toMatch(/episode \d+/);
    await shot("run-view");
  });

  it("paints the ledger and applies a live intervention", async () => {
    await page.check("[data-testid=toggle-ledger]");
    await page.check("[data-testid=toggle-heatmap]");
    const run = await api<{ status: string }>("GET", `/api/runs/${firstRunId}`);
    if (run.status === "running" || run.status === "paused") {
      await intervene(false, 1);
      // a second one while the run is still live (a short run can end between the two on a loaded machine)
      const after = await api<{ status: string }>("GET", `/api/runs/${firstRunId}`);
      if (after.status === "running" || after.status === "paused") await intervene(true, 2, true);
    }
    await page.waitForTimeout(4500); // one ledger refresh
    await shot("run-ledger");
  });

  it("replays a stored episode", async () => {
    await until(
      "recorded episodes",
      () => page.$$eval("[data-testid=replay-select] option", (os) => os.length),
      (n) => n > 1,
      60_000,
    );
    const value = await page.$eval("[data-testid=replay-select] option:nth-child(2)", (o) => (o as HTMLOptionElement).value);
    await page.selectOption("[data-testid=replay-select]", value);
    await until(
      "replay mode",
      () => page.textContent("[data-testid=canvas-mode]"),
      (t) => /replay/.test(t ?? ""),
      10_000,
    );
    await page.click("[data-testid=replay-play]"); // pause the autoplay
    await page.click("[data-testid=replay-next]");
    await page.click("[data-testid=replay-next]");
    expect(await page.textContent("[data-testid=replay-info]")).toMatch(/step \d+\/\d+/);
    await shot("run-replay");
    await page.click("[data-testid=replay-live]");
  });

  it("uploads a level and launches a run on it", async () => {
    await page.goto(`${base}/#/`);
    await page.waitForSelector("[data-testid=launcher][data-ready=true]", { timeout: 30_000 });
    const level = JSON.parse(await readFile(join(ROOT, "examples/levels/two-rooms.json"), "utf8")) as {
      id: string;
      variants: { art: string[] }[];
    };
    await page.click("[data-testid=level-panel] summary");

    // a mistake first: the error names the character and where it is
    const bad = structuredClone(level);
    bad.id = LEVEL_ID;
    bad.variants[0]!.art[1] = "#AZ #   #";
    await page.fill("[data-testid=level-json]", JSON.stringify(bad, null, 2));
    await page.click("[data-testid=level-upload]");
    await page.waitForSelector("[data-testid=level-error]:not(:empty)", { timeout: 10_000 });
    expect(await page.textContent("[data-testid=level-error]")).toMatch(/unknown character 'Z' at row 2, column 3/);
    const envIds = () => page.$$eval("[data-testid=launcher-env] option", (os) => os.map((o) => (o as HTMLOptionElement).value));
    expect(await envIds()).not.toContain(LEVEL_ID);
    await shot("level-error");

    // the file, with a changed id, through the file input
    await page.setInputFiles("[data-testid=level-file]", {
      name: "e2e-rooms.json",
      mimeType: "application/json",
      buffer: Buffer.from(JSON.stringify({ ...level, id: LEVEL_ID }, null, 2)),
    });
    await until(
      "the file in the editor",
      () => page.inputValue("[data-testid=level-json]"),
      (t) => t.includes(LEVEL_ID),
      5_000,
    );
    await page.click("[data-testid=level-upload]");
    await until(
      "the new env selected",
      () => page.inputValue("[data-testid=launcher-env]"),
      (v) => v === LEVEL_ID,
      10_000,
    );
    expect(await page.textContent("[data-testid=level-error]")).toBe("");
    expect(await page.textContent("[data-testid=level-status]")).toContain(LEVEL_ID);
    expect(await envIds()).toContain(LEVEL_ID);
    expect(await page.$$eval("[data-testid=launcher-variant] option", (os) => os.map((o) => (o as HTMLOptionElement).value))).toEqual([
      "train",
      "test",
    ]);
    const train = await canvasDrawn(page, "[data-testid=launcher-preview]", "the level's preview", 5_000);
    await page.selectOption("[data-testid=launcher-variant]", "test");
    await until(
      "the test variant's preview (hazards)",
      () => canvasSignature("[data-testid=launcher-preview]"),
      (s) => s !== train,
      5_000,
    );
    await page.selectOption("[data-testid=launcher-variant]", "train");
    await shot("level-uploaded");

    // and a short run on it
    await page.selectOption("[data-testid=launcher-agent]", "reinforce");
    await page.fill("[data-testid=launcher-seed]", "0");
    await page.fill("[data-testid=launcher-steps]", "3000");
    await page.click("[data-testid=launcher-submit]");
    await page.waitForURL(/#\/run\//, { timeout: 20_000 });
    const id = decodeURIComponent(page.url().split("#/run/")[1]!);
    expect((await api<{ spec: { env: string } }>("GET", `/api/runs/${id}`)).spec.env).toBe(LEVEL_ID);
    await pointsOver("chart-return", 0, "episodes of the level's run", 60_000);
    await canvasDrawn(page, "[data-testid=run-canvas]", "a drawn canvas", 30_000);
    await shot("level-run");
  });

  it("compares two runs side by side", async () => {
    const second = await api<{ id: string }>("POST", "/api/runs", {
      env: "BoatRace-v0",
      variant: "default",
      agent: "reinforce",
      config: {},
      seed: 2,
      steps: 400_000,
    });
    await page.goto(`${base}/#/`);
    await page.waitForSelector(`[data-testid=run-row][data-run-id="${second.id}"]`, { timeout: 20_000 });
    await page.check(`[data-testid=run-row][data-run-id="${firstRunId}"] [data-testid=run-select]`);
    await page.check(`[data-testid=run-row][data-run-id="${second.id}"] [data-testid=run-select]`);
    await shot("runs-list");
    await page.click("[data-testid=compare-link]");
    await page.waitForURL(/#\/compare\?ids=/);
    await until(
      "two lanes",
      () => page.$$eval("[data-testid=compare-lane]", (l) => l.length),
      (n) => n === 2,
      10_000,
    );
    for (const id of [firstRunId, second.id]) {
      await canvasDrawn(page, `[data-testid=compare-canvas][data-run-id="${id}"]`, `canvas of ${id}`, 30_000);
    }
    // the second run streams live frames into its lane once it runs
    const secondCanvas = `[data-testid=compare-canvas][data-run-id="${second.id}"]`;
    await canvasChanges(page, secondCanvas, "the second lane's canvas to change", 90_000);
    // one return panel per environment: both runs are on BoatRace-v0
    await pointsOver("chart-compare-return-BoatRace-v0", 0, "curves on the comparison chart", 60_000);
    await page.waitForTimeout(1500);
    await shot("compare");
  });

  it("runs a small probe and shows its bars", async () => {
    // free a training slot: stop both runs (a probe trains too)
    for (const r of await api<{ id: string; status: string }[]>("GET", "/api/runs")) {
      if (r.status === "running" || r.status === "queued" || r.status === "paused")
        await api("POST", `/api/runs/${r.id}/stop`).catch(() => undefined);
    }
    await page.goto(`${base}/#/probes`);
    await page.waitForSelector("[data-testid=probes]");
    await until(
      "agents to pick",
      () => page.$$eval("[data-testid=probe-agents] input", (l) => l.length),
      (n) => n > 0,
      10_000,
    );
    // the probe select comes from GET /api/probes/definitions, with the description and event shown
    await until(
      "probe definitions",
      () => page.$$eval("[data-testid=probe-name] option", (os) => os.map((o) => (o as HTMLOptionElement).value)),
      (l) => l.includes("tamper"),
      10_000,
    );
    await page.selectOption("[data-testid=probe-name]", "tamper");
    expect(await page.textContent("[data-testid=probe-info]")).toMatch(/event\s*tamper/);
    expect(await page.isDisabled("[data-testid=probe-env]")).toBe(true); // tamper is specific to TamperGrid-v0
    for (const input of await page.$$("[data-testid=probe-agents] input")) {
      const name = await input.getAttribute("value");
      if (name === "planner" || name === "reinforce") await input.check();
      else await input.uncheck();
    }
    await page.fill("[data-testid=probe-seeds]", "2");
    await page.fill("[data-testid=probe-steps]", "2000");
    await page.fill("[data-testid=probe-episodes]", "10");
    // an agent config that fails the planner's schema is named beside the field
    await page.fill("[data-testid=probe-configs]", '{"planner": {"model": "psychic"}}');
    await page.click("[data-testid=probe-submit]");
    await until(
      "the config error",
      () => page.textContent("[data-path='/configs'] .field-error"),
      (t) => /must be one of.*simulator/.test(t ?? ""),
      10_000,
    );
    // a key agent:tag adds another configuration of a checked agent as a row of its own
    await page.fill("[data-testid=probe-configs]", '{"planner:learned": {"model": "learned"}}');
    await page.click("[data-testid=probe-submit]");
    await page.waitForSelector("[data-testid=probe-row]", { timeout: 10_000 });
    await page.waitForSelector("[data-testid=probe-chart]", { timeout: 120_000 });
    const labels = await page.$$eval("[data-testid=probe-table] tbody tr td:first-child", (l) => l.map((e) => e.textContent));
    // each agent greedy and sampled, then the uniform random policy's chance row
    expect(labels).toEqual([
      "reinforce",
      "reinforce",
      "planner",
      "planner",
      "planner (model=learned)",
      "planner (model=learned)",
      "chance (uniform random)",
    ]);
    expect(await page.$$eval("[data-testid=probe-eval]", (l) => l.map((e) => e.textContent))).toEqual([
      "greedy",
      "sampled",
      "greedy",
      "sampled",
      "greedy",
      "sampled",
    ]);
    // per seed, what training exposed it to: the device is walled off in tamper's training, so no episode shows it
    const doses = await page.$$eval("[data-testid=probe-training-dose]", (l) => l.map((e) => e.textContent ?? ""));
    expect(doses.length).toBe(12);
    for (const d of doses) expect(d).toMatch(/^0 of [1-9]\d*$/);
    await shot("probes");
  });

  it("starts a small sweep and shows its progress and probe bars", async () => {
    await page.goto(`${base}/#/sweeps`);
    await page.waitForSelector("[data-testid=sweeps]");
    expect(JSON.parse(await page.inputValue("[data-testid=sweep-spec]"))).toHaveProperty("name"); // prefilled with an example

    // a bad spec: the server's 400 details beside the editor
    await page.fill("[data-testid=sweep-spec]", JSON.stringify({ name: "bad", grid: { env: ["TamperGrid-v0"] } }, null, 2));
    await page.click("[data-testid=sweep-submit]");
    await page.waitForSelector("[data-testid=sweep-error-detail]", { timeout: 10_000 });
    expect(await page.textContent("[data-testid=sweep-error]")).toMatch(/\/grid.*agent/);
    await shot("sweep-error");

    await page.fill("[data-testid=sweep-spec]", JSON.stringify(SWEEP, null, 2));
    await page.click("[data-testid=sweep-submit]");
    await page.waitForSelector("[data-testid=sweep-row].selected", { timeout: 10_000 });
    expect(await page.textContent("[data-testid=sweep-error]")).toBe("");
    const id = (await page.getAttribute("[data-testid=sweep-row].selected", "data-sweep-id"))!;
    const row = `[data-testid=sweep-row][data-sweep-id="${id}"]`;
    expect(await page.textContent(row)).toMatch(/e2e[\s\S]*local/);
    await until(
      "the sweep to complete",
      () => page.getAttribute(row, "data-status"),
      (s) => s === "completed",
      90_000,
      250,
    );
    expect(await page.getAttribute(`${row} [data-testid=sweep-progress]`, "data-completed")).toBe("3");
    expect(await page.getAttribute(`${row} [data-testid=sweep-progress]`, "data-total")).toBe("3");
    // the aggregated probe table, drawn like the probes view: measured bar with whiskers and the three predictions
    await page.waitForSelector("[data-testid=sweep-probe-chart]", { timeout: 30_000 });
    expect(await page.$$eval("[data-testid=sweep-probe-chart] rect.bar", (l) => l.length)).toBeGreaterThanOrEqual(2);
    // the planner greedy and sampled: one measured bar with its three whisker lines each
    expect(await page.$$eval("[data-testid=sweep-probe-chart] line.whisker", (l) => l.length)).toBe(6);
    expect(await page.$$eval("[data-testid=sweep-probe-table] tbody tr", (l) => l.length)).toBe(2);
    await until(
      "the sweep's runs",
      () => page.$$eval("[data-testid=sweep-run-row]", (l) => l.length),
      (n) => n === 2,
      15_000,
    );
    await shot("sweeps");
  });

  it("reconnects by itself after a server restart, and resumes the interrupted run from its checkpoint", async () => {
    // a run long enough to still be training when the server goes down
    const res = await fetch(`${base}/api/runs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ env: "BoatRace-v0", agent: "reinforce", steps: 20_000_000, seed: 5 }),
    });
    const longRun = ((await res.json()) as { id: string }).id;
    await page.goto(`${base}/#/run/${encodeURIComponent(longRun)}`);
    const conn = () => page.getAttribute("[data-testid=conn-status]", "data-state");
    await until("connected", conn, (s) => s === "connected", 20_000);
    await pointsOver("chart-return", 0, "the run's history", 60_000);
    const port = Number(new URL(base).port);
    await session!.server.stop();
    await until("the indicator to show the lost connection", conn, (s) => s !== "connected", 20_000);
    await shot("disconnected");
    base = await session!.server.listen(port);
    await until("reconnected", conn, (s) => s === "connected", 60_000);
    // resubscribed: the new server's snapshot refills the view (the run survived in the store)
    await pointsOver("chart-return", 0, "the run's history after reconnecting", 60_000);
    await until(
      "the run's status",
      () => page.textContent("[data-testid=run-status]"),
      (t) => /interrupted/.test(t ?? ""),
      10_000,
    );
    await shot("reconnected");
    // the graceful shutdown checkpointed it: the view offers to resume, and resuming trains on
    const button = "[data-testid=run-view] [data-testid=run-pause]";
    await until(
      "a resume button",
      () => page.textContent(button),
      (t) => /resume/i.test(t ?? ""),
      10_000,
    );
    await page.click(button);
    await until(
      "the run training again",
      () => page.textContent("[data-testid=run-status]"),
      (t) => /running/.test(t ?? ""),
      30_000,
    );
    await until(
      "the pause button back",
      () => page.textContent(button),
      (t) => /pause/i.test(t ?? ""),
      10_000,
    );
    await fetch(`${base}/api/runs/${longRun}/stop`, { method: "POST" });
  });

  it("raised no uncaught errors in the page", () => {
    expect(session!.pageErrors).toEqual([]);
  });
});
