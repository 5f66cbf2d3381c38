/**
 * The command line as a user meets it: the real CLI spawned with
 * `node bin/rewardlab.js`. Every user error prints one short line (a
 * did-you-mean included) and exits 2, never a stack or minified source; an
 * internal error prints a short message and where the trace was written, and
 * exits 1; help lists every flag with its default and choices; `train --out`
 * then `eval --agent-dir` works.
 */
import { existsSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { ROOT, cli } from "./spawn-cli.ts";

const lines = (s: string) => s.split("\n").filter((l) => l.trim() !== "");

let dir = "";
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "rewardlab-cli-"));
  await writeFile(join(dir, "trailing-comma.json"), '{"lr": 0.001,}\n');
  await mkdir(join(dir, "empty"));
});

describe("user errors: one line, exit code 2, no source dump", () => {
  const cases: [string, () => string[], RegExp][] = [
    [
      "a config file with a trailing comma",
      () => ["train", "--env", "GoalShift-v0", "--config", join(dir, "trailing-comma.json")],
      /not valid JSON.*line 1, column 14/,
    ],
    [
      "a missing config file",
      () => ["train", "--env", "GoalShift-v0", "--config", join(dir, "missing.json")],
      /missing\.json: no such file/,
    ],
    ["a missing --agent-dir", () => ["eval", "--agent-dir", join(dir, "nowhere")], /no such folder/],
    ["an --agent-dir without an agent", () => ["eval", "--agent-dir", join(dir, "empty")], /no saved agent there/],
    ["--steps -5", () => ["train", "--env", "GoalShift-v0", "--steps", "-5"], /'--steps <n>' argument '-5' is invalid.*positive integer/],
    ["--backend gpu", () => ["train", "--env", "GoalShift-v0", "--backend", "gpu"], /Allowed choices are tensorflow, wasm, cpu/],
    ["probe --seeds 0", () => ["probe", "tamper", "--seeds", "0"], /'--seeds <n>' argument '0' is invalid/],
    ["probe --agents ppo,dqn", () => ["probe", "tamper", "--agents", "ppo,dqn"], /agent `dqn` doesn't exist.*Did you mean `ppo`/],
    ["an unknown probe", () => ["probe", "tampr"], /probe `tampr` doesn't exist.*Did you mean `tamper`/],
    ["a mistyped verb", () => ["trian"], /unknown command 'trian' \(did you mean train\?\)/],
    ["a mistyped flag", () => ["train", "--env", "GoalShift-v0", "--stpes", "5"], /unknown option '--stpes' \(did you mean --steps\?\)/],
    ["an unknown flag", () => ["train", "--env", "GoalShift-v0", "--bogus"], /unknown option '--bogus'/],
    ["a missing --levels folder", () => ["--levels", join(dir, "nonexistent-dir"), "envs"], /--levels .*nonexistent-dir: no such folder/],
    ["a missing --plugin file", () => ["--plugin", join(dir, "nope.ts"), "envs"], /--plugin .*nope\.ts: no such file/],
    ["an unknown env", () => ["train", "--env", "GoalShfit-v0"], /GoalShift-v0/],
    [
      "a variant the env lacks",
      () => ["play", "GoalShift-v0", "--actions", "r", "--variant", "nope"],
      /not a variant of GoalShift-v0; use one of train, test/,
    ],
    ["an unknown run id", () => ["report", "abcdef12", "--data", dir], /no run abcdef12/],
  ];
  it.each(cases)("%s", async (_what, args, message) => {
    const r = await cli(args());
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(lines(r.stderr)).toHaveLength(1);
    expect(r.stderr.length).toBeLessThan(500);
    expect(r.stderr).toMatch(/^error: /);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});

describe("internal errors", () => {
  it("print a short message and the file holding the full trace, exit 1", async () => {
    // an environment whose constructor throws a huge error, as tfjs-wasm's do (its message carries minified source)
    const plugin = join(dir, "crash.mts");
    await writeFile(
      plugin,
      `import { register } from ${JSON.stringify(join(ROOT, "envs/registry.ts"))};
register({
  id: "Crash-v0", description: "throws", doc: "", maxEpisodeSteps: 5, rewardRange: [0, 1], variants: ["default"], events: ["x"],
  configSchema: { type: "object", additionalProperties: false, properties: { variant: { enum: ["default"], default: "default" } } },
  create: () => { throw new TypeError("wasm: " + "var a=function(){return 1};".repeat(2000)); },
});
`,
    );
    const r = await cli(["--plugin", plugin, "play", "Crash-v0", "--actions", "r"]);
    expect(r.code).toBe(1);
    const out = lines(r.stderr);
    expect(out.length).toBe(2);
    expect(r.stderr.length).toBeLessThan(600);
    expect(out[0]).toMatch(/^internal error: TypeError: wasm: /);
    const file = /the full trace is in (\S+);/.exec(out[1]!)?.[1];
    expect(file && existsSync(file)).toBe(true);
    const trace = readFileSync(file!, "utf8");
    expect(trace).toContain("var a=function(){return 1};".repeat(100));
    expect(trace).toMatch(/at .*crash\.mts/);
  });
});

describe("help", () => {
  it("train --help lists every flag with its default, the agent names and the backends", async () => {
    const r = await cli(["train", "--help"]);
    expect(r.code).toBe(0);
    const help = r.stdout.replace(/\s+/g, " ");
    for (const flag of ["--env", "--variant", "--agent", "--config", "--steps", "--seed", "--backend", "--out", "--force", "--data"])
      expect(help).toContain(flag);
    expect(help).toMatch(/--agent <name> .*choices: "reinforce", "ppo", "planner".*default: "ppo"/);
    expect(help).toMatch(/--steps <n> .*default: 100000/);
    expect(help).toMatch(/--backend <name> .*choices: "tensorflow", "wasm", "cpu"/);
  });

  it("--version prints the package version", async () => {
    const r = await cli(["--version"]);
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string };
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(pkg.version);
  });
});

describe("train, then eval and watch the saved agent", () => {
  it("train --out DIR then eval --agent-dir DIR; a second train into DIR is refused without --force", async () => {
    const out = join(dir, "agent");
    const t = await cli([
      "train",
      "--env",
      "GoalShift-v0",
      "--agent",
      "reinforce",
      "--steps",
      "300",
      "--episodes",
      "3",
      "--backend",
      "cpu",
      "--out",
      out,
      "--json",
    ]);
    expect(t.stderr).not.toMatch(/error/);
    expect(t.code).toBe(0);
    expect(JSON.parse(t.stdout).dir).toBe(out);

    const e = await cli(["eval", "--agent-dir", out, "--episodes", "4", "--backend", "cpu", "--json"]);
    expect(e.code).toBe(0);
    const ev = JSON.parse(e.stdout);
    // the env and variant come from what train saved
    expect(ev).toMatchObject({ env: "GoalShift-v0", variant: "train", agent: "reinforce" });
    expect(ev.eval.episodes).toBe(4);

    const again = await cli(["train", "--env", "GoalShift-v0", "--agent", "reinforce", "--steps", "300", "--out", out]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already holds a trained agent.*--force/);

    const w = await cli(["watch", "--agent-dir", join(out, "checkpoint"), "--backend", "cpu", "--fps", "1000"]);
    expect(w.code).toBe(0);
    const frames = w.stdout.split("\n\n").filter((f) => f.includes("episode 1/1"));
    expect(frames.length).toBeGreaterThan(1);
    // every frame draws the agent once
    for (const f of frames) expect(f.split("A").length - 1).toBeGreaterThanOrEqual(1);
    expect(frames[0]).toMatch(/t 0\n#+\n/);
  });

  it("--env-config sets the env's settings in train, and eval keeps them unless told otherwise", async () => {
    const out = join(dir, "exposed");
    const base = ["--backend", "cpu", "--episodes", "5", "--json"];
    // exposure 1: every episode has the device reachable, and the simulator planner goes for it every time
    const t = await cli([
      "train",
      "--env",
      "TamperGrid-v0",
      "--variant",
      "exposed",
      "--env-config",
      '{"exposure":1}',
      "--agent",
      "planner",
      "--steps",
      "200",
      "--out",
      out,
      ...base,
    ]);
    expect(t.stderr).not.toMatch(/error/);
    expect(JSON.parse(t.stdout).eval.eventRates.tamper).toBe(1);
    const kept = await cli(["eval", "--agent-dir", out, ...base]);
    expect(JSON.parse(kept.stdout).eval.eventRates.tamper).toBe(1);
    const walled = await cli(["eval", "--agent-dir", out, "--env-config", '{"exposure":0}', ...base]);
    expect(JSON.parse(walled.stdout).eval.eventRates.tamper ?? 0).toBe(0);
    const bad = await cli(["train", "--env", "TamperGrid-v0", "--env-config", '{"exposur":1}', "--steps", "10"]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/exposur.*unknown key/);
  });

  it("train without --out saves under the data folder, a new folder per run", async () => {
    const data = join(dir, "data");
    const args = ["train", "--env", "GoalShift-v0", "--agent", "planner", "--steps", "50", "--episodes", "1", "--backend", "cpu", "--json"];
    const a = await cli(args, { REWARDLAB_DATA: data });
    const b = await cli(args, { REWARDLAB_DATA: data });
    expect(a.code).toBe(0);
    expect(b.code).toBe(0);
    expect(JSON.parse(a.stdout).dir).toBe(join(data, "agents", "GoalShift-v0-planner-s0"));
    expect(JSON.parse(b.stdout).dir).toBe(join(data, "agents", "GoalShift-v0-planner-s0-2"));
  });
});
