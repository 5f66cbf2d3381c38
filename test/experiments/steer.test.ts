/**
 * Steering on a small untrained convolutional PPO policy on 7x7 mazes: the
 * cheese vector is the mean activation difference with and without the
 * cheese plane and moves the logits when added, coefficient 0 plays exactly
 * as the unsteered policy (same mazes, same random stream), and the
 * retargeting channel and rows are well formed.
 */
import { describe, expect, it } from "vitest";
import "../../envs/index.ts";
import "../../agents/index.ts";
import { createAgent } from "../../agents/registry.ts";
import { agentEnvInfo } from "../../experiments/loop.ts";
import { layerSize } from "../../agents/shared/activations.ts";
import { heldOutMazes, mazeLayouts, playMazes } from "../../experiments/probes/maze.ts";
import { SteerSession } from "../../experiments/steerview.ts";
import type { MazeOutcome } from "../../experiments/probes/maze.ts";
import {
  type SteerRow,
  cheeseDifferences,
  cheeseVector,
  formatSteer,
  inspectable,
  nextMazes,
  pairedChange,
  pairedObservations,
  runSteer,
  subtractionVerdict,
} from "../../experiments/steer.ts";

const config = { variant: "test", minSize: 5, maxSize: 7 };

function policy() {
  const info = agentEnvInfo({ env: "Maze-v0", config, numEnvs: 4 });
  return createAgent("ppo", info, { numEnvs: 4, network: "cnn", cnn: { channels: [4, 8], resBlocks: 1, dense: 16 } }, 1);
}

describe("steer", () => {
  it("the cheese vector is the mean of activation(with cheese) - activation(without)", () => {
    const agent = policy();
    const net = inspectable(agent);
    const layer = net.layers().find((l) => l.name === "s0/res0")!;
    const set = { config, seed: 5, count: 6 };
    const v = cheeseVector(net, layer, set);
    const { withCheese, without } = pairedObservations(set);
    const size = layer.shape.reduce((a, b) => a * b, 1);
    const a = net.forwardInspect(withCheese, 6, { record: [layer.name] }).recorded[layer.name]!;
    const b = net.forwardInspect(without, 6, { record: [layer.name] }).recorded[layer.name]!;
    for (const i of [0, 17, size - 1]) {
      let d = 0;
      for (let s = 0; s < 6; s++) d += (a[s * size + i]! - b[s * size + i]!) / 6;
      expect(v[i]).toBeCloseTo(d, 5);
    }
    expect(v.some((x) => x !== 0)).toBe(true);
    // added with a coefficient, it moves the policy's logits
    const plain = net.forwardInspect(withCheese, 6).logits;
    const steered = net.forwardInspect(withCheese, 6, { edits: [{ layer: layer.name, kind: "add", vector: v, coeff: -50 }] }).logits;
    expect(Array.from(steered)).not.toEqual(Array.from(plain));
    agent.dispose();
  });

  it("the live view steers with the mean vector or the maze's own; own is that maze's with-minus-without difference", () => {
    const agent = policy();
    const net = inspectable(agent);
    const session = new SteerSession(agent, { minSize: 5, maxSize: 7 });
    const base = { seed: 3, layer: "s0/res0", play: false } as const;
    const none = session.view({ ...base, vector: "none", coeff: 0 }).probs;
    const mean = session.view({ ...base, vector: "cheese", coeff: -50 }).probs;
    const own = session.view({ ...base, vector: "own", coeff: -50 }).probs;
    expect(own).not.toEqual(none);
    expect(own).not.toEqual(mean);
    // at the start square the view's probabilities are the policy's on the maze's start observation, edited by its own vector
    const set = { config, seed: 3, count: 1 };
    const layout = mazeLayouts(set)[0]!;
    const layer = net.layers().find((l) => l.name === "s0/res0")!;
    const { withCheese } = pairedObservations(set);
    const edit = { layer: layer.name, kind: "add" as const, vector: cheeseDifferences(net, layer, set), coeff: -50 };
    const logits = Array.from(net.forwardInspect(withCheese, 1, { edits: [edit] }).logits);
    const z = logits.map((x) => Math.exp(x - Math.max(...logits)));
    const expected = z.map((x) => x / z.reduce((a, b) => a + b, 0));
    const at = layout.start * logits.length;
    for (let a = 0; a < logits.length; a++) expect(own[at + a]).toBeCloseTo(expected[a]!, 5);
    agent.dispose();
  });

  it("coefficient 0 plays as the unsteered policy; the table has a row per coefficient and retargeting rows", () => {
    const agent = policy();
    const set = heldOutMazes(config, 2, 10);
    const plain = playMazes(agent, set, { explore: true });
    expect(playMazes(agent, set, { explore: true })).toEqual(plain);
    const r = runSteer([agent], [1], {
      layer: "s0/res0",
      coeffs: [-50, 50],
      mazes: 10,
      pairs: 10,
      seed: 2,
      envConfig: config,
      explore: true,
      targets: 2,
      references: false,
    });
    // coefficient 0 is always played: the row every other is compared with, maze by maze
    expect(r.steering.map((s) => s.coeff)).toEqual([-50, 0, 50]);
    expect(r.steering[1]!.change).toBeUndefined();
    expect(r.steering[0]!.change!.cheese.diff).toBeCloseTo(r.steering[0]!.cheese.rate - r.steering[1]!.cheese.rate, 10);
    expect(r.verdict).toMatch(/^subtracting the cheese vector \(coeff -50\) /);
    const text = formatSteer(r).join("\n");
    expect(text).toMatch(/vs 0 \[mazes, paired\]/);
    expect(text).toMatch(/edited \[seeds\] \[mazes\]/);
    const rate = (os: typeof plain) => os.filter((o) => o.cheese).length / os.length;
    expect(r.steering[1]!.cheese.rate).toBe(rate(plain));
    expect(r.probe[0]!.cheese.rate).toBe(rate(plain));
    expect(r.retarget!.rows.length).toBe(2);
    expect(r.retarget!.tracking).toBeGreaterThanOrEqual(0);
    for (const row of r.retarget!.rows) expect(row.mazes).toBeGreaterThan(0);
    expect(new Set(r.retarget!.rows.map((row) => String(row.target))).size).toBe(r.retarget!.rows.length);
    agent.dispose();
  });

  it("per maze: each held-out maze steered by its own cheese vector, each batch row by its own block", () => {
    const agent = policy();
    const net = inspectable(agent);
    // the dense layer before the logits: an untrained policy's greedy moves follow it
    const layer = net.layers().find((l) => l.name === "fc")!;
    // 11 mazes: a chunk of 10 and one more, so the blocks must follow the mazes across chunks
    const set = heldOutMazes(config, 3, 11);
    const size = layerSize(layer);
    const d = cheeseDifferences(net, layer, set);
    const { withCheese } = pairedObservations(set);
    const obsSize = withCheese.length / 11;
    // a per-sample edit gives each row its own block: as two forwards of one row, each with its block added
    const edit = (vector: Float32Array, perSample: boolean) => ({ layer: layer.name, kind: "add" as const, vector, coeff: -50, perSample });
    const both = net.forwardInspect(withCheese.subarray(0, 2 * obsSize), 2, { edits: [edit(d.subarray(0, 2 * size), true)] }).logits;
    const one = (i: number) =>
      Array.from(
        net.forwardInspect(withCheese.subarray(i * obsSize, (i + 1) * obsSize), 1, {
          edits: [edit(d.slice(i * size, (i + 1) * size), false)],
        }).logits,
      );
    expect(Array.from(both)).toEqual([...one(0), ...one(1)].map((x) => expect.closeTo(x, 5)));
    // batch row i of chunk c plays maze 10c + i: its first observation is that maze's block
    const firstObs: Float32Array[] = [];
    let capture = false;
    const seen = Object.create(agent) as typeof agent;
    seen.act = (obs, ctx) => {
      if (capture) firstObs.push(obs.slice());
      capture = false;
      return agent.act(obs, ctx);
    };
    const edited = playMazes(seen, set, {
      explore: false,
      beforeChunk: (first, n) => {
        capture = true;
        agent.setEdits!([edit(d.subarray(first * size, (first + n) * size), true)]);
      },
    });
    agent.setEdits!([]);
    expect(firstObs.map((o) => Array.from(o))).toEqual([
      Array.from(withCheese.subarray(0, 10 * obsSize)),
      Array.from(withCheese.subarray(10 * obsSize)),
    ]);
    expect(edited).not.toEqual(playMazes(agent, set, { explore: false }));
    const opts = { layer: layer.name, mazes: 11, pairs: 2, seed: 3, envConfig: config, explore: false, targets: 0, references: false };
    const r = runSteer([agent], [1], { ...opts, coeffs: [-50], perMaze: true });
    expect(r.vector).toBe("per-maze");
    expect(r.steering[0]!.cheese.rate).toBe(edited.filter((o) => o.cheese).length / 11);
    expect(formatSteer(r)[0]).toMatch(/each maze's own \(mean norm/);
    // the control: each maze given the next maze's vector
    expect(Array.from(nextMazes(Float32Array.of(1, 2, 3, 4, 5, 6), 2))).toEqual([3, 4, 5, 6, 1, 2]);
    const rotated = nextMazes(d, size);
    const other = playMazes(agent, set, {
      explore: false,
      beforeChunk: (first, n) => agent.setEdits!([edit(rotated.subarray(first * size, (first + n) * size), true)]),
    });
    agent.setEdits!([]);
    const c = runSteer([agent], [1], { ...opts, coeffs: [-50], perMaze: true, otherMaze: true });
    expect(c.vector).toBe("other-maze");
    expect(c.steering[0]!.cheese.rate).toBe(other.filter((o) => o.cheese).length / 11);
    expect(formatSteer(c)[0]).toMatch(/the next maze's \(control\)/);
    // a per-sample vector must have one block per row of the batch
    expect(() => net.forwardInspect(withCheese.subarray(0, 3 * obsSize), 3, { edits: [edit(d.subarray(0, 2 * size), true)] })).toThrow(
      /per-sample vector of 2 samples on a batch of 3/,
    );
    agent.dispose();
  });

  it("a set edit on one sample changes that row only; retargeting can clear the cheese's square first", () => {
    const agent = policy();
    const net = inspectable(agent);
    const layer = net.layers().find((l) => l.name === "s0/res0")!;
    const set = heldOutMazes(config, 4, 2);
    const obs = pairedObservations(set).withCheese;
    const half = obs.length / 2;
    const edit = { layer: layer.name, kind: "set" as const, channel: 1, y: 1, x: 1, value: 40 };
    const plain = Array.from(net.forwardInspect(obs, 2).logits);
    const edited = Array.from(net.forwardInspect(obs, 2, { edits: [{ ...edit, sample: 1 }] }).logits);
    const alone = Array.from(net.forwardInspect(obs.subarray(half), 1, { edits: [edit] }).logits);
    expect(edited.slice(0, 4)).toEqual(plain.slice(0, 4));
    expect(edited.slice(4)).toEqual(alone.map((x) => expect.closeTo(x, 5)));
    expect(edited.slice(4)).not.toEqual(plain.slice(4));
    expect(() => net.forwardInspect(obs, 2, { edits: [{ ...edit, sample: -1 }] })).toThrow(/sample must be a non-negative integer/);
    const opts = { layer: layer.name, coeffs: [0], mazes: 10, pairs: 4, seed: 2, envConfig: config, explore: true, references: false };
    const r = runSteer([agent], [1], { ...opts, targets: 1, clearCheese: true });
    expect(r.retarget!.clearCheese).toBe(true);
    expect(r.retarget!.rows).toHaveLength(1);
    expect(formatSteer(r).join("\n")).toMatch(/and at the cheese's square to its value there without the cheese/);
    agent.dispose();
  });

  it("refuses a dense layer for retargeting and an unknown layer, in one line", () => {
    const agent = policy();
    const opts = { coeffs: [0], mazes: 2, pairs: 2, seed: 0, envConfig: config, explore: true, targets: 1, references: false };
    expect(() => runSteer([agent], [1], { ...opts, layer: "nope" })).toThrow(/no such layer.*s0\/res0/);
    expect(() => runSteer([agent], [1], { ...opts, layer: "fc" })).toThrow(/spatial layer/);
    agent.dispose();
  });

  it("the paired change against coefficient 0 and whether subtracting lowered the cheese rate", () => {
    const o = (cheese: boolean): MazeOutcome => ({ cheese, topRight: false, length: 1 });
    const zero = [
      [o(true), o(true), o(false), o(true)],
      [o(true), o(false), o(true), o(true)],
    ];
    const minus = [
      [o(false), o(true), o(false), o(false)],
      [o(false), o(false), o(true), o(true)],
    ];
    const c = pairedChange(minus, zero, (x) => x.cheese);
    expect(c.diff).toBeCloseTo(-0.375, 10); // seed 0: -2/4, seed 1: -1/4
    expect([c.lost, c.gained]).toEqual([3, 0]);
    // a t interval over the 8 paired maze differences (-1 three times, 0 five times)
    expect(c.ciMazes[0]).toBeLessThan(-0.375);
    expect(c.ciMazes[1]).toBeGreaterThan(-0.375);
    expect(c.ciMazes[0]).toBeGreaterThanOrEqual(-1);
    const rate = (os: MazeOutcome[][]) => ({
      rate: os.flat().filter((x) => x.cheese).length / 8,
      ciSeeds: [0, 1] as [number, number],
      ciMazes: [0, 1] as [number, number],
      perSeed: [],
    });
    const rows: SteerRow[] = [
      {
        coeff: -2,
        cheese: rate(minus),
        topRight: rate(minus),
        change: { cheese: { ...c, ciMazes: [-0.6, -0.1], ciSeeds: [-0.9, -0.05] }, topRight: c },
      },
      { coeff: 0, cheese: rate(zero), topRight: rate(zero) },
    ];
    expect(subtractionVerdict(rows)).toMatch(/\(coeff -2\) lowers the cheese rate: 38% against 75% at 0/);
    rows[0]!.change!.cheese = { ...c, ciMazes: [-0.6, -0.1], ciSeeds: [-0.9, 0.2] };
    expect(subtractionVerdict(rows)).toMatch(/lowers the cheese rate on these mazes .*not shown over seeds/);
    rows[0]!.change!.cheese = { ...c, ciMazes: [-0.6, 0.1], ciSeeds: [-0.9, 0.2] };
    expect(subtractionVerdict(rows)).toMatch(/does not lower the cheese rate/);
    expect(subtractionVerdict([rows[1]!])).toBeNull();
  });
});
