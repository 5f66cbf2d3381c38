/**
 * Browser test of what a new user meets (issue 14), against the real server
 * with its demo on: the home page lands on the live demo; the demo stops when
 * nobody watches and resumes for the next visitor; a running probe shows jobs
 * done per agent and seed with an ETA; runs that differ only by seed are drawn
 * as a mean with a min-max band, one panel per environment, one stable colour
 * per run; charts export CSV and PNG; the Intervene panel's Apply button is on
 * screen at 1440x900. Screenshots go to /tmp/rewardlab-e2e-shots/.
 */
import { readFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { canvasChanges, canvasDrawn, type E2eSession, openSession, until } from "./browser.ts";

const SHOTS = "/tmp/rewardlab-e2e-shots";
/** Seconds without a watcher before the demo stops (short, for the test). */
const DEMO_IDLE = 8;

let session: E2eSession | null = null;
let base = "";
let page: Page;

interface Run {
  id: string;
  status: string;
  envSteps: number;
  spec: { env: string; agent: string; seed: number; label?: string };
}

const api = <T>(method: string, path: string, body?: unknown) => session!.server.api<T>(method, path, body);

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

const demoRuns = async () => (await api<Run[]>("GET", "/api/runs")).filter((r) => r.spec.label === "demo");

describe.skipIf(!process.env.REWARDLAB_E2E)("for the people who use it", () => {
  beforeAll(async () => {
    await mkdir(SHOTS, { recursive: true });
    session = await openSession({ args: ["--demo-idle", String(DEMO_IDLE)], context: { acceptDownloads: true } });
    base = session.server.base;
    page = session.page;
  });

  afterAll(async () => {
    await session?.close();
  });

  it("a first visit lands on the live demo: two runs side by side, training, canvases moving, curves growing", async () => {
    await page.goto(`${base}/#/`);
    await page.waitForSelector("[data-testid=home-demo] [data-testid=compare-lane]", { timeout: 30_000 });
    expect(await page.$$eval("[data-testid=home-demo] [data-testid=compare-lane]", (l) => l.length)).toBe(2);
    expect(await page.textContent("[data-testid=home-demo] h2")).toMatch(/Live demo: ppo and planner on BoatRace-v0/);
    await until(
      "both demo runs training",
      async () => (await demoRuns()).map((r) => r.status),
      (s) => s.length === 2 && s.every((x) => x === "running"),
      60_000,
    );
    const canvas = "[data-testid=home-demo] [data-testid=compare-lane] canvas";
    await canvasDrawn(page, canvas, "a frame on the demo canvas", 60_000);
    await canvasChanges(page, canvas, "the demo canvas to move", 30_000);
    const chart = "[data-testid=home-demo] [data-testid=chart-compare-return-BoatRace-v0]";
    await until(
      "the demo's return curves",
      async () => Number((await page.getAttribute(chart, "data-points")) ?? 0),
      (n) => n > 2,
      120_000,
    );
    // the runs list and the launcher are still there below
    await page.waitForSelector("[data-testid=launcher]");
    await shot("home-demo");
  });

  it("the Intervene panel's Apply button is on screen at 1440x900", async () => {
    const [run] = await demoRuns();
    await page.goto(`${base}/#/run/${run!.id}`);
    await page.waitForSelector("[data-testid=intervene-apply]");
    const box = await page.locator("[data-testid=intervene-apply]").boundingBox();
    expect(box).not.toBeNull();
    expect(box!.y + box!.height).toBeLessThanOrEqual(900);
    await page.screenshot({ path: join(SHOTS, "run-view-1440x900.png") });
  });

  it("a running probe shows jobs done of the total, per agent and seed, with a time estimate", async () => {
    await page.goto(`${base}/#/probes`);
    await page.waitForSelector("[data-testid=probe-list]");
    const started = await api<{ id: string }>("POST", "/api/probes", {
      probe: "tamper",
      agents: ["planner", "reinforce"],
      seeds: 3,
      steps: 4000,
      episodes: 5,
    });
    await page.waitForSelector(`[data-testid=probe-row][data-probe-id="${started.id}"]`, { timeout: 20_000 });
    await page.click(`[data-testid=probe-row][data-probe-id="${started.id}"]`);
    await page.waitForSelector("[data-testid=probe-progress]", { timeout: 20_000 });
    expect(await page.getAttribute("[data-testid=probe-progress]", "data-total")).toBe("6");
    expect(await page.$$eval("[data-testid=probe-progress-agent]", (l) => l.map((e) => (e as HTMLElement).dataset.agent))).toEqual([
      "planner",
      "reinforce",
    ]);
    expect(await page.$$eval("[data-testid=probe-progress-agent] .seed-chip", (l) => l.length)).toBe(6);
    // part-way: some jobs done, an estimate of the time left, the done jobs marked
    const done = await until(
      "a job of the probe to finish",
      async () => Number((await page.getAttribute("[data-testid=probe-progress]", "data-done").catch(() => null)) ?? -1),
      (n) => n >= 1,
      180_000,
      200,
    );
    if (done < 6) {
      // one reading of the page (more jobs may finish while we look)
      const seen = await page.evaluate((id) => {
        const box = document.querySelector<HTMLElement>("[data-testid=probe-progress]");
        return box
          ? {
              done: Number(box.dataset.done),
              chips: box.querySelectorAll(".seed-chip.done").length,
              eta: box.querySelector("[data-testid=probe-eta]")?.textContent ?? "",
              row: document.querySelector(`[data-testid=probe-row][data-probe-id="${id}"]`)?.textContent ?? "",
            }
          : null;
      }, started.id);
      if (seen && seen.done < 6) {
        expect(seen.chips).toBe(seen.done);
        expect(seen.eta).toMatch(/about .* left/);
        expect(seen.row).toMatch(new RegExp(`${seen.done}/6 jobs`));
        await shot("probe-progress");
      }
    }
    await until(
      "the probe to complete",
      async () => (await api<{ status: string }>("GET", `/api/probes/${started.id}`)).status,
      (s) => s === "completed",
      240_000,
      1000,
    );
    await page.waitForSelector("[data-testid=probe-progress]", { state: "detached", timeout: 10_000 });
  });

  it("the demo stops once nobody has watched it for a while", async () => {
    // nobody has watched the demo runs since the run view was left
    const runs = await until(
      "the demo to stop without watchers",
      async () => (await demoRuns()).map((r) => r.status),
      (s) => s.every((x) => x === "stopped"),
      (DEMO_IDLE + 30) * 1000,
      1000,
    );
    expect(runs).toEqual(["stopped", "stopped"]);
  });

  it("runs that differ only by seed are one mean curve with a min-max band, a panel per environment, colours stable", async () => {
    const make = (env: string, seed: number) =>
      api<{ id: string }>("POST", "/api/runs", { env, agent: "reinforce", seed, steps: 6000, evalEpisodes: 2, config: { numEnvs: 1 } });
    const a = await make("GoalShift-v0", 1);
    const b = await make("GoalShift-v0", 2);
    const c = await make("TamperGrid-v0", 1);
    await until(
      "the three runs to finish",
      async () => {
        const all = await api<Run[]>("GET", "/api/runs");
        return [a, b, c].map((x) => all.find((r) => r.id === x.id)?.status);
      },
      (s) => s.every((x) => x === "completed"),
      240_000,
      1000,
    );
    await page.goto(`${base}/#/compare?ids=${a.id},${b.id},${c.id}`);
    const goal = "[data-testid=chart-compare-return-GoalShift-v0]";
    /** Waits for the GoalShift panel's count of seed groups. */
    const groups = (what: string, count: string, timeoutMs: number) =>
      until(
        what,
        () => page.getAttribute(goal, "data-groups"),
        (g) => g === count,
        timeoutMs,
      );
    await page.waitForSelector(goal, { timeout: 30_000 });
    await page.waitForSelector("[data-testid=chart-compare-return-TamperGrid-v0]", { timeout: 30_000 });
    await groups("the seed group", "1", 30_000);
    await until(
      "the group's curves",
      async () => Number((await page.getAttribute(goal, "data-points")) ?? 0),
      (n) => n > 10,
      30_000,
    );
    const legend = await page.$$eval(`${goal} .u-legend .u-series`, (l) => l.map((e) => e.textContent ?? ""));
    expect(legend.join(" ")).toMatch(/reinforce ×2 seeds return \(mean\)/);
    await shot("compare-seed-bands");

    // one colour per run, whatever else is selected
    const laneColour = () => page.getAttribute(`[data-testid=compare-lane][data-run-id="${b.id}"]`, "style");
    const withThree = await laneColour();
    await page.goto(`${base}/#/compare?ids=${b.id}`);
    await page.waitForSelector(`[data-testid=compare-lane][data-run-id="${b.id}"]`);
    expect(await laneColour()).toBe(withThree);

    // ungrouped, each seed is its own pair of lines
    await page.goto(`${base}/#/compare?ids=${a.id},${b.id},${c.id}`);
    await groups("the seed group", "1", 30_000);
    await page.uncheck("[data-testid=compare-group]");
    await groups("ungrouped", "0", 10_000);
    await page.check("[data-testid=compare-group]");
    await groups("grouped again", "1", 10_000);
  });

  it("exports a chart as CSV (the band's min <= mean <= max) and as PNG", async () => {
    const goal = "chart-compare-return-GoalShift-v0";
    await until(
      "the group's curves",
      async () => Number((await page.getAttribute(`[data-testid=${goal}]`, "data-points")) ?? 0),
      (n) => n > 10,
      30_000,
    );
    const [csvDownload] = await Promise.all([page.waitForEvent("download"), page.click(`[data-testid=${goal}-csv]`)]);
    expect(csvDownload.suggestedFilename()).toBe("rewardlab-compare-return-GoalShift-v0.csv");
    const csv = readFileSync((await csvDownload.path())!, "utf8")
      .trim()
      .split("\n");
    const header = csv[0]!.split(",");
    expect(header[0]).toBe("env steps");
    const col = (name: string) => header.indexOf(name);
    const mean = col("reinforce ×2 seeds return (mean)");
    const hi = col("reinforce ×2 seeds return max");
    const lo = col("reinforce ×2 seeds return min");
    expect([mean, hi, lo].every((i) => i > 0)).toBe(true);
    let spread = 0;
    let rows = 0;
    for (const line of csv.slice(1)) {
      const v = line.split(",").map((x) => (x === "" ? null : Number(x)));
      if (v[mean] === null || v[hi] === null || v[lo] === null) continue;
      rows++;
      expect(v[lo]!).toBeLessThanOrEqual(v[mean]! + 1e-9);
      expect(v[mean]!).toBeLessThanOrEqual(v[hi]! + 1e-9);
      spread = Math.max(spread, v[hi]! - v[lo]!);
    }
    expect(rows).toBeGreaterThan(10);
    // two seeds do not learn identically
    expect(spread).toBeGreaterThan(0);

    const [pngDownload] = await Promise.all([page.waitForEvent("download"), page.click(`[data-testid=${goal}-png]`)]);
    const png = readFileSync((await pngDownload.path())!);
    expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    expect(png.length).toBeGreaterThan(2000);
  });

  it("an agent that searches gets a 'search visits' overlay painting its root visit counts on the grid", async () => {
    const run = await api<{ id: string }>("POST", "/api/runs", {
      env: "TamperGrid-v0",
      agent: "expit",
      seed: 2,
      steps: 3000,
      evalEpisodes: 2,
      config: { simulations: 8, updateEvery: 250 },
    });
    await page.goto(`${base}/#/run/${encodeURIComponent(run.id)}`);
    // the toggle appears with the first update that carries search statistics
    await page.waitForSelector("[data-testid=toggle-search]", { state: "visible", timeout: 60_000 });
    const searchColoured = () =>
      page.evaluate(() => {
        const c = document.querySelector("[data-testid=run-canvas]") as HTMLCanvasElement;
        const d = c.getContext("2d")!.getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        // the overlay's colour, #7cc4ff
        for (let i = 0; i < d.length; i += 4) if (Math.abs(d[i]! - 124) < 12 && Math.abs(d[i + 1]! - 196) < 12 && d[i + 2]! > 240) n++;
        return n;
      });
    const before = await searchColoured();
    await page.check("[data-testid=toggle-search]");
    await until("blue search arrows on the grid", searchColoured, (n) => n > before + 50, 15_000);
    await page.screenshot({ path: `${SHOTS}/search-visits.png` });
    await api("POST", `/api/runs/${encodeURIComponent(run.id)}/stop`).catch(() => undefined);
  });

  it("the next visitor resumes the demo", async () => {
    await page.goto(`${base}/#/`);
    await page.waitForSelector("[data-testid=home-demo] [data-testid=compare-lane]", { timeout: 30_000 });
    await until(
      "the demo to resume for a watcher",
      async () => (await demoRuns()).map((r) => r.status),
      (s) => s.every((x) => x === "running"),
      60_000,
      1000,
    );
    await shot("home-demo-resumed");
    expect(session!.pageErrors).toEqual([]);
  });
});
