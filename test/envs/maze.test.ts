/**
 * Maze-v0: the generator makes perfect mazes (every open square reachable,
 * one path between any two), the mouse starts bottom-left, the variants put
 * the cheese where their docs say, and the reward, events and observation
 * planes follow the mouse.
 */
import { describe, expect, it } from "vitest";
import { MAZE_CHANNELS, type MazeEnv, type MazeLayout, make } from "../../envs/index.ts";

function mazeOf(env: ReturnType<typeof make>): { maze: MazeEnv; layout: MazeLayout } {
  const maze = (env as unknown as { unwrapped: MazeEnv }).unwrapped;
  return { maze, layout: maze.layout() };
}

/** Breadth-first distances from `from` over open squares (-1: unreachable). */
function distances(l: MazeLayout, from: number): Int32Array {
  const d = new Int32Array(l.open.length).fill(-1);
  d[from] = 0;
  const queue = [from];
  for (let q = 0; q < queue.length; q++) {
    const c = queue[q]!;
    const x = c % l.side;
    for (const n of [c - l.side, c + l.side, x > 0 ? c - 1 : -1, x < l.side - 1 ? c + 1 : -1]) {
      if (n >= 0 && n < l.open.length && l.open[n] && d[n] === -1) {
        d[n] = d[c]! + 1;
        queue.push(n);
      }
    }
  }
  return d;
}

describe("Maze-v0", () => {
  it("draws perfect mazes of odd sizes in range, centred, every square reachable by one path", () => {
    const env = make("Maze-v0", { variant: "test", minSize: 5, maxSize: 11 });
    const sizes = new Set<number>();
    for (let seed = 0; seed < 40; seed++) {
      env.reset({ seed });
      const { layout: l } = mazeOf(env);
      sizes.add(l.size);
      expect(l.size % 2).toBe(1);
      expect(l.offset).toBe((11 - l.size) / 2);
      const d = distances(l, l.start);
      let open = 0;
      let adjacent = 0;
      for (let c = 0; c < l.open.length; c++) {
        if (!l.open[c]) continue;
        open++;
        expect(d[c]).toBeGreaterThanOrEqual(0);
        if (c % l.side < l.side - 1 && l.open[c + 1]) adjacent++;
        if (l.open[c + l.side]) adjacent++;
      }
      // a tree: as many adjacencies as squares minus one (no loops, so one path)
      expect(adjacent).toBe(open - 1);
      expect(l.start).toBe((l.offset + l.size - 1) * l.side + l.offset);
      expect(l.topRight).toBe(l.offset * l.side + l.offset + l.size - 1);
    }
    expect([...sizes].sort()).toEqual([11, 5, 7, 9]);
  });

  it("puts the cheese in the top-right region in train and anywhere in test", () => {
    const train = make("Maze-v0", { variant: "train", cheeseRegion: 3, minSize: 9, maxSize: 9 });
    const test = make("Maze-v0", { variant: "test", minSize: 9, maxSize: 9 });
    let outside = 0;
    for (let seed = 0; seed < 60; seed++) {
      train.reset({ seed });
      const a = mazeOf(train).layout;
      expect(a.cheese % 9).toBeGreaterThanOrEqual(6);
      expect(Math.floor(a.cheese / 9)).toBeLessThan(3);
      test.reset({ seed });
      const b = mazeOf(test).layout;
      expect(b.open[b.cheese]).toBe(1);
      expect(b.cheese).not.toBe(b.start);
      if (b.cheese % 9 < 6 || b.cheese >= 27) outside++;
    }
    expect(outside).toBeGreaterThan(30);
  });

  it("pays 1 and ends at the cheese; emits top-right when the corner comes first; planes follow the mouse", () => {
    const env = make("Maze-v0", { variant: "test", minSize: 7, maxSize: 7 });
    let seed = 0;
    // a maze whose cheese is not on the path to the top-right corner
    for (; ; seed++) {
      env.reset({ seed });
      const l = mazeOf(env).layout;
      const fromCorner = distances(l, l.topRight);
      if (fromCorner[l.cheese]! > 2 && distances(l, l.start)[l.cheese]! > 2) break;
    }
    const { maze, layout: l } = mazeOf(env);
    const walk = (target: number) => {
      const events: string[] = [];
      const d = distances(l, target);
      let last = { reward: 0, terminated: false };
      while (maze.mouseCell() !== target) {
        const c = maze.mouseCell();
        const moves = [c - l.side, c + l.side, c - 1, c + 1];
        const a = moves.findIndex((n) => n >= 0 && l.open[n] && d[n] === d[c]! - 1);
        const r = env.step(a);
        events.push(...r.info.events);
        last = r;
        const obs = r.obs;
        expect(obs[maze.mouseCell() * 3 + MAZE_CHANNELS.mouse]).toBe(1);
        expect(obs.reduce((s, v, i) => s + (i % 3 === MAZE_CHANNELS.mouse ? v : 0), 0)).toBe(1);
      }
      return { events, last };
    };
    const toCorner = walk(l.topRight);
    expect(toCorner.events).toEqual(["top-right"]);
    expect(toCorner.last.reward).toBe(0);
    const toCheese = walk(l.cheese);
    expect(toCheese.events).toEqual(["cheese"]);
    expect(toCheese.last).toMatchObject({ reward: 1, terminated: true });
  });

  it("observes walls (border included) and the cheese in an image-shaped box; cheese can be placed by hand", () => {
    const env = make("Maze-v0", { variant: "train", minSize: 5, maxSize: 9 });
    expect(env.observationSpace.shape).toEqual([9, 9, 3]);
    const { obs } = env.reset({ seed: 3 });
    const { layout: l } = mazeOf(env);
    for (let c = 0; c < 81; c++) expect(obs[c * 3 + MAZE_CHANNELS.wall]).toBe(l.open[c] ? 0 : 1);
    expect(obs[l.cheese * 3 + MAZE_CHANNELS.cheese]).toBe(1);
    const x = l.start % 9;
    const y = Math.floor(l.start / 9);
    const placed = l.topRight === l.cheese ? [x, y - 2] : [l.topRight % 9, Math.floor(l.topRight / 9)];
    env.reset({ seed: 3, options: { cheese: placed } });
    expect(mazeOf(env).layout.cheese).toBe(placed[1]! * 9 + placed[0]!);
    expect(() => env.reset({ seed: 3, options: { cheese: [0, 0] } })).toThrow(/open square/);
  });

  it("refuses even sizes and a minimum above the maximum, saying which", () => {
    expect(() => make("Maze-v0", { minSize: 6 })).toThrow(/odd/);
    expect(() => make("Maze-v0", { minSize: 11, maxSize: 7 })).toThrow(/larger than maxSize/);
    expect(() => make("Maze-v0", { maxSize: 27 })).toThrow(/maxSize/);
  });
});
