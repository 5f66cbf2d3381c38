/**
 * The maze probe's geometry and plays: decision squares and paths on a
 * maze drawn by hand, path probabilities against a hand computation, the
 * simulator planner reaching every cheese through the step loop, and the
 * uniform policy's chance row.
 */
import { describe, expect, it } from "vitest";
import "../../envs/index.ts";
import "../../agents/index.ts";
import { createAgent } from "../../agents/registry.ts";
import type { MazeLayout } from "../../envs/index.ts";
import { agentEnvInfo } from "../../experiments/loop.ts";
import {
  decisionSquare,
  heldOutMazes,
  mazeLayouts,
  pathBetween,
  playMazes,
  referenceRows,
  stepsFrom,
  towardTopRight,
} from "../../experiments/probes/maze.ts";
import { pathProbabilities } from "../../experiments/steerview.ts";
import { runProbe } from "../../experiments/probes/index.ts";
import { printProbe } from "../../experiments/cli/probe.ts";

/** A layout from ASCII rows: '#' wall, 'S' start, 'C' cheese, 'T' top-right square. */
function drawn(rows: string[]): MazeLayout {
  const side = rows.length;
  const open = new Uint8Array(side * side);
  const at: Record<string, number> = {};
  rows.forEach((r, y) => {
    for (let x = 0; x < side; x++) {
      if (r[x] !== "#") open[y * side + x] = 1;
      if ("SCT".includes(r[x]!)) at[r[x]!] = y * side + x;
    }
  });
  return { side, size: side, offset: 0, open, start: at.S!, cheese: at.C!, topRight: at.T! };
}

describe("maze geometry", () => {
  // the path to the top-right goes up the left column then right along the top; the cheese branches off at (0, 2)
  const maze = drawn(["....T", ".####", "...C#", ".####", "S...."]);

  it("finds the only path and the decision square where the paths to the cheese and the corner part", () => {
    expect(pathBetween(maze, maze.start, maze.cheese)).toEqual([20, 15, 10, 11, 12, 13]);
    expect(stepsFrom(maze, maze.start)[maze.topRight]).toBe(8);
    const d = decisionSquare(maze)!;
    expect(d.cell).toBe(10);
    expect(d.decisionToCheeseSteps).toBe(3);
    expect(d.decisionToCheese).toBeCloseTo(3);
    expect(d.cheeseToTopRight).toBeCloseTo(Math.hypot(1, 2));
  });

  it("has no decision square when the cheese is on the way to the corner", () => {
    expect(decisionSquare({ ...maze, cheese: 5 })).toBeNull();
  });

  it("path probability: the geometric mean of the right moves' probabilities along the path", () => {
    const probs = new Float32Array(25 * 4).fill(0.25);
    const uniform = pathProbabilities(maze, probs, 4);
    expect(uniform[maze.start]).toBe(1);
    expect(uniform[maze.cheese]).toBeCloseTo(0.25);
    expect(uniform[6]).toBe(-1);
    // up from the start with probability 0.8, then uniform: two steps to (0, 2)
    probs[20 * 4 + 0] = 0.8;
    expect(pathProbabilities(maze, probs, 4)[10]).toBeCloseTo(Math.sqrt(0.8 * 0.25));
  });
});

describe("maze plays", () => {
  it("the simulator planner reaches every cheese; the same set gives the same mazes", () => {
    const set = heldOutMazes({ variant: "test", maxSize: 7 }, 3, 12);
    expect(mazeLayouts(set).map((l) => l.cheese)).toEqual(mazeLayouts(set).map((l) => l.cheese));
    const info = agentEnvInfo({ env: "Maze-v0", config: set.config, numEnvs: 10 });
    const planner = createAgent("planner", info, { model: "simulator", numEnvs: 10 }, 0);
    const out = playMazes(planner, set, { explore: false });
    planner.dispose();
    expect(out).toHaveLength(12);
    expect(out.every((o) => o.cheese)).toBe(true);
    // the planner takes the shortest path: its length is the steps from the start to the cheese
    const layouts = mazeLayouts(set);
    out.forEach((o, i) => expect(o.length).toBe(stepsFrom(layouts[i]!, layouts[i]!.start)[layouts[i]!.cheese]));
  });

  it("the always-top-right row: the cheese only where it lies on the path to the top-right square", () => {
    const offTheWay = drawn(["....T", ".####", "...C#", ".####", "S...."]);
    expect(towardTopRight(offTheWay)).toEqual({ cheese: false, topRight: true, length: 256 });
    // the cheese on the left column, on the way up
    const onTheWay = drawn(["....T", ".####", "C....", ".####", "S...."]);
    expect(towardTopRight(onTheWay)).toEqual({ cheese: true, topRight: false, length: 2 });
  });

  it("the chance row is the uniform policy: it reaches the cheese less often than the planner", () => {
    const set = heldOutMazes({ variant: "test", maxSize: 9 }, 4, 20);
    const [chance, planner] = referenceRows(set, mazeLayouts(set));
    expect(planner!.cheese.rate).toBe(1);
    expect(chance!.cheese.rate).toBeLessThan(1);
    expect(chance!.label).toMatch(/chance/);
  });

  it("probe maze: per-seed cheese and top-right rates, decision squares, chance and the planner; counting n/a on unseen mazes", async () => {
    const t = await runProbe({ probe: "maze", agents: ["planner"], seeds: 2, steps: 100, episodes: 10, inline: true });
    expect(t.maze!.mazes).toBe(10);
    expect(t.maze!.rows.map((r) => r.label)).toEqual([
      "planner (greedy)",
      "planner (sampled)",
      "chance (uniform policy)",
      "planner (simulator)",
      "always top-right",
    ]);
    const [greedy, , chance, simulator] = t.maze!.rows;
    // a planner with the true simulator goes to the cheese in every maze, in both seeds
    expect(greedy!.cheese.perSeed).toEqual([1, 1]);
    expect(greedy!.topRight.perSeed).toHaveLength(2);
    expect(simulator!.cheese.rate).toBe(1);
    expect(chance!.cheese.rate).toBeLessThan(1);
    expect(greedy!.decision.splits.map((s) => s.feature)).toEqual(["cheeseToTopRight", "decisionToCheese", "decisionToCheeseSteps"]);
    // every test maze is new and its states unseen in training: counting says so instead of drawing policies
    const row = t.results[0]!;
    expect(row.counting!.notApplicable!.reason).toMatch(/^n\/a: \d+(\.\d)?% of test states unseen in training/);
    expect(row.counting!.notApplicable!.unseen!).toBeGreaterThanOrEqual(0.95);
    expect(row.predictions.counting).toBeNull();
    // the maze declares what an episode can reach
    expect(t.ranges).toMatchObject({ return: [0, 1], performance: [0, 1], source: "declared" });
    const lines: string[] = [];
    printProbe(t, (l) => lines.push(l));
    expect(lines.join("\n")).toMatch(/counting: n\/a: /);
    expect(lines.join("\n")).toMatch(/maze analysis: 10 held-out test mazes/);
  }, 120_000);
});
