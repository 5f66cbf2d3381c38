import "../envs/index.ts";
import { registered, resolveEnvConfig, registration, makeVector } from "../envs/index.ts";
import { PlannerAgent, clearPlanCache, plannerConfigSchema } from "../agents/planner.ts";
import { validate } from "../envs/schema.ts";
for (const reg of registered()) {
  for (const variant of reg.variants) {
    for (const search of ["auto"] as const) {
      clearPlanCache();
      const cfg = { variant };
      const vec = makeVector(reg.id, 1, cfg);
      const info = { envId: reg.id, envConfig: resolveEnvConfig(reg.id, cfg), obsSize: vec.obsSize, nActions: vec.actionCount, numEnvs: 1, maxEpisodeSteps: reg.maxEpisodeSteps };
      const agent = new PlannerAgent(info, validate(plannerConfigSchema, { search }, "x"), 0);
      vec.reset(1);
      const t0 = performance.now();
      let ret = 0, perf = 0, eps = 0; const ev: Record<string, number> = {};
      const rets: string[] = [];
      let firstMs = 0;
      for (let s = 0; eps < 3; s++) {
        const a = agent.act(vec.obs, { explore: false, envs: vec.envs, simulator: { envId: reg.id, envConfig: cfg, reward: "keep" } });
        if (s === 0) firstMs = performance.now() - t0;
        vec.step(a.actions);
        ret += vec.rewards[0]!; perf += vec.infos[0]!.performance;
        for (const e of vec.infos[0]!.events) ev[e] = (ev[e] ?? 0) + 1;
        if (vec.terminated[0] || vec.truncated[0]) { rets.push(`${ret.toFixed(2)}/${perf.toFixed(2)}`); ret = 0; perf = 0; eps++; }
      }
      const m = (agent as any).sim;
      console.log(reg.id, variant, search, `states=${m.nStates} tooLarge=${m.tooLarge} stoch=${m.stochastic} planMs=${m.planMs.toFixed(1)} firstMs=${firstMs.toFixed(1)} simSteps=${m.simSteps} total=${(performance.now()-t0).toFixed(0)}ms`, rets.join(" "), JSON.stringify(ev));
    }
  }
}
