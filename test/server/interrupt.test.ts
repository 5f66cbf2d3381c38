/**
 * Ctrl-C during a probe outside the server (what `rewardlab probe` runs):
 * the pool terminates its worker threads, the caller gets a PoolStopped
 * error it can report, and the process ends on its own: nothing keeps a core.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../../", import.meta.url));

const script = `
import { register } from "tsx/esm/api";
register();
await import(${JSON.stringify(`${root}envs/index.ts`)});
await import(${JSON.stringify(`${root}agents/index.ts`)});
const { runProbe } = await import(${JSON.stringify(`${root}experiments/probes/index.ts`)});
console.log("started");
try {
  await runProbe({ probe: "tamper", agents: ["ppo"], seeds: 2, steps: 5000000, episodes: 5, workers: 2, backend: "cpu" });
  console.log("finished");
} catch (e) {
  console.log("caught " + e.name + ": " + e.message);
}
`;

describe("Ctrl-C during a probe", () => {
  it("terminates the probe's worker threads and hands the caller a PoolStopped error", async () => {
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
      cwd: root,
      env: { ...process.env, REWARDLAB_LOG_LEVEL: "warn" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    const deadline = Date.now() + 60_000;
    while (!out.includes("started") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    // let the worker threads start training
    await new Promise((r) => setTimeout(r, 4000));
    const t = Date.now();
    child.kill("SIGINT");
    const code = await exited;
    expect(out).toMatch(/caught PoolStopped: interrupted by SIGINT: 2 worker thread\(s\) terminated/);
    expect(out).not.toMatch(/finished/);
    expect(code).toBe(0);
    expect(Date.now() - t).toBeLessThan(15_000);
  }, 120_000);
});
