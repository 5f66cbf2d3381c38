/**
 * Browser test of the client against the real server: launch a run from the
 * form, watch the canvas change and the charts gain points, intervene, replay
 * an episode, upload a level and run on it, compare two runs, run a probe,
 * run a sweep and see its probe bars. Screenshots go to test-results/. Runs
 * only under vitest.e2e.config.ts (it sets REWARDLAB_E2E).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Browser, Page } from "playwright-core";
import { CHROMIUM, launchChromium } from "./browser.ts";

const ROOT = resolve(import.meta.dirname, "../..");
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

let server: ChildProcess | null = null;
let serverLog = "";
let dataDir = "";
let base = "";
let browser: Browser | null = null;
let page: Page;
const pageErrors: string[] = [];
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

/** Starts the server (again, on `port`, with the same data folder when restarting). */
async function startServer(port = 0): Promise<string> {
  dataDir ||= await mkdtemp(join(tmpdir(), "rewardlab-e2e-"));
  serverLog = "";
  const args = ["bin/rewardlab.js", "serve", "--port", String(port), "--data", dataDir, "--no-demo"];
  server = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, NO_COLOR: "1" }, stdio: ["ignore", "pipe", "pipe"] });
  return new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`server did not report "listening on" within 90 s:\n${serverLog.slice(-3000)}`)), 90_000);
    const onData = (chunk: Buffer) => {
      serverLog += chunk.toString();
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(serverLog);
      if (m) {
        clearTimeout(timer);
        res(m[1]!);
      }
    };
    server!.stdout!.on("data", onData);
    server!.stderr!.on("data", onData);
    server!.on("exit", (code) => {
      clearTimeout(timer);
      rej(new Error(`server exited with ${code} before listening:\n${serverLog.slice(-3000)}`));
    });
  });
}

async function stopServer(): Promise<void> {
  const s = server;
  if (!s || s.exitCode !== null) return;
  await new Promise<void>((res) => {
    const kill = setTimeout(() => s.kill("SIGKILL"), 8000);
    s.once("exit", () => {
      clearTimeout(kill);
      res();
    });
    s.kill("SIGTERM");
  });
}

async function shot(name: string): Promise<void> {
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

/** A hash of a canvas's pixels (changes when anything drawn changes). */
async function canvasSignature(selector: string): Promise<string> {
  return page.evaluate((sel) => {
    const c = document.querySelector<HTMLCanvasElement>(sel);
    if (!c || c.width < 2) return "none";
    const data = c.getContext("2d")!.getImageData(0, 0, c.width, c.height).data;
    let h = 2166136261;
    let ink = 0;
    for (let i = 0; i < data.length; i += 4) {
      h = Math.imul(h ^ (data[i]! + 7 * data[i + 1]! + 31 * data[i + 2]!), 16777619);
      if (data[i + 3]! > 0) ink++;
    }
    return ink === 0 ? "blank" : `${c.width}x${c.height}:${(h >>> 0).toString(16)}`;
  }, selector);
}

async function points(testid: string): Promise<number> {
  const v = await page.getAttribute(`[data-testid=${testid}]`, "data-points");
  return Number(v ?? 0);
}

async function until<T>(what: string, fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 60_000, everyMs = 300): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: T = await fn();
  while (!ok(last)) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what} (last value: ${JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, everyMs));
    last = await fn();
  }
  return last;
}

async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(base + path, {
    method,
    headers: body ? { "content-type": "application/json" } : {},
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return (text ? JSON.parse(text) : null) as T;
}

describe.skipIf(!process.env.REWARDLAB_E2E)("browser client", () => {
  beforeAll(async () => {
    if (!existsSync(CHROMIUM))
      throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (or set REWARDLAB_CHROMIUM to a Chromium binary)`);
    if (!existsSync(join(ROOT, "client/dist/index.html"))) {
      const { build } = await import("vite");
      await build({ root: join(ROOT, "client"), logLevel: "warn" });
    }
    await mkdir(SHOTS, { recursive: true });
    base = await startServer();
    browser = await launchChromium();
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, deviceScaleFactor: 1 });
    page = await context.newPage();
    page.on("pageerror", (e) => pageErrors.push(String(e)));
    page.on("console", (m) => {
      if (m.type() === "error" && !EXPECTED_CONSOLE.some((re) => re.test(m.text()))) consoleErrors.push(m.text());
    });
  });

  afterAll(async () => {
    await browser?.close();
    await stopServer();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
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
    const first = await until(
      "a drawn canvas",
      () => canvasSignature("[data-testid=run-canvas]"),
      (s) => s !== "none" && s !== "blank",
      30_000,
    );
    await until(
      "the canvas to change",
      () => canvasSignature("[data-testid=run-canvas]"),
      (s) => s !== first && s !== "blank",
      60_000,
      250,
    );

    // the charts gain points
    const p1 = await until(
      "episodes on the return chart",
      () => points("chart-return"),
      (n) => n > 0,
      90_000,
    );
    await until(
      "more points on the return chart",
      () => points("chart-return"),
      (n) => n > p1,
      90_000,
    );
    await until(
      "points on the losses chart",
      () => points("chart-losses"),
      (n) => n > 0,
      90_000,
    );
    expect(await page.textContent("[data-testid=run-hud]")).toMatch(/episode \d+/);
    await shot("run-view");
  });

  it("paints the ledger and applies a live intervention", async () => {
    await page.check("[data-testid=toggle-ledger]");
    await page.check("[data-testid=toggle-heatmap]");
    const run = await api<{ status: string }>("GET", `/api/runs/${firstRunId}`);
    if (run.status === "running" || run.status === "paused") {
      await page.uncheck("[data-testid=intervene-learning]");
      await page.click("[data-testid=intervene-apply]");
      await until(
        "an intervention in the log",
        () => page.$$eval("[data-testid=intervention-log] li", (l) => l.length),
        (n) => n >= 1,
        60_000,
      );
      // a second one while the run is still live (a short run can end between the two on a loaded machine)
      const after = await api<{ status: string }>("GET", `/api/runs/${firstRunId}`);
      if (after.status === "running" || after.status === "paused") {
        await page.check("[data-testid=intervene-learning]");
        await page.click("[data-testid=intervene-apply]");
        await until(
          "a second intervention",
          () => page.$$eval("[data-testid=intervention-log] li", (l) => l.length),
          (n) => n >= 2,
          60_000,
        );
      }
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
    const train = await until(
      "the level's preview",
      () => canvasSignature("[data-testid=launcher-preview]"),
      (s) => !/^(none|blank)$/.test(s),
      5_000,
    );
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
    await until(
      "episodes of the level's run",
      () => points("chart-return"),
      (n) => n > 0,
      60_000,
    );
    await until(
      "a drawn canvas",
      () => canvasSignature("[data-testid=run-canvas]"),
      (s) => s !== "none" && s !== "blank",
      30_000,
    );
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
      await until(
        `canvas of ${id}`,
        () => canvasSignature(`[data-testid=compare-canvas][data-run-id="${id}"]`),
        (s) => s !== "none" && s !== "blank",
        30_000,
      );
    }
    // the second run streams live frames into its lane once it runs
    const secondCanvas = `[data-testid=compare-canvas][data-run-id="${second.id}"]`;
    const before = await canvasSignature(secondCanvas);
    await until(
      "the second lane's canvas to change",
      () => canvasSignature(secondCanvas),
      (s) => s !== before,
      90_000,
      250,
    );
    await until(
      "curves on the comparison chart",
      // one return panel per environment: both runs are on BoatRace-v0
      () => points("chart-compare-return-BoatRace-v0"),
      (n) => n > 0,
      60_000,
    );
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
    await until(
      "the run's history",
      () => points("chart-return"),
      (n) => n > 0,
      30_000,
    );
    const port = Number(new URL(base).port);
    await stopServer();
    await until("the indicator to show the lost connection", conn, (s) => s !== "connected", 20_000);
    await shot("disconnected");
    base = await startServer(port);
    await until("reconnected", conn, (s) => s === "connected", 60_000);
    // resubscribed: the new server's snapshot refills the view (the run survived in the store)
    await until(
      "the run's history after reconnecting",
      () => points("chart-return"),
      (n) => n > 0,
      30_000,
    );
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
    expect(pageErrors).toEqual([]);
  });
});
