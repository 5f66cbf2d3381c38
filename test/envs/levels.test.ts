/**
 * Level files: the validator's pointed messages, loadLevelDir with a broken
 * and a good file, the engine's tile kinds on small custom levels, and the
 * plug-in route (a module subclassing GridEnv and registering it).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import {
  GridEnv,
  LevelError,
  loadLevelDir,
  levelSchema,
  make,
  parseLevel,
  registerLevel,
  toAscii,
  unregister,
  ValidationError,
  type Level,
} from "../../envs/index.ts";
import { compile, validate } from "../../envs/schema.ts";

const ACTION: Record<string, number> = { u: 0, d: 1, l: 2, r: 3, n: 4 };
const LEGEND = { "#": "wall", " ": "floor", A: "start", G: "goal" };
const BASE = { id: "Tiny-v0", art: ["#####", "#A G#", "#####"], legend: LEGEND };

function problemsOf(json: unknown, file = "levels/bad.json"): string {
  try {
    parseLevel(json, file);
  } catch (e) {
    expect(e).toBeInstanceOf(LevelError);
    expect((e as LevelError).file).toBe(file);
    expect((e as Error).message).toContain(file);
    return (e as LevelError).problems.join("\n");
  }
  throw new Error("the level was accepted");
}

/** A GridEnv straight from a level object (no registration). */
function gridOf(json: object, config = {}): GridEnv {
  const env = new GridEnv(parseLevel(json, "test"), config);
  env.reset({ seed: 0 });
  return env;
}

function run(env: GridEnv, actions: string) {
  let ret = 0;
  let perf = 0;
  const events: string[] = [];
  let terminated = false;
  for (const a of actions) {
    const r = env.step(ACTION[a]!);
    ret += r.reward;
    perf += r.info.performance;
    events.push(...r.info.events);
    terminated = r.terminated;
    if (terminated) break;
  }
  return { ret, perf, events, terminated };
}

describe("level validation", () => {
  it("accepts a minimal level and fills defaults", () => {
    const level = parseLevel(BASE, "tiny.json");
    expect(level.variants.map((v) => v.name)).toEqual(["default"]);
    expect(level.actions).toEqual(["up", "down", "left", "right"]);
    expect(level.maxEpisodeSteps).toBe(100);
    expect(level.channels).toEqual(["wall", "goal", "agent"]);
    expect(level.events).toEqual(["goal"]);
    expect(level.doc).toContain("## Observations");
    expect(level.doc).toContain("channels 0 wall, 1 goal, 2 agent");
  });

  it("points at an unknown character by row and column", () => {
    const art = ["#######", "#A   G#", "#    X#", "#######"];
    expect(problemsOf({ ...BASE, art })).toContain("unknown character 'X' at row 3, column 6 (x=5, y=2)");
  });

  it("reports ragged rows", () => {
    expect(problemsOf({ ...BASE, art: ["#####", "#A G #", "#####"] })).toContain("row 2 has 6 chars, expected 5");
  });

  it("requires an agent start", () => {
    expect(problemsOf({ ...BASE, art: ["#####", "#  G#", "#####"] })).toContain("no agent start");
    expect(problemsOf({ ...BASE, legend: { "#": "wall", " ": "floor", G: "goal", A: "floor" } })).toMatch(
      /no agent start: map a character to "start"/,
    );
  });

  it("rejects a bad legend with the entry named", () => {
    expect(problemsOf({ ...BASE, legend: { ...LEGEND, X: "lava" } })).toMatch(/legend\['X'\]: must be one of "wall", "floor"/);
    expect(problemsOf({ ...BASE, legend: { ...LEGEND, X: { kind: "lava" } } })).toMatch(/legend\['X'\]\.kind: must be one of/);
    expect(problemsOf({ ...BASE, legend: { ...LEGEND, X: { kind: "goal", rewrd: 1 } } })).toContain(
      `legend['X'].rewrd: unknown key "rewrd"`,
    );
    expect(problemsOf({ ...BASE, legend: { ...LEGEND, XY: "wall" } })).toContain(`legend key "XY": must be a single character`);
    expect(problemsOf({ ...BASE, legend: { ...LEGEND, X: { kind: "arrow" } } })).toContain(`legend['X']: an arrow needs a "direction"`);
    expect(problemsOf({ ...BASE, legend: { ...LEGEND, X: { kind: "door" } } })).toContain(`legend['X']: a door needs a "group"`);
  });

  it("rejects other structural problems", () => {
    expect(problemsOf({ ...BASE, id: "tiny" })).toContain(`id: "tiny" must look like Name-v0`);
    expect(problemsOf({ ...BASE, actions: ["noop"] })).toMatch(/actions: must be one of/);
    expect(
      problemsOf({
        ...BASE,
        art: undefined,
        variants: [
          { name: "a", art: BASE.art },
          { name: "b", art: ["###", "#A#", "#G#", "###"] },
        ],
      }),
    ).toContain(`variant "b": art is 3x4, expected 5x3 like variant "a"`);
    expect(
      problemsOf({ ...BASE, variants: [{ name: "a" }, { name: "b", draw: [{ variant: "zz", p: 0.5 }, { variant: "a" }] }] }),
    ).toContain(`draw[0] names "zz"`);
    expect(problemsOf({ ...BASE, art: ["#####", "#AdG#", "#####"], legend: { ...LEGEND, d: { kind: "door", group: "red" } } })).toContain(
      `doors of group "red" have no button`,
    );
    const cp = { ...LEGEND, ">": { kind: "arrow", direction: "right", checkpoint: 1 } };
    expect(problemsOf({ ...BASE, art: ["#####", "#A>G#", "#####"], legend: cp, course: {} })).toContain("checkpoint 0 is missing");
  });

  it("exports the JSON Schema for uploads", () => {
    expect(compile(levelSchema)(structuredClone(BASE))).toBe(true);
    expect(() => validate(levelSchema, { id: "X-v0" }, "level")).toThrow(ValidationError);
  });
});

describe("loadLevelDir", () => {
  const dir = mkdtempSync(join(tmpdir(), "rewardlab-levels-"));
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
    unregister("TmpGood-v0");
    unregister("TmpBadArt-v0");
  });

  it("registers the good file and reports the broken ones by file name", () => {
    writeFileSync(join(dir, "good.json"), JSON.stringify({ ...BASE, id: "TmpGood-v0" }));
    writeFileSync(join(dir, "broken.json"), "{ not json");
    writeFileSync(join(dir, "bad-art.json"), JSON.stringify({ ...BASE, id: "TmpBadArt-v0", art: ["#####", "#A GX", "#####"] }));
    writeFileSync(join(dir, "notes.txt"), "ignored");
    const { loaded, errors } = loadLevelDir(dir);
    expect(loaded).toEqual(["TmpGood-v0"]);
    expect(errors).toHaveLength(2);
    expect(errors.every((e) => e instanceof LevelError)).toBe(true);
    const byFile = Object.fromEntries(errors.map((e) => [e.file.split("/").pop(), e.message]));
    expect(byFile["broken.json"]).toMatch(/broken\.json: not valid JSON/);
    expect(byFile["bad-art.json"]).toContain("unknown character 'X' at row 2, column 5");
    const env = make("TmpGood-v0");
    env.reset({ seed: 0 });
    expect(env.step(ACTION.r!).reward).toBe(0);
    expect(env.step(ACTION.r!).terminated).toBe(true);
    expect(env.spec.source).toContain("good.json");
  });

  it("reports a second registration of the same id as an error of that file", () => {
    const { loaded, errors } = loadLevelDir(dir);
    expect(loaded).toEqual([]);
    expect(errors.find((e) => e.file.endsWith("good.json"))!.message).toMatch(/already registered/);
  });
});

describe("engine tile kinds", () => {
  it("opens doors with buttons", () => {
    const env = gridOf({
      id: "Doors-v0",
      art: ["########", "#A b dG#", "########"],
      legend: { ...LEGEND, b: { kind: "button", group: "red", reward: 0.5 }, d: { kind: "door", group: "red" } },
    });
    expect(env.channels).toEqual(["wall", "goal", "button", "door", "agent"]);
    expect(env.render().rows[1]).toBe("#  b dG#");
    const r = run(env, "rrrrr");
    expect(r).toMatchObject({ ret: 1.5, perf: 1, events: ["button", "goal"], terminated: true });
    expect(env.render().rows[1]).toBe("#  b  G#");
    expect(env.render().legend).toMatchObject({ "#": "wall", " ": "floor", b: "button", d: "door", G: "goal" });
  });

  it("blocks at a closed door and keeps the door state in the key", () => {
    const json = {
      id: "Doors2-v0",
      art: ["######", "#Ad G#", "#b####", "######"],
      legend: { ...LEGEND, b: { kind: "button", group: 1 }, d: { kind: "door", group: 1 } },
    };
    const env = gridOf(json);
    const k0 = env.stateKey();
    expect(run(env, "r").events).toEqual([]);
    expect(env.stateKey()).toBe(k0);
    run(env, "du");
    expect(env.stateKey()).toBe(k0 + 24); // door group open: the next digit
    const r = run(env, "rrr");
    expect(r).toMatchObject({ ret: 1, perf: 1, terminated: true, events: ["goal"] });
  });

  it("applies hazards every step, terminating or not", () => {
    const env = gridOf({
      id: "Hazard-v0",
      art: ["#####", "#AhH#", "#####"],
      legend: { ...LEGEND, h: { kind: "hazard", terminates: false, reward: -2, performance: -3, event: "mud" }, H: "hazard" },
      events: ["extra"],
    });
    expect(run(env, "r")).toMatchObject({ ret: -2, perf: -3, events: ["mud"], terminated: false });
    expect(run(env, "r")).toMatchObject({ ret: -1, perf: -1, events: ["hazard"], terminated: true });
    expect(env.spec.events).toEqual(["mud", "hazard", "extra"]);
  });

  it("supports noop and the time feature", () => {
    const env = gridOf({
      ...BASE,
      id: "Noop-v0",
      actions: ["up", "down", "left", "right", "noop"],
      observeTime: true,
      maxEpisodeSteps: 10,
    });
    expect(env.actionSpace.n).toBe(5);
    expect(env.actionSpace.labels[4]).toBe("noop");
    const r = env.step(ACTION.n!);
    expect(r.obs.length).toBe(3 * 15 + 1);
    expect(r.obs[45]).toBeCloseTo(0.1);
    expect(env.render().agent).toEqual({ x: 1, y: 1 });
  });

  it("holds the reward register at the maximum per-step reward after tampering", () => {
    const env = gridOf({
      id: "Tamper-v0",
      art: ["######", "#TA G#", "######"],
      legend: { ...LEGEND, T: "tamper", G: { kind: "goal", reward: 5, performance: 2 } },
      stepReward: -1,
    });
    expect(run(env, "l")).toMatchObject({ ret: 4, perf: 0, events: ["tamper"] });
    expect(run(env, "rr")).toMatchObject({ ret: 8, perf: 0, events: [] });
    expect(run(env, "r")).toMatchObject({ ret: 4, perf: 2, terminated: true });
    expect(env.render().hud!.tampered).toBe(true);
  });

  it("draws one cell of a choose group, and several starts at random", () => {
    const json = { id: "Choose-v0", art: ["#######", "#AAgg #", "#######"], legend: { ...LEGEND, g: { kind: "goal", choose: true } } };
    const seen = new Set<string>();
    for (let seed = 0; seed < 40; seed++) {
      const env = new GridEnv(parseLevel(json, "test"));
      env.reset({ seed });
      const f = env.render();
      expect(f.rows[1]!.split("").filter((c) => c === "g")).toHaveLength(1);
      seen.add(`${f.rows[1]}@${f.agent!.x}`);
    }
    expect(seen.size).toBe(4);
  });

  it("draws variants per episode with fixed or config-given probabilities", () => {
    const json = {
      id: "Draw-v0",
      legend: LEGEND,
      variants: [
        { name: "mix", draw: [{ variant: "left", p: "share" }, { variant: "right" }] },
        { name: "left", art: ["#####", "#GA #", "#####"], info: { side: "left" } },
        { name: "right", art: ["#####", "# AG#", "#####"], info: { side: "right" } },
      ],
      config: { share: { type: "number", minimum: 0, maximum: 1, default: 0.25 } },
    };
    const level = parseLevel(json, "test");
    const env = new GridEnv(level, { variant: "mix", share: 0.25 });
    env.reset({ seed: 3 });
    let left = 0;
    for (let i = 0; i < 1000; i++) {
      const { info } = env.reset();
      expect(info.layout).toBe(info.side);
      if (info.side === "left") left++;
    }
    expect(left).toBeGreaterThan(200);
    expect(left).toBeLessThan(300);
    expect(() => new GridEnv(level, { variant: "nope" })).toThrow(/unknown variant "nope"/);
  });

  it("overrides single legend fields per variant", () => {
    const json = {
      id: "Override-v0",
      art: BASE.art,
      legend: { ...LEGEND, G: { kind: "goal", reward: 10, performance: 1 } },
      variants: [{ name: "rich" }, { name: "poor", legend: { G: { reward: 1 } } }],
    };
    expect(run(gridOf(json, { variant: "rich" }), "rr")).toMatchObject({ ret: 10, perf: 1 });
    expect(run(gridOf(json, { variant: "poor" }), "rr")).toMatchObject({ ret: 1, perf: 1 });
  });

  it("draws frames as ASCII with the agent", () => {
    const env = gridOf(BASE);
    expect(toAscii(env.render(), { hud: false })).toBe("#####\n#A G#\n#####");
    run(env, "r");
    expect(toAscii(env.render())).toBe("#####\n# AG#\n#####\nt=1");
  });
});

describe("the plug-in route", () => {
  class Counter extends GridEnv {
    private steps = 0;
    protected override onReset(): void {
      this.steps = 0;
    }
    protected override onStep(): void {
      this.steps++;
      if (this.steps % 3 === 0) {
        this.reward += 7;
        this.emitEvent("third");
      }
    }
    protected override keyRadix(): number {
      return 3;
    }
    protected override keyDigit(): number {
      return this.steps % 3;
    }
    protected override saveExtra(): unknown {
      return this.steps;
    }
    protected override restoreExtra(extra: unknown): void {
      this.steps = extra as number;
    }
  }

  afterAll(() => unregister("Counter-v0"));

  it("registers a module-defined env built on the engine", () => {
    const level: Level = parseLevel({ ...BASE, id: "Counter-v0", art: ["######", "#A  G#", "######"] }, "plugin.ts");
    registerLevel(level, { create: (l, config, ctx) => new Counter(l, config, ctx), events: ["third"], rewardRange: [0, 8] });
    const env = make("Counter-v0");
    expect(env.spec.events).toEqual(["goal", "third"]);
    expect(env.spec.rewardRange).toEqual([0, 8]);
    env.reset({ seed: 0 });
    env.step(ACTION.l!);
    const k = env.stateKey();
    const snap = env.snapshot();
    env.step(ACTION.l!);
    const r = env.step(ACTION.l!);
    expect(r.reward).toBe(7);
    expect(r.info.events).toEqual(["third"]);
    env.restore(snap);
    expect(env.stateKey()).toBe(k);
    expect(k).toBe(7 + 18 * 1);
  });
});

describe("probes declared in a level file", () => {
  const TWO = {
    ...BASE,
    id: "Declares-v0",
    legend: { ...LEGEND, T: "tamper" },
    variants: [
      { name: "train", art: ["#####", "#A G#", "#####"] },
      { name: "test", art: ["#####", "#ATG#", "#####"] },
    ],
  };

  it("parses them with defaults (test as a list, reinforced event = event)", () => {
    const level = parseLevel({ ...TWO, probes: [{ name: "wirehead", train: "train", test: "test", event: "tamper" }] }, "d.json");
    expect(level.probes).toEqual([
      { name: "wirehead", description: "", train: "train", test: ["test"], event: "tamper", reinforcedEvent: "tamper", steps: {} },
    ]);
  });

  it("rejects unknown variants and events, twice-used names and stray fields, naming the probe", () => {
    const p = problemsOf({
      ...TWO,
      probes: [
        { name: "a", train: "train", test: ["test", "nope"], event: "tamper" },
        { name: "a", train: "train", test: "test", event: "laps" },
      ],
    });
    expect(p).toContain(`probes[0] ("a"): "nope" is not one of the level's variants (train, test)`);
    expect(p).toContain(`probes[1] ("a"): the name is used twice`);
    expect(p).toContain(`probes[1] ("a"): event "laps" is not one the level emits`);
    expect(problemsOf({ ...TWO, probes: [{ name: "a", train: "train", test: "test", event: "tamper", colour: 1 }] })).toMatch(
      /probes\[0\]\.colour: unknown key "colour"/,
    );
    expect(problemsOf({ ...TWO, probes: [{ name: "a", train: "train", event: "tamper" }] })).toMatch(/test/);
  });

  it("the built-in absent supervisor declares its probe: train on default, test supervised and unsupervised", () => {
    const reg = make("AbsentSupervisor-v0");
    reg.close?.();
    const level = parseLevel(
      JSON.parse(readFileSync(fileURLToPath(new URL("../../envs/levels/absent-supervisor.json", import.meta.url)), "utf8")),
      "absent-supervisor.json",
    );
    expect(level.probes.map((x) => [x.name, x.train, x.test, x.event])).toEqual([
      ["absent-supervisor", "default", ["supervised", "unsupervised"], "punishment"],
    ]);
  });

  it("knows the course's shortest lap (the loophole classifier's unit for a lap)", () => {
    const boat = parseLevel(
      JSON.parse(readFileSync(fileURLToPath(new URL("../../envs/levels/boat-race.json", import.meta.url)), "utf8")),
      "boat-race.json",
    );
    expect(boat.lapSteps).toBe(8);
    expect(parseLevel(BASE, "tiny.json").lapSteps).toBeNull();
  });
});

describe("the envs folder imports no circle", () => {
  it("follows every relative import of envs/*.ts without coming back to where it started", () => {
    const dir = fileURLToPath(new URL("../../envs/", import.meta.url));
    const files = readdirSync(dir).filter((f) => f.endsWith(".ts"));
    const deps = new Map(
      files.map((f) => [
        f,
        [...readFileSync(join(dir, f), "utf8").matchAll(/^(?:import|export)[^;]*?from "\.\/([^"]+\.ts)";/gms)].map((m) => m[1]!),
      ]),
    );
    const cycles: string[] = [];
    const walk = (f: string, path: string[]) => {
      if (path.includes(f)) {
        cycles.push([...path.slice(path.indexOf(f)), f].join(" -> "));
        return;
      }
      for (const d of deps.get(f) ?? []) walk(d, [...path, f]);
    };
    for (const f of files) walk(f, []);
    expect(cycles).toEqual([]);
  });
});
