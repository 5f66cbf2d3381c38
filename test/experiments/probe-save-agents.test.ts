/**
 * `probe --save-agents`: every policy a probe trained is saved as `train --out`
 * saves one (checkpoint/ and train.json), and `eval` and `steer` load exactly
 * those policies; folder names per entry, arm and seed; a folder that already
 * holds files is refused; on the Redis queue the workers save them.
 */
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { savedAgentName } from "../../experiments/probes/index.ts";
import { startRedis, startWorker, stopAll } from "./redis.ts";
import { cli } from "./spawn-cli.ts";

describe("probe --save-agents", () => {
  let dir = "";
  let saved = "";
  let probeOut = "";
  const probeMaze = (args: string[]) => ["--data", join(dir, "data"), "probe", "maze", "--agents", "ppo", ...args];
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "rewardlab-save-agents-"));
    saved = join(dir, "agents");
    const r = await cli(probeMaze(["--seeds", "2", "--steps", "2048", "--episodes", "2", "--workers", "1", "--save-agents", saved]));
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    probeOut = r.stdout;
  }, 120_000);

  it("saves one folder per seed with the checkpoint and what was trained", () => {
    expect(probeOut).toContain(`saved 2 trained agent(s) to ${saved}`);
    for (const seed of [0, 1]) {
      const one = join(saved, `ppo-s${seed}`);
      expect(existsSync(join(one, "checkpoint", "agent.json"))).toBe(true);
      const trained = JSON.parse(readFileSync(join(one, "train.json"), "utf8"));
      expect(trained).toMatchObject({ env: "Maze-v0", variant: "train", agent: "ppo", seed, steps: 2048 });
      expect(trained.config.network).toBe("cnn");
    }
  });

  it("eval and steer load the saved policies", async () => {
    const e = await cli(["--data", join(dir, "data"), "eval", "--agent-dir", join(saved, "ppo-s1"), "--episodes", "2", "--json"]);
    expect(e.code).toBe(0);
    expect(JSON.parse(e.stdout)).toMatchObject({ env: "Maze-v0", agent: "ppo", steps: 2048 });
    const s = await cli([
      ...["--data", join(dir, "data"), "steer"],
      ...["--agent-dir", join(saved, "ppo-s0"), "--agent-dir", join(saved, "ppo-s1")],
      ...[
        "--layer",
        "s1/res0",
        "--coeffs",
        "-1,0",
        "--mazes",
        "2",
        "--pairs",
        "2",
        "--targets",
        "0",
        "--no-references",
        "--other-maze",
        "--json",
      ],
    ]);
    expect(s.code).toBe(0);
    // steer reads each policy's seed from its train.json
    expect(JSON.parse(s.stdout)).toMatchObject({ seeds: [0, 1], vector: "other-maze" });
  }, 60_000);

  it("refuses a folder that already holds files", async () => {
    const r = await cli(probeMaze(["--seeds", "1", "--steps", "64", "--save-agents", saved]));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--save-agents .*not an empty folder; choose a new folder/);
  });

  it("names a job's folder by entry, arm and seed", () => {
    expect(savedAgentName({ agent: "ppo", arm: "", seed: 0 })).toBe("ppo-s0");
    expect(savedAgentName({ agent: "planner", entry: "planner:neural", arm: "", seed: 2 })).toBe("planner-neural-s2");
    expect(savedAgentName({ agent: "ppo", arm: "exposure=0.5", seed: 1 })).toBe("ppo-exposure-0.5-s1");
  });

  describe("on the Redis queue", () => {
    afterAll(stopAll);
    it("the workers save each job's policy where the coordinator says", async () => {
      const url = `redis://127.0.0.1:${await startRedis()}`;
      startWorker(url, 60_000);
      const onQueue = join(dir, "queued");
      const r = await cli(probeMaze(["--seeds", "1", "--steps", "2048", "--episodes", "2", "--queue", url, "--save-agents", onQueue]));
      expect(r.code).toBe(0);
      const trained = JSON.parse(readFileSync(join(onQueue, "ppo-s0", "train.json"), "utf8"));
      expect(trained).toMatchObject({ env: "Maze-v0", agent: "ppo", seed: 0, steps: 2048 });
      expect(existsSync(join(onQueue, "ppo-s0", "checkpoint", "agent.json"))).toBe(true);
    }, 90_000);
  });
});
