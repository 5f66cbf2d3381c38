/**
 * Browser test, the server with its defaults (the demo on): a user's run
 * starts at once while the demo trains (the run page goes from queued to
 * running without a reload, the demo lane says it gave its slot); a probe
 * cell opens that agent's and seed's test episodes (with the event beside
 * without, event steps marked); the Results view shows a comparison `compare`
 * wrote, with its commit, each per-seed rate a link to its episodes.
 * Screenshots go to /tmp/rewardlab-e2e-shots/.
 */
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { E2eServer, type E2eSession, openSession, runCli, until } from "./browser.ts";

const SHOTS = "/tmp/rewardlab-e2e-shots";
const QUIET = { REWARDLAB_LOG_LEVEL: "warn" };

let session: E2eSession | null = null;
/** The server `compare`'s data folder is served by, and that folder. */
let results: E2eServer | null = null;
let cmpDir = "";
let base = "";
let page: Page;

const api = <T>(path: string, body?: unknown): Promise<T> => session!.server.api<T>(body ? "POST" : "GET", path, body);

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
    session = await openSession({ env: QUIET });
    base = session.server.base;
    page = session.page;
  });

  afterAll(async () => {
    await session?.close();
    await results?.close();
    if (cmpDir) await rm(cmpDir, { recursive: true, force: true });
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
    // as a user would: compare into a data folder, then serve it
    cmpDir = await mkdtemp(join(tmpdir(), "rewardlab-e2e-compare-"));
    const compare = ["compare", "--probes", "tamper", "--agents", "planner", "--seeds", "1", "--steps", "500", "--episodes", "10"];
    await runCli([...compare, "--workers", "1", "--data", cmpDir], QUIET);
    results = await E2eServer.start({ dataDir: cmpDir, args: ["--no-demo"], env: QUIET });
    await page.goto(`${results.base}/#/results`);
    await page.waitForSelector("[data-testid=results-table] [data-testid=probe-episodes-link]", { timeout: 20_000 });
    expect(await page.textContent("[data-testid=results-commit]")).toMatch(/^[0-9a-f]{7}|unknown/);
    await page.screenshot({ path: join(SHOTS, "results-view.png") });
    await page.click("[data-testid=results-table] [data-testid=probe-episodes-link]");
    await page.waitForSelector("[data-testid=episodes-view] .ep-player", { timeout: 20_000 });
  });
});
