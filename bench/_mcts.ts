import "../envs/index.ts";
import { registration, resolveEnvConfig, makeVector } from "../envs/index.ts";
import { PlannerAgent, clearPlanCache, plannerConfigSchema } from "../agents/planner.ts";
import { validate } from "../envs/schema.ts";
for (const [id, cfg] of [["BoatRace-v0", {}], ["TamperGrid-v0", { variant: "test" }], ["TamperGrid-v0", { variant: "train" }], ["CoastRunners-v0", {}], ["TomatoWatering-v0", {}], ["AbsentSupervisor-v0", {}]] as const) {
  for (const sims of [200, 1000]) {
  clearPlanCache();
  const vec = makeVector(id, 1, cfg);
  const info = { envId: id, envConfig: resolveEnvConfig(id, cfg), obsSize: vec.obsSize, nActions: vec.actionCount, numEnvs: 1, maxEpisodeSteps: registration(id).maxEpisodeSteps };
  const agent = new PlannerAgent(info, validate(plannerConfigSchema, { search: "mcts", simulations: sims }, "x"), 0);
  vec.reset(1);
  let ret = 0, perf = 0; const ev: Record<string, number> = {};
  const t0 = performance.now();
  for (;;) {
    const a = agent.act(vec.obs, { explore: false, envs: vec.envs, simulator: { envId: id, envConfig: cfg, reward: "keep" } });
    vec.step(a.actions);
    ret += vec.rewards[0]!; perf += vec.infos[0]!.performance;
    for (const e of vec.infos[0]!.events) ev[e] = (ev[e] ?? 0) + 1;
    if (vec.terminated[0] || vec.truncated[0]) break;
  }
  console.log(id, JSON.stringify(cfg), sims, ret.toFixed(2), perf.toFixed(2), JSON.stringify(ev), (performance.now() - t0).toFixed(0) + "ms");
  }
}
