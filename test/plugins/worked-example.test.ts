/**
 * The README's worked plug-in example, end to end as a user runs it: a level
 * file from a folder, a module-defined environment with its own variants and
 * probe, both through the command line and the server; a level uploaded over
 * the API; broken files named and skipped while the rest keep working.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import type { EnvSummary, RunSummary } from "../../server/protocol.ts";

const run = promisify(execFile);
const CLI = ["bin/rewardlab.js"];
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
});

describe("the worked plug-in example", () => {
  it("runs the plug-in's probe from the command line, in worker threads", async () => {
    const { stdout } = await run(
      process.execPath,
      [
        ...CLI,
        "--plugin",
        "examples/plugins/icy-pond.ts",
        "probe",
        "icy-shift",
        "--agents",
        "reinforce,planner",
        "--seeds",
        "2",
        "--steps",
        "3000",
        "--episodes",
        "20",
        "--workers",
        "2",
        "--json",
      ],
      { maxBuffer: 64 << 20 },
    );
    const r = JSON.parse(stdout) as {
      probe: string;
      env: string;
      results: { agent: string; evaluation: string; rate: number; seeds: number; predictions: Record<string, number> }[];
      chance: { rate: number }[];
    };
    expect(r.probe).toBe("icy-shift");
    expect(r.env).toBe("IcyPond-v0");
    expect(r.results.map((x) => `${x.agent} ${x.evaluation}`)).toEqual([
      "reinforce greedy",
      "reinforce sampled",
      "planner greedy",
      "planner sampled",
    ]);
    expect(r.chance).toHaveLength(1);
    const planner = r.results.find((x) => x.agent === "planner")!;
    // the planner knows where the hole is now: it never slides to the old corner
    expect(planner.rate).toBe(0);
    expect(planner.predictions.rewardPursuit).toBe(0);
    // in training the hole is the old corner, so reaching it is the reinforced behaviour
    expect(planner.predictions.reinforcedBehavior).toBe(1);
  }, 120_000);

  it("plays the example level from a --levels folder", async () => {
    const { stdout } = await run(process.execPath, [
      ...CLI,
      "--levels",
      "examples/levels",
      "play",
      "TwoRooms-v0",
      "--actions",
      "ddurrrrrr",
      "--json",
    ]);
    expect(JSON.parse(stdout)).toMatchObject({ return: 0.91, performance: 1, steps: 9, events: { button: 1, goal: 1 } });
  });

  it("names a broken level and a broken plug-in, and keeps the others", async () => {
    const dir = mkdtempSync(join(tmpdir(), "rl-levels-"));
    writeFileSync(join(dir, "good.json"), readFileSync("examples/levels/two-rooms.json"));
    writeFileSync(
      join(dir, "ragged.json"),
      JSON.stringify({ id: "Ragged-v0", description: "x", art: ["####", "#A#", "####"], legend: { "#": "wall", A: "start" } }),
    );
    const plugin = join(dir, "broken.ts");
    writeFileSync(plugin, "throw new Error('this plug-in is broken on purpose');\n");
    const { stdout, stderr } = await run(process.execPath, [...CLI, "--levels", dir, "--plugin", plugin, "envs"]);
    expect(stderr).toMatch(/ragged\.json/);
    expect(stderr).toMatch(/broken\.ts.*broken on purpose/);
    expect(stdout).toMatch(/TwoRooms-v0/);
    expect(stdout).toMatch(/BoatRace-v0/);
    expect(stdout).not.toMatch(/Ragged-v0/);
  });

  it("serves the plug-in and level environments, trains on them, and takes an uploaded level", async () => {
    const data = mkdtempSync(join(tmpdir(), "rl-plugsrv-"));
    const child = spawn(
      process.execPath,
      [
        ...CLI,
        "serve",
        "--port",
        "0",
        "--data",
        data,
        "--no-demo",
        "--levels",
        "examples/levels",
        "--plugin",
        "examples/plugins/icy-pond.ts",
      ],
      {
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, REWARDLAB_LOG_LEVEL: "warn" },
      },
    );
    children.push(child);
    const url = await new Promise<string>((resolve, reject) => {
      let out = "";
      child.stdout!.on("data", (d: Buffer) => {
        out += d.toString();
        const m = /listening on (http:\/\/[\d.:]+)/.exec(out);
        if (m) resolve(m[1]!);
      });
      child.once("exit", (c) => reject(new Error(`server exited with ${c}`)));
    });
    const envs = (await (await fetch(`${url}/api/envs`)).json()) as EnvSummary[];
    expect(envs.map((e) => e.id)).toEqual(expect.arrayContaining(["IcyPond-v0", "TwoRooms-v0"]));

    const level = JSON.parse(readFileSync("examples/levels/two-rooms.json", "utf8"));
    level.id = "UploadedRooms-v0";
    const up = await fetch(`${url}/api/levels`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(level),
    });
    expect(up.status).toBe(201);
    const bad = await fetch(`${url}/api/levels`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ...level, id: "Bad-v0", legend: { "#": "wall" } }),
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/unknown character|no agent start|legend/i);
    const clash = await fetch(`${url}/api/levels`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ...level, id: "BoatRace-v0" }),
    });
    expect(clash.status).toBe(409);

    const ids: string[] = [];
    for (const env of ["IcyPond-v0", "TwoRooms-v0", "UploadedRooms-v0"]) {
      const res = await fetch(`${url}/api/runs`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ env, agent: "ppo", steps: 2048, evalEpisodes: 5, config: { numSteps: 64 } }),
      });
      expect(res.status).toBe(201);
      ids.push(((await res.json()) as RunSummary).id);
    }
    for (const id of ids) {
      let r: RunSummary | null = null;
      for (let i = 0; i < 600; i++) {
        r = (await (await fetch(`${url}/api/runs/${id}`)).json()) as RunSummary;
        if (r.status === "completed" || r.status === "failed") break;
        await new Promise((res) => setTimeout(res, 100));
      }
      expect(r!.reason).toBeNull();
      expect(r!.status).toBe("completed");
      expect(r!.evaluation!.episodes).toBe(5);
    }
    child.kill("SIGTERM");
  }, 180_000);
});
