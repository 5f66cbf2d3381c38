/**
 * The command line's choice of code (bin/entry.js): the compiled dist/ while it
 * is at least as new as every source, the TypeScript through tsx when it is
 * missing, older than a source, or a plugin is loaded.
 */
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { ROOT, cli } from "./spawn-cli.ts";
// @ts-expect-error: a plain JavaScript module without types
import { SOURCE_DIRS, SOURCE_FILES, chooseEntry } from "../../bin/entry.js";

const dir = mkdtempSync(join(tmpdir(), "rewardlab-entry-"));
const root = pathToFileURL(`${dir}/`);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Writes a file with the given modification time (seconds). */
function put(path: string, time: number): void {
  mkdirSync(join(dir, path, ".."), { recursive: true });
  writeFileSync(join(dir, path), "x");
  utimesSync(join(dir, path), time, time);
}

describe("which code the command line runs", () => {
  it("dist/ while current; tsx when dist/ is missing, older than any source, or a plugin is loaded", () => {
    for (const d of SOURCE_DIRS as string[]) put(`${d}a/b.ts`, 1000);
    for (const f of SOURCE_FILES as string[]) put(f, 1000);
    expect(chooseEntry(root, ["envs"])).toEqual({ use: "tsx", reason: "dist/ is not built" });
    put("dist/.stamp", 2000);
    expect(chooseEntry(root, ["envs"])).toEqual({ use: "dist" });
    expect(chooseEntry(root, ["--plugin", "x.ts", "envs"])).toEqual({ use: "tsx", reason: "plugins import the sources" });
    expect(chooseEntry(root, ["--plugin=x.ts", "envs"]).use).toBe("tsx");
    // a source edited after the build, however deep
    put("agents/a/b.ts", 3000);
    expect(chooseEntry(root, ["envs"])).toEqual({ use: "tsx", reason: "dist/ is older than the sources" });
    put("dist/.stamp", 3000);
    expect(chooseEntry(root, ["envs"]).use).toBe("dist");
    put("tsconfig.build.json", 4000);
    expect(chooseEntry(root, ["envs"]).use).toBe("tsx");
  });
});

describe("the command line as started", () => {
  it("trains an agent whose update runs tfjs autodiff (every module it needs is loaded by the command line alone)", async () => {
    const config = { simulations: 2, updateEvery: 20, gradientSteps: 1, batchSize: 4, hiddenSizes: [8] };
    const data = join(dir, "data");
    const args = ["train", "--env", "GoalShift-v0", "--variant", "train", "--agent", "expit", "--steps", "40", "--backend", "cpu"];
    const r = await cli([...args, "--config", JSON.stringify(config), "--data", data]);
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.code).toBe(0);
  }, 120_000);
});

describe("what the command line loads", () => {
  /** Runs main() on `args` from the sources; true when TensorFlow.js was loaded (its engine is a global once imported). */
  const loadsTf = (args: string[]): Promise<boolean> =>
    new Promise((res, rej) => {
      const script = `const { main } = await import("./experiments/cli.ts"); await main(${JSON.stringify(args)}); console.error("tf=" + typeof globalThis._tfengine);`;
      const p = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
        cwd: ROOT,
        stdio: ["ignore", "ignore", "pipe"],
      });
      let err = "";
      p.stderr.on("data", (c: Buffer) => (err += c.toString()));
      p.on("error", rej);
      p.on("close", () => (/tf=(undefined|object)/.test(err) ? res(err.includes("tf=object")) : rej(new Error(err))));
    });

  it("lists environments without the agents or TensorFlow.js; a verb about runs loads them", async () => {
    expect(await loadsTf(["envs"])).toBe(false);
    expect(await loadsTf(["--data", join(dir, "d"), "runs"])).toBe(true);
  }, 120_000);
});
