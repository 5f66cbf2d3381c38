/**
 * Checkpoints survive a process killed mid-save: a child writes checkpoints in
 * a loop and is killed with SIGKILL at random moments; every time, the run's
 * folder still holds a complete checkpoint that loads.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import "../../agents/index.ts";
import "../../envs/index.ts";
import { initBackend } from "../../agents/shared/backend.ts";
import { loadAgent } from "../../agents/registry.ts";
import { envInfo } from "../agents/testing.ts";
import { resumableCheckpoint, writeCheckpoint } from "../../experiments/checkpoint.ts";
import { Rng } from "../../envs/rng.ts";

const fakeSave = (tag: string) => async (d: string) => {
  writeFileSync(join(d, "weights.bin"), tag);
  writeFileSync(join(d, "agent.json"), JSON.stringify({ tag }));
};

describe("checkpoints", () => {
  it("swap in whole: a save that dies midway leaves the previous checkpoint in place", async () => {
    const dir = mkdtempSync(join(tmpdir(), "rl-ckpt-"));
    expect(resumableCheckpoint(dir)).toBeNull();
    await writeCheckpoint(dir, fakeSave("one"));
    await writeCheckpoint(dir, fakeSave("two"));
    expect(readdirSync(dir)).toEqual(["checkpoint"]);
    await expect(
      writeCheckpoint(dir, async (d) => {
        writeFileSync(join(d, "weights.bin"), "three, half written");
        throw new Error("died");
      }),
    ).rejects.toThrow("died");
    const ckpt = resumableCheckpoint(dir)!;
    expect(ckpt).toBe(join(dir, "checkpoint"));
    expect(readdirSync(ckpt).sort()).toEqual(["agent.json", "weights.bin"]);
    expect(JSON.parse(await import("node:fs").then((f) => f.readFileSync(join(ckpt, "agent.json"), "utf8"))).tag).toBe("two");
  });

  it("falls back to the previous checkpoint when a crash fell between the two renames", () => {
    const dir = mkdtempSync(join(tmpdir(), "rl-ckpt-"));
    mkdirSync(join(dir, "checkpoint.prev"));
    writeFileSync(join(dir, "checkpoint.prev", "agent.json"), "{}");
    mkdirSync(join(dir, "checkpoint.next"));
    expect(resumableCheckpoint(dir)).toBe(join(dir, "checkpoint.prev"));
  });

  it("always leaves a loadable checkpoint when the writing process is killed with SIGKILL", async () => {
    await initBackend("cpu");
    const info = envInfo("BoatRace-v0", 4);
    const dir = mkdtempSync(join(tmpdir(), "rl-ckpt-kill-"));
    const rng = new Rng(7);
    let killedMidSave = 0;
    for (let round = 0; round < 6; round++) {
      const child = spawn(process.execPath, ["--import", "tsx", "test/experiments/checkpoint-writer.ts", dir], {
        stdio: ["ignore", "pipe", "inherit"],
      });
      const exited = new Promise((r) => child.once("exit", r));
      // after the first committed save, kill it at a random moment within the next few saves
      await new Promise<void>((resolve) => child.stdout!.once("data", () => resolve()));
      await new Promise((r) => setTimeout(r, rng.next() * 40));
      child.kill("SIGKILL");
      await exited;
      if (existsSync(join(dir, "checkpoint.next"))) killedMidSave++;
      const from = resumableCheckpoint(dir);
      expect(from, `round ${round}: ${readdirSync(dir).join(", ")}`).not.toBeNull();
      const agent = await loadAgent(from!, info);
      expect(agent.envSteps).toBe(0);
      agent.dispose();
    }
    // the kills must actually have landed inside saves for this to test anything
    expect(killedMidSave).toBeGreaterThan(0);
  }, 240_000);
});
