import "../envs/index.ts";
import { make } from "../envs/index.ts";
import { SimulatorModel } from "../agents/planner.ts";
for (const [id, cfg] of [["BoatRace-v0", {}], ["TamperGrid-v0", { variant: "test" }], ["CoastRunners-v0", {}], ["TomatoWatering-v0", {}]] as const) {
  const live = make(id, cfg); live.reset({ seed: 0 });
  const snap = live.snapshot(); const key = live.stateKey();
  let steps = 0, ms = 0, n = 0;
  while (ms < 1000) {
    const m = new SimulatorModel({ envId: id, envConfig: cfg, reward: "keep", objective: "reward", discount: 0.99, horizon: 100, maxStates: 20000, samples: 8 });
    const t0 = performance.now();
    m.ensureTable(snap, key);
    ms += performance.now() - t0; steps += m.simSteps; n++;
    if (n === 1) { steps = 0; ms = 0; }
  }
  // raw restore+step
  const sim = make(id, cfg, { maxEpisodeSteps: 2 ** 30 }); sim.reset({ seed: 0 });
  let t0 = performance.now(); let k = 0;
  for (; k < 300000; k++) { sim.restore(snap); sim.step(k & 3); }
  const rs = k / (performance.now() - t0) * 1000;
  t0 = performance.now();
  for (k = 0; k < 300000; k++) { sim.snapshot(); }
  const ss = k / (performance.now() - t0) * 1000;
  t0 = performance.now();
  for (k = 0; k < 300000; k++) { sim.restore(snap); }
  const rr = k / (performance.now() - t0) * 1000;
  console.log(id, `builds=${n} sim steps/s (BFS+VI) = ${Math.round(steps / ms * 1000)}; restore+step/s=${Math.round(rs)} snapshot/s=${Math.round(ss)} restore/s=${Math.round(rr)}`);
}
