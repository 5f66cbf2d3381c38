import "../envs/index.ts";
import { make } from "../envs/index.ts";
import { SimulatorModel } from "../agents/planner.ts";
const id = "TomatoWatering-v0", cfg = {};
const live = make(id, cfg); live.reset({ seed: 0 });
const snap = live.snapshot(); const key = live.stateKey();
console.log(JSON.stringify(snap), key);
for (let i = 0; i < 6; i++) {
  const m = new SimulatorModel({ envId: id, envConfig: cfg, reward: "keep", objective: "reward", discount: 0.99, horizon: 100, maxStates: 20000, samples: 8 });
  const t0 = performance.now();
  m.ensureTable(snap, key);
  const ms = performance.now() - t0;
  console.log(m.simSteps, ms.toFixed(0), Math.round(m.simSteps / ms * 1000));
}
