/**
 * Browser test of the steering view: a Maze-v0 PPO run trained for a few
 * updates over the API, then #/run/:id/steer in chromium: the per-square
 * action arrows are drawn, and moving the cheese-vector coefficient changes
 * them (the probabilities the canvas draws and its pixels). Runs only under
 * vitest.e2e.config.ts (it sets REWARDLAB_E2E).
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type E2eSession, openSession, ROOT, until } from "./browser.ts";

let session: E2eSession | null = null;

describe.skipIf(!process.env.REWARDLAB_E2E)("steering view", () => {
  beforeAll(async () => {
    session = await openSession({ args: ["--no-demo"], context: { viewport: { width: 1200, height: 900 } } });
  });

  afterAll(async () => {
    await session?.close();
  });

  it("draws the policy's arrows on a maze run and changes them with the cheese-vector coefficient", async () => {
    const { server, page, pageErrors } = session!;
    const run = await server.api<{ id: string }>("POST", "/api/runs", {
      env: "Maze-v0",
      agent: "ppo",
      steps: 2048,
      seed: 0,
      evalEpisodes: 2,
      config: { numEnvs: 4, numSteps: 128 },
    });
    const done = await until(
      `run ${run.id} to finish`,
      () => server.api<{ status: string }>("GET", `/api/runs/${run.id}`),
      (r) => r.status === "completed" || r.status === "failed",
      120_000,
      500,
    );
    expect(done.status).toBe("completed");
    await page.goto(`${server.base}/#/run/${run.id}`);
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
    // the maze's own cheese vector instead of the mean: the arrows change again
    const meanProbs = await page.getAttribute("[data-testid=steer-view]", "data-probs");
    await page.selectOption("[data-testid=steer-vector]", "own");
    await page.waitForFunction((old) => document.querySelector("[data-testid=steer-view]")?.getAttribute("data-probs") !== old, meanProbs, {
      timeout: 60_000,
    });
    await page.screenshot({ path: join(ROOT, "test-results", "steer.png"), fullPage: true });
    expect(pageErrors).toEqual([]);
  });
});
