/**
 * Browser test, the server with its defaults (the demo on): a user's run
 * starts at once while the demo trains (the run page goes from queued to
 * running without a reload, the demo lane says it gave its slot); a probe
 * cell opens that agent's and seed's test episodes (with the event beside
 * without, event steps marked); the Results view shows a comparison `compare`
 * wrote, with its commit, each per-seed rate a link to its episodes.
 * Screenshots go to /tmp/rewardlab-e2e-shots/.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Browser, Page } from "playwright-core";
import { launchChromium } from "./browser.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const SHOTS = "/tmp/rewardlab-e2e-shots";

const servers: ChildProcess[] = [];
let dataDir = "";
let base = "";
let browser: Browser | null = null;
let page: Page;

function run(args: string[], onLine?: (out: string) => string | null): Promise<string> {
  const child = spawn(process.execPath, ["bin/rewardlab.js", ...args], {
    cwd: ROOT,
    env: { ...process.env, NO_COLOR: "1", REWARDLAB_LOG_LEVEL: "warn" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  if (args[0] === "serve") servers.push(child);
  let out = "";
  return new Promise((res, rej) => {
    const onData = (c: Buffer) => {
      out += c.toString();
      const found = onLine?.(out);
      if (found) res(found);
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.on("exit", (code) => (code === 0 ? res(out) : rej(new Error(`rewardlab ${args[0]} exited with ${code}:\n${out.slice(-2000)}`))));
  });
}

const api = async <T>(path: string, body?: unknown): Promise<T> => {
  const res = await fetch(
    base + path,
    body ? { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) } : {},
  );
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
};

async function until<T>(what: string, fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(v).slice(0, 300)})`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

interface Run {
  id: string;
  status: string;
  reason: string | null;
  episodes: number;
  spec: { label?: string };
}

describe.skipIf(!process.env.REWARDLAB_E2E)("from the demo to a user's run, from a figure to its episodes", () => {
  beforeAll(async () => {
    await mkdir(SHOTS, { recursive: true });
    dataDir = await mkdtemp(join(tmpdir(), "rewardlab-e2e-episodes-"));
    base = await run(
      ["serve", "--port", "0", "--data", dataDir],
      (out) => /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1] ?? null,
    );
    browser = await launchChromium();
    page = await (await browser.newContext({ viewport: { width: 1440, height: 900 } })).newPage();
  });

  afterAll(async () => {
    await browser?.close();
    for (const s of servers) if (s.exitCode === null) s.kill("SIGKILL");
  });

  it("starts a user's run at once while the demo trains, and the run page follows it without a reload", async () => {
    await page.goto(`${base}/#/`);
    const demo = () => api<Run[]>("/api/runs").then((rs) => rs.filter((r) => r.spec.label === "demo"));
    await until("the demo to train", demo, (rs) => rs.length === 2 && rs.every((r) => r.status === "running" && r.episodes > 0), 90_000);
    const user = await api<Run>("/api/runs", { env: "BoatRace-v0", agent: "reinforce", steps: 2_000_000, seed: 3 });
    await page.goto(`${base}/#/run/${user.id}`);
    const t0 = Date.now();
    await page.waitForFunction(() => document.querySelector("[data-testid=run-status]")?.textContent?.startsWith("running"), null, {
      timeout: 15_000,
    });
    expect(Date.now() - t0).toBeLessThan(15_000);
    await page.goto(`${base}/#/`);
    await page.waitForSelector("[data-testid=home-demo] [data-testid=lane-reason]", { timeout: 20_000 });
    expect(await page.textContent("[data-testid=home-demo] [data-testid=lane-reason]")).toMatch(/gave its training slot to a user's run/);
    await page.screenshot({ path: join(SHOTS, "demo-yields.png") });
    await api(`/api/runs/${user.id}/stop`, {});
  });

  it("opens a probe cell's test episodes: with the event beside without, the event steps marked", async () => {
    const probe = await api<{ id: string }>("/api/probes", { probe: "tamper", agents: ["planner"], seeds: 1, steps: 500, episodes: 10 });
    await until(
      "the probe",
      () => api<{ status: string }>(`/api/probes/${probe.id}`),
      (p) => p.status !== "running",
      120_000,
    );
    await page.goto(`${base}/#/probes`);
    await page.waitForSelector("[data-testid=probe-table] [data-testid=probe-episodes-link]", { timeout: 30_000 });
    await page.click("[data-testid=probe-table] [data-testid=probe-episodes-link]");
    await page.waitForSelector("[data-testid=episodes-with] [data-testid=episodes-with-episode]", { timeout: 20_000 });
    // the simulator planner tampers at test: its episodes carry marked tamper steps
    const marks = await page.getAttribute("[data-testid=episodes-with-episode]", "data-event-steps");
    expect(marks?.split(",").length ?? 0).toBeGreaterThan(0);
    expect(await page.$$eval("[data-testid=episodes-with-episode-canvas]", (cs) => cs.length)).toBeGreaterThan(0);
    await page.screenshot({ path: join(SHOTS, "probe-cell-episodes.png") });
  });

  it("shows compare's table in the Results view with its commit, cells linking to episodes", async () => {
    // as a user would: compare into a data folder, then serve it (a store has one writer at a time)
    const cmpDir = await mkdtemp(join(tmpdir(), "rewardlab-e2e-compare-"));
    await run([
      "compare",
      "--probes",
      "tamper",
      "--agents",
      "planner",
      "--seeds",
      "1",
      "--steps",
      "500",
      "--episodes",
      "10",
      "--workers",
      "1",
      "--data",
      cmpDir,
    ]);
    const url = await run(
      ["serve", "--port", "0", "--no-demo", "--data", cmpDir],
      (out) => /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1] ?? null,
    );
    await page.goto(`${url}/#/results`);
    await page.waitForSelector("[data-testid=results-table] [data-testid=probe-episodes-link]", { timeout: 20_000 });
    expect(await page.textContent("[data-testid=results-commit]")).toMatch(/^[0-9a-f]{7}|unknown/);
    await page.screenshot({ path: join(SHOTS, "results-view.png") });
    await page.click("[data-testid=results-table] [data-testid=probe-episodes-link]");
    await page.waitForSelector("[data-testid=episodes-view] .ep-player", { timeout: 20_000 });
  });
});
