/**
 * Dependencies flow one way (docs/architecture.md): envs imports nothing of
 * ours, agents only envs, experiments both, server all three, and the client
 * only types (`import type`) from the server's protocol. No two source files
 * import each other, directly or round a longer circle. Type-only imports
 * count: a circle of types is still a circle to read.
 *
 * Run it alone with `npx vitest run test/structure.test.ts`; a failure names
 * the offending import or the files of the circle.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "..");
const LAYERS = ["envs", "agents", "experiments", "server", "client/src"] as const;
type Layer = (typeof LAYERS)[number];

/** What each layer may import, besides itself and packages. */
const MAY_IMPORT: Record<Layer, Layer[]> = {
  envs: [],
  agents: ["envs"],
  experiments: ["envs", "agents"],
  server: ["envs", "agents", "experiments"],
  "client/src": [],
};

interface Import {
  from: string;
  to: string;
  typeOnly: boolean;
}

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir)).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(join(ROOT, path)).isDirectory()) return sources(path);
    return /\.(ts|js)$/.test(name) && !name.endsWith(".d.ts") ? [path] : [];
  });
}

const IMPORT = /(?:^|[\n;])\s*(?:import|export)\s+(type\s+)?(?:[^;'"]*?\sfrom\s+)?["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g;

function importsOf(file: string): Import[] {
  const text = readFileSync(join(ROOT, file), "utf8");
  const out: Import[] = [];
  for (const m of text.matchAll(IMPORT)) {
    const spec = m[2] ?? m[3]!;
    if (!spec.startsWith(".")) continue;
    out.push({ from: file, to: relative(ROOT, resolve(ROOT, dirname(file), spec)), typeOnly: Boolean(m[1]) || Boolean(m[3]) });
  }
  return out;
}

function layerOf(file: string): Layer | null {
  return LAYERS.find((l) => file === l || file.startsWith(`${l}/`)) ?? null;
}

const files = LAYERS.flatMap((l) => sources(l));
const imports = files.flatMap(importsOf);

/** Strongly connected components of more than one file (Tarjan), each sorted. */
function circles(): string[][] {
  const graph = new Map<string, string[]>(files.map((f) => [f, []]));
  for (const i of imports) if (graph.has(i.to)) graph.get(i.from)!.push(i.to);
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  let next = 0;
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v)!) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1) found.push(scc.sort());
    }
  };
  for (const f of files) if (!index.has(f)) visit(f);
  return found;
}

describe("the import graph", () => {
  it("reads every layer's sources and their relative imports", () => {
    expect(files.length).toBeGreaterThan(50);
    expect(imports.some((i) => i.from === "experiments/run.ts" && i.to === "experiments/events.ts")).toBe(true);
  });

  it("flows one way: each layer imports only the layers below it", () => {
    const against = imports
      .filter((i) => {
        const from = layerOf(i.from)!;
        const to = layerOf(i.to);
        if (from === "client/src") return false; // checked below
        return to !== null && to !== from && !MAY_IMPORT[from].includes(to);
      })
      .map((i) => `${i.from} -> ${i.to}`);
    expect(against).toEqual([]);
  });

  it("lets the client take only types from outside client/, and only through server/protocol.ts", () => {
    const outside = imports.filter((i) => layerOf(i.from) === "client/src" && !i.to.startsWith("client/"));
    expect(outside.length).toBeGreaterThan(0);
    expect(outside.filter((i) => !i.typeOnly || i.to !== "server/protocol.ts").map((i) => `${i.from} -> ${i.to}`)).toEqual([]);
  });

  it("has no circles between files", () => {
    expect(circles().map((c) => c.join(" <-> "))).toEqual([]);
  });
});

// ---------------------------------------------------------------------------
// Floors inside experiments/ (docs/architecture.md): within the layer, too,
// dependencies flow one way. From the bottom: the step loop, runs and what
// every part shares (pool.ts included: generic over the job); probes/; steering
// (steer.ts, steerview.ts: built on the maze probe's plays); the
// files that store and show probe results (store, report, overview, manager, jobs);
// sweeps/ (the coordinator and the queue); the entry points (the command
// line, and worker.ts, the thread that executes every kind of job). A file
// imports only files on its own floor or below; a new file directly in
// experiments/ is on the bottom floor until listed here.
// ---------------------------------------------------------------------------

const EXPERIMENT_FLOORS: { name: string; holds: (file: string) => boolean }[] = [
  { name: "entry points", holds: (f) => /^experiments\/(cli\/|cli\.ts$|worker\.ts$|worker-boot\.js$)/.test(f) },
  { name: "sweeps/", holds: (f) => f.startsWith("experiments/sweeps/") },
  { name: "store and views", holds: (f) => /^experiments\/(store|report|overview|manager|jobs)\.ts$/.test(f) },
  { name: "steering (on the maze probe's plays)", holds: (f) => /^experiments\/steer(view)?\.ts$/.test(f) },
  { name: "probes/", holds: (f) => f.startsWith("experiments/probes/") },
  { name: "loop, runs and shared parts", holds: (f) => f.startsWith("experiments/") },
];

/** A file's floor inside experiments/: 0 the bottom (the first floor from the end of the list that holds it). */
function floorOf(file: string): number {
  const top = EXPERIMENT_FLOORS.findIndex((fl) => fl.holds(file));
  return EXPERIMENT_FLOORS.length - 1 - top;
}

describe("floors inside experiments/", () => {
  const inside = imports.filter((i) => layerOf(i.from) === "experiments" && layerOf(i.to) === "experiments");

  it("puts every file of experiments/ on a floor, with every floor used", () => {
    const used = new Set(files.filter((f) => layerOf(f) === "experiments").map(floorOf));
    expect([...used].sort()).toEqual(EXPERIMENT_FLOORS.map((_, i) => i));
    expect(floorOf("experiments/probes/job.ts")).toBeGreaterThan(floorOf("experiments/pool.ts"));
  });

  it("imports only from its own floor or below", () => {
    const up = inside
      .filter((i) => floorOf(i.to) > floorOf(i.from))
      .map((i) => `${i.from} (${EXPERIMENT_FLOORS[EXPERIMENT_FLOORS.length - 1 - floorOf(i.from)]!.name}) -> ${i.to}`);
    expect(up).toEqual([]);
  });
});
