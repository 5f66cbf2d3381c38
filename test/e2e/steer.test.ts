/**
 * Browser test of the steering view: a Maze-v0 PPO run trained for a few
 * updates over the API, then #/run/:id/steer in chromium: the per-square
 * action arrows are drawn, and moving the cheese-vector coefficient changes
 * them (the probabilities the canvas draws and its pixels). Runs only under
 * vitest.e2e.config.ts (it sets REWARDLAB_E2E).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { type Browser, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "../..");
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
let server: ChildProcess | null = null;
let browser: Browser | null = null;
let data = "";
let base = "";

async function serve(): Promise<string> {
  data = await mkdtemp(join(tmpdir(), "rewardlab-steer-"));
  server = spawn(process.execPath, ["bin/rewardlab.js", "serve", "--port", "0", "--data", data, "--no-demo"], {
    cwd: ROOT,
    env: { ...process.env, NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let log = "";
  return new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`no "listening on" within 90 s:\n${log.slice(-2000)}`)), 90_000);
    const read = (chunk: Buffer) => {
      log += chunk.toString();
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(log);
      if (m) {
        clearTimeout(timer);
        res(m[1]!);
      }
    };
    server!.stdout!.on("data", read);
    server!.stderr!.on("data", read);
  });
}

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(base + path, {
    method,
    headers: body ? { "content-type": "application/json" } : {},
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return JSON.parse(text) as T;
}

describe.skipIf(!process.env.REWARDLAB_E2E)("steering view", () => {
  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (or set CHROMIUM_PATH)`);
    if (!existsSync(join(ROOT, "client/dist/index.html"))) {
      const { build } = await import("vite");
      await build({ root: join(ROOT, "client"), logLevel: "warn" });
    }
    base = await serve();
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--headless", "--no-sandbox", "--disable-gpu"] });
  });

  afterAll(async () => {
    await browser?.close();
    if (server && server.exitCode === null) {
      const s = server;
      await new Promise<void>((res) => {
        s.once("exit", () => res());
        s.kill("SIGTERM");
      });
    }
    if (data) await rm(data, { recursive: true, force: true });
  });

  it("draws the policy's arrows on a maze run and changes them with the cheese-vector coefficient", async () => {
    const run = await call<{ id: string }>("POST", "/api/runs", {
      env: "Maze-v0",
      agent: "ppo",
      steps: 2048,
      seed: 0,
      evalEpisodes: 2,
      config: { numEnvs: 4, numSteps: 128 },
    });
    const end = Date.now() + 120_000;
    for (;;) {
      const r = await call<{ status: string; checkpointDir?: string | null }>("GET", `/api/runs/${run.id}`);
      if (r.status === "completed") break;
      if (r.status === "failed" || Date.now() > end) throw new Error(`run ${run.id} did not complete: ${JSON.stringify(r)}`);
      await new Promise((r2) => setTimeout(r2, 500));
    }
    const page = await browser!.newPage({ viewport: { width: 1200, height: 900 } });
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(`${base}/#/run/${run.id}`);
    await page.click("[data-testid=steer-link]", { timeout: 30_000 });
    await page.waitForSelector("[data-testid=steer-view][data-probs]", { timeout: 60_000 });
    const before = await page.getAttribute("[data-testid=steer-view]", "data-probs");
    expect(before!.split(",").some((p) => Number(p) > 0)).toBe(true);
    const pixels = () => page.$eval("[data-testid=steer-canvas]", (c) => (c as HTMLCanvasElement).toDataURL());
    const drawn = await pixels();
    await page.$eval("[data-testid=steer-coeff]", (el) => {
      const input = el as HTMLInputElement;
      input.value = "-4";
      input.dispatchEvent(new Event("input"));
    });
    await page.waitForFunction((old) => document.querySelector("[data-testid=steer-view]")?.getAttribute("data-probs") !== old, before, {
      timeout: 60_000,
    });
    expect(await page.textContent("[data-testid=steer-coeff-value]")).toBe("-4");
    await page.waitForFunction(
      (old) => (document.querySelector("[data-testid=steer-canvas]") as HTMLCanvasElement).toDataURL() !== old,
      drawn,
      {
        timeout: 10_000,
      },
    );
    expect(await page.textContent("[data-testid=steer-outcome]")).toMatch(/played greedily/);
    await page.screenshot({ path: join(ROOT, "test-results", "steer.png"), fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  });
});
