/** threadCpuSeconds: the calling thread's CPU time, which work advances and waiting does not. */
import { expect, it } from "vitest";
import { threadCpuSeconds } from "../../experiments/cputime.ts";

it("counts the calling thread's CPU time: work advances it, waiting does not", async () => {
  const t0 = threadCpuSeconds();
  expect(t0).not.toBeNull(); // Linux (the suite's platform) reports per-thread CPU time
  // a fixed amount of work: however loaded the machine, it costs this thread the same CPU time
  let x = 0;
  for (let i = 0; i < 3e7; i++) x += Math.sqrt(i);
  const t1 = threadCpuSeconds()!;
  expect(x).toBeGreaterThan(0);
  expect(t1 - t0!).toBeGreaterThan(0.005);
  const work = t1 - t0!;
  await new Promise((r) => setTimeout(r, 300));
  expect(threadCpuSeconds()! - t1).toBeLessThan(Math.max(0.05, work / 2));
});
