import "../envs/index.ts";
import { registration, resolveEnvConfig, makeVector, specOf } from "../envs/index.ts";
import { PlannerAgent, plannerConfigSchema } from "../agents/planner.ts";
import { validate } from "../envs/schema.ts";
for (const [id, cfg, steps] of [["TomatoWatering-v0", {}, 20000]] as const) {
  const vec = makeVector(id, 1, cfg);
  const info = { envId: id, envConfig: resolveEnvConfig(id, cfg), obsSize: vec.obsSize, nActions: vec.actionCount, numEnvs: 1, maxEpisodeSteps: registration(id).maxEpisodeSteps };
  const agent = new PlannerAgent(info, validate(plannerConfigSchema, { model: "learned" }, "x"), 0);
  vec.reset(1);
  const sk = new Int32Array(1), nk = new Int32Array(1); const obs = new Float32Array(vec.obs.length);
  const rets: number[] = []; let ret = 0; let learns = 0;
  const t0 = performance.now();
  for (let s = 0; s < steps; s++) {
    sk[0] = vec.envs[0]!.stateKey(); obs.set(vec.obs);
    const act = agent.act(vec.obs, { explore: true, stateKeys: sk });
    vec.step(act.actions);
    const ended = vec.terminated[0] || vec.truncated[0];
    nk[0] = ended ? -1 : vec.envs[0]!.stateKey();
    agent.observe({ obs, act, rewards: vec.rewards, terminated: vec.terminated, truncated: vec.truncated, nextObs: vec.obs, finalObs: vec.finalObs, stateKeys: sk, nextStateKeys: nk });
    if (agent.readyToLearn()) { const m = agent.learn().metrics; learns++; if (learns % 50 === 0) console.log(JSON.stringify(m)); }
    ret += vec.rewards[0]!;
    if (ended) { rets.push(+ret.toFixed(2)); ret = 0; }
  }
  const st = agent.learn().metrics;
  console.log(id, `rmax=${specOf(id).rewardRange}`, `learns=${learns}`, (performance.now() - t0).toFixed(0) + "ms", JSON.stringify(st), "returns:", rets.slice(0, 5).join(","), "...", rets.slice(-5).join(","));
}
