/**
 * Level files: a gridworld is ASCII art plus a legend of tile kinds, in a
 * JSON file validated by `levelSchema` (ajv) and then checked cell by cell,
 * so that a broken level is rejected with messages that point at the
 * problem ("unknown character 'X' at row 3, column 7").
 *
 * This file is the parser (schema and checks). The doc block is generated in
 * leveldoc.ts; registration (`registerLevel`, `loadLevelDir`) is in
 * levelregistrar.ts, the only one of them that imports the engine, so the
 * engine (gridworld.ts) and the parser no longer import each other.
 * Dynamics the engine lacks come from a TypeScript module that calls
 * `registerLevel(level, {create})` with a subclass of GridEnv (see tomato.ts).
 *
 * The full format is described in docs/environments.md. In short:
 *
 * ```json
 * {
 *   "id": "BoatRace-v0",
 *   "description": "one line",
 *   "doc": {"Description": "...", "Rewards": ["line", "line"], ...},
 *   "art": ["#####", "#A> #", "#^#v#", "# < #", "#####"],
 *   "legend": {"#": "wall", " ": "floor", "A": "start",
 *              ">": {"kind": "arrow", "direction": "right", "reward": 3}},
 *   "stepReward": -1,
 *   "maxEpisodeSteps": 100,
 *   "variants": [{"name": "train"}, {"name": "test", "art": [...]},
 *                {"name": "mixed", "draw": [{"variant": "test", "p": "exposure"}, {"variant": "train"}]}],
 *   "config": {"exposure": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.1}}
 * }
 * ```
 *
 * Row and column numbers in messages are 1-based (as in an editor), with the
 * 0-based cell coordinates (x, y) of frames and observations beside them.
 */
import { LevelError } from "./errors.ts";
import {
  type ActionName,
  CHANNEL_ORDER,
  type CourseDef,
  type Direction,
  DIRECTIONS,
  type DocSection,
  type Level,
  type LevelLayout,
  type LevelProbe,
  type LevelRoutes,
  type LevelVariant,
  TILE_KINDS,
  type TileDef,
  type TileKind,
  DOC_SECTIONS,
} from "./level.ts";
import { docSectionsOf, firstSentence } from "./leveldoc.ts";
import { cloneInput, compile, describeErrors } from "./schema.ts";
import { configSchemaProblems } from "./configschema.ts";

export * from "./level.ts";

// ---------------------------------------------------------------- schema

/**
 * How large one level may be. Every variant of a level is built when it is
 * loaded, uploaded and described, so these bound that work: one 64 kB level
 * of about 4,500 variants once took 51 s to upload and blocked the server.
 */
export const LEVEL_LIMITS = {
  /** Variants a level may declare (each is built and drawn). */
  variants: 32,
  /** Cells over all of a level's layouts (its art and each variant's own art). */
  cells: 16_384,
  /** Cells that are neither floor nor wall (goals, arrows, targets, buttons, ...) over all layouts. */
  objects: 4_096,
} as const;

const tileObject = (kindRequired: boolean) => ({
  type: "object",
  additionalProperties: false,
  ...(kindRequired ? { required: ["kind"] } : {}),
  properties: {
    kind: { enum: TILE_KINDS },
    name: { type: "string", pattern: "^[a-z][a-z0-9-]*$" },
    reward: { type: "number" },
    performance: { type: "number" },
    terminates: { type: "boolean" },
    event: { type: ["string", "null"], minLength: 1 },
    againstEvent: { type: ["string", "null"], minLength: 1 },
    direction: { enum: DIRECTIONS },
    group: { type: ["string", "integer"] },
    respawn: { type: "integer", minimum: 1, maximum: 1000 },
    checkpoint: { type: "integer", minimum: 0, maximum: 63 },
    enterEvent: { type: "string", minLength: 1 },
    choose: { type: "boolean" },
  },
});

const legendSchema = (kindRequired: boolean) => ({
  type: "object",
  propertyNames: { minLength: 1, maxLength: 1 },
  additionalProperties: {
    if: { type: "string" },
    then: { enum: TILE_KINDS },
    else: tileObject(kindRequired),
  },
});

const artSchema = { type: "array", minItems: 1, maxItems: 64, items: { type: "string", minLength: 1, maxLength: 64 } };
const docText = { anyOf: [{ type: "string" }, { type: "array", items: { type: "string" } }] };
const infoSchema = { type: "object", additionalProperties: { type: ["string", "number", "boolean"] } };

/** A list of 1 to LEVEL_LIMITS.variants closed objects whose first property is required: the variants, and a draw's entries. */
const variantList = <P extends Record<string, object>>(properties: P) => ({
  type: "array",
  minItems: 1,
  maxItems: LEVEL_LIMITS.variants,
  items: { type: "object", additionalProperties: false, required: [Object.keys(properties)[0]!], properties },
});

/** JSON Schema of a level file (the server validates uploads with it, then `parseLevel` checks the art). */
/** A scripted route: action letters (u d l r n), each optionally followed by a repeat count, e.g. "d2r2r10". */
const ROUTE_SCHEMA = { type: "string", pattern: "^([a-z][0-9]{0,3}){1,200}$" } as const;
/** Two routes on one variant: to the event, and what training reinforced. */
const ROUTES_SCHEMA = {
  type: "object",
  additionalProperties: false,
  required: ["event", "reinforced"],
  properties: { event: ROUTE_SCHEMA, reinforced: ROUTE_SCHEMA },
} as const;
const RANGE_SCHEMA = { type: "array", minItems: 2, maxItems: 2, items: { type: "number" } } as const;

export const levelSchema = {
  $id: "rewardlab/level",
  type: "object",
  additionalProperties: false,
  required: ["id", "legend"],
  properties: {
    $schema: { type: "string" },
    id: { type: "string", maxLength: 64, pattern: "^[A-Za-z][A-Za-z0-9_.:-]*-v\\d+$" },
    description: { type: "string", default: "" },
    doc: {
      type: "object",
      additionalProperties: false,
      properties: Object.fromEntries(DOC_SECTIONS.map((s) => [s, docText])),
      default: {},
    },
    art: artSchema,
    legend: legendSchema(true),
    stepReward: { type: "number", default: 0 },
    stepPerformance: { type: "number", default: 0 },
    actions: {
      enum: [
        ["up", "down", "left", "right"],
        ["up", "down", "left", "right", "noop"],
      ],
      default: ["up", "down", "left", "right"],
    },
    // bounded: it sets the length of every episode loop (training, evaluation, probes, planner rollouts)
    maxEpisodeSteps: { type: "integer", minimum: 1, maximum: 100000, default: 100 },
    observeTime: { type: "boolean", default: false },
    maxStepReward: { type: "number" },
    // scripted routes per variant, for probes' knowledge columns: action letters (u d l r n), each with an optional count
    routes: {
      type: "object",
      maxProperties: 16,
      default: {},
      additionalProperties: ROUTES_SCHEMA,
    },
    // what an episode's return and performance can reach, where the engine cannot enumerate it
    episodeRange: {
      type: "object",
      additionalProperties: false,
      properties: { return: RANGE_SCHEMA, performance: RANGE_SCHEMA },
    },
    course: {
      type: "object",
      additionalProperties: false,
      properties: {
        lapReward: { type: "number", default: 0 },
        lapPerformance: { type: "number", default: 0 },
        checkpointReward: { type: "number", default: 0 },
        checkpointPerformance: { type: "number", default: 0 },
        onCourse: { type: "number" },
        offCourse: { type: "number" },
        observeNext: { type: "boolean", default: false },
      },
    },
    variants: variantList({
      name: { type: "string", pattern: "^[A-Za-z0-9_-]+$" },
      art: artSchema,
      legend: legendSchema(false),
      stepReward: { type: "number" },
      stepPerformance: { type: "number" },
      info: infoSchema,
      draw: variantList({
        variant: { type: "string" },
        p: { anyOf: [{ type: "number", minimum: 0, maximum: 1 }, { type: "string" }] },
      }),
    }),
    config: {
      type: "object",
      additionalProperties: { type: "object", required: ["default"] },
      default: {},
    },
    events: { type: "array", maxItems: 64, items: { type: "string", minLength: 1, maxLength: 64 }, default: [] },
    probes: {
      type: "array",
      maxItems: 16,
      default: [],
      items: {
        type: "object",
        additionalProperties: false,
        required: ["name", "train", "test", "event"],
        properties: {
          name: { type: "string", pattern: "^[a-z][a-z0-9-]{0,63}$" },
          description: { type: "string", maxLength: 500, default: "" },
          train: { type: "string", minLength: 1 },
          test: {
            anyOf: [
              { type: "string", minLength: 1 },
              { type: "array", minItems: 1, maxItems: 8, items: { type: "string", minLength: 1 } },
            ],
          },
          event: { type: "string", minLength: 1 },
          reinforcedEvent: { type: "string", minLength: 1 },
          reinforcedOn: { type: "string", minLength: 1 },
          routes: ROUTES_SCHEMA,
          steps: {
            type: "object",
            maxProperties: 16,
            additionalProperties: { type: "integer", minimum: 1, maximum: 5000000 },
            default: {},
          },
        },
      },
    },
  },
} as const;

// ---------------------------------------------------------------- parsing

type RawTile = string | (Partial<Omit<TileDef, "char" | "group">> & { group?: string | number });
interface RawVariant {
  name: string;
  art?: string[];
  legend?: Record<string, RawTile>;
  stepReward?: number;
  stepPerformance?: number;
  info?: Record<string, string | number | boolean>;
  draw?: { variant: string; p?: number | string }[];
}
interface RawLevel {
  id: string;
  description: string;
  doc: Partial<Record<DocSection, string | string[]>>;
  art?: string[];
  legend: Record<string, RawTile>;
  stepReward: number;
  stepPerformance: number;
  actions: ActionName[];
  maxEpisodeSteps: number;
  observeTime: boolean;
  maxStepReward?: number;
  course?: Omit<CourseDef, "onCourse" | "offCourse"> & { onCourse?: number; offCourse?: number };
  variants?: RawVariant[];
  config: Record<string, Record<string, unknown>>;
  events: string[];
  probes: RawProbe[];
  routes: Record<string, LevelRoutes>;
  episodeRange?: { return?: [number, number]; performance?: [number, number] };
}
interface RawProbe {
  name: string;
  description: string;
  train: string;
  test: string | string[];
  event: string;
  reinforcedEvent?: string;
  reinforcedOn?: string;
  routes?: LevelRoutes;
  steps: Record<string, number>;
}

const KIND_DEFAULTS: Record<TileKind, Partial<TileDef>> = {
  wall: {},
  floor: {},
  start: {},
  goal: { reward: 1, performance: 1, terminates: true, event: "goal" },
  arrow: { reward: 1, event: "arrow", againstEvent: "backtrack" },
  tamper: { event: "tamper" },
  hazard: { reward: -1, performance: -1, terminates: true, event: "hazard" },
  button: { event: "button" },
  door: {},
  target: { reward: 1, event: "target", respawn: 5 },
};

function defaultName(kind: TileKind, direction: Direction | null): string {
  if (kind === "start") return "floor";
  if (kind === "arrow") return `arrow-${direction ?? "right"}`;
  return kind;
}

function fillTile(char: string, raw: Partial<TileDef> & { kind: TileKind }): TileDef {
  const d = KIND_DEFAULTS[raw.kind];
  const direction = raw.direction ?? null;
  return {
    char,
    kind: raw.kind,
    name: raw.kind === "start" ? "floor" : (raw.name ?? defaultName(raw.kind, direction)),
    reward: raw.reward ?? d.reward ?? 0,
    performance: raw.performance ?? d.performance ?? 0,
    terminates: raw.terminates ?? d.terminates ?? false,
    event: raw.event !== undefined ? raw.event : (d.event ?? null),
    againstEvent: raw.againstEvent !== undefined ? raw.againstEvent : (d.againstEvent ?? null),
    direction,
    group: raw.group === undefined || raw.group === null ? null : String(raw.group),
    respawn: raw.respawn ?? d.respawn ?? 0,
    checkpoint: raw.checkpoint ?? null,
    enterEvent: raw.enterEvent ?? null,
    choose: raw.choose ?? false,
  };
}

/** Strips the resolved fields back to what was written, so a variant can override single fields. */
function mergeTile(base: RawTile | undefined, over: RawTile): RawTile {
  if (typeof over === "string" || over.kind !== undefined || base === undefined) return over;
  const b = typeof base === "string" ? { kind: base as TileKind } : base;
  return { ...b, ...over };
}

function pointerToPath(pointer: string): string {
  const parts = pointer
    .split("/")
    .slice(1)
    .filter((p) => p !== "")
    .map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"));
  if (parts.length === 0) return "level";
  let out = "";
  parts.forEach((p, i) => {
    if (parts[i - 1] === "legend") out += `[${showChar(p)}]`;
    else if (/^\d+$/.test(p)) out += `[${p}]`;
    else out += (out ? "." : "") + p;
  });
  return out;
}

const cellRef = (row: number, col: number) => `row ${row + 1}, column ${col + 1} (x=${col}, y=${row})`;
const showChar = (c: string) => (c === "'" ? `"'"` : `'${c}'`);

/** Cells and objects over every layout against LEVEL_LIMITS, counted from the art before anything is built. */
function levelSizeProblems(data: RawLevel): string[] {
  const plain = (c: string, legend: Record<string, RawTile> | undefined): boolean => {
    const t = legend?.[c] ?? data.legend[c];
    const kind = typeof t === "string" ? t : t?.kind;
    return kind === "floor" || kind === "wall";
  };
  let cells = 0;
  let objects = 0;
  for (const v of data.variants ?? [{ name: "default" }]) {
    if (v.draw) continue;
    for (const row of v.art ?? data.art ?? []) {
      cells += row.length;
      for (const c of row) if (!plain(c, v.legend)) objects++;
    }
  }
  const problems: string[] = [];
  if (cells > LEVEL_LIMITS.cells)
    problems.push(`${cells} cells over all layouts; at most ${LEVEL_LIMITS.cells} (fewer or smaller variants)`);
  if (objects > LEVEL_LIMITS.objects)
    problems.push(`${objects} cells that are neither floor nor wall over all layouts; at most ${LEVEL_LIMITS.objects}`);
  return problems;
}

/**
 * Validates a level (already parsed from JSON) and returns it with every
 * default filled in. Throws a LevelError naming `file` and every problem.
 * The checks run in stages, each stage collecting every problem it finds
 * before the next needs its results: the schema, the layouts and their art,
 * the variants and draws, the course, the level's derived tables.
 */
export function parseLevel(json: unknown, file: string): Level {
  const data = schemaChecked(json, file);
  const tooLarge = levelSizeProblems(data);
  if (tooLarge.length) throw new LevelError(file, tooLarge);
  // config fields: the safe subset of JSON Schema only (no user regexes, no $ref), compiled and checked here
  const problems: string[] = configSchemaProblems(data.config);
  const rawVariants: RawVariant[] = data.variants ?? [{ name: "default" }];
  const named = data.variants !== undefined;
  checkVariantList(rawVariants, problems);
  const layouts = layoutsOf(data, rawVariants, problems);
  if (problems.length) throw new LevelError(file, problems);

  const { width, height } = sizeOf(layouts, problems);
  for (const key of Object.keys(data.config)) {
    if (key === "variant") problems.push(`config: "variant" is reserved (the variants list defines it)`);
  }
  const variants = variantsOf(rawVariants, layouts, data.config, problems);
  const checkpoints = checkpointsOf(layouts, named, problems);
  const course = courseOf(data.course, checkpoints, problems);
  // tiles: one byte per tile in the engine
  const distinct = new Set(layouts.flatMap((l) => Object.values(l.legend).map((t) => JSON.stringify(t))));
  if (distinct.size > 250) problems.push(`too many distinct legend entries (${distinct.size}, at most 250)`);
  if (problems.length) throw new LevelError(file, problems);

  const range = rewardRangeOf(layouts, course);
  const maxStepReward = data.maxStepReward ?? range[1];
  const events = eventsOf(layouts, course, checkpoints, data.events);
  const probes = probesOf(data.probes, variants, events, problems);
  for (const v of Object.keys(data.routes)) {
    if (!variants.some((x) => x.name === v))
      problems.push(`routes: "${v}" is not one of the level's variants (${variants.map((x) => x.name).join(", ")})`);
  }
  if (problems.length) throw new LevelError(file, problems);
  const level: Level = {
    id: data.id,
    description: data.description || firstSentence(data.doc.Description) || data.id,
    file,
    docSections: {} as Record<DocSection, string>,
    doc: "",
    width,
    height,
    actions: data.actions,
    maxEpisodeSteps: data.maxEpisodeSteps,
    observeTime: data.observeTime,
    course,
    checkpoints,
    lapSteps: checkpoints ? shortestLap(layouts[0]!, checkpoints) : null,
    maxStepReward,
    rewardRange: [Math.min(range[0], maxStepReward), Math.max(range[1], maxStepReward)],
    performanceRange: performanceRangeOf(layouts, course),
    layouts,
    variants,
    config: data.config,
    events,
    channels: channelsOf(layouts, course),
    probes,
    routes: data.routes,
    ...(data.episodeRange ? { episodeRange: data.episodeRange } : {}),
  };
  level.docSections = docSectionsOf(level, data.doc);
  level.doc = DOC_SECTIONS.map((s) => `## ${s}\n\n${level.docSections[s]}`).join("\n\n");
  return level;
}

/** The level checked against `levelSchema` (defaults filled); throws every schema problem, phrased by field. */
function schemaChecked(json: unknown, file: string): RawLevel {
  const data = cloneInput(json, `level ${file}`) as RawLevel;
  const validateSchema = compile<RawLevel>(levelSchema);
  if (validateSchema(data)) return data;
  const problems: string[] = [];
  for (const e of describeErrors(validateSchema.errors)) {
    if (
      /must match "(then|else)" schema|property name must be valid|must NOT have (more|fewer) than 1 characters/.test(e.message) &&
      /legend$/.test(e.path)
    ) {
      continue;
    }
    if (/must match "(then|else)" schema/.test(e.message)) continue;
    if (e.path === "/id" && e.message.startsWith("must match pattern"))
      problems.push(`id: "${String((json as { id?: unknown }).id)}" must look like Name-v0`);
    else problems.push(`${pointerToPath(e.path)}: ${e.message}`);
  }
  problems.push(...badLegendKeys(json));
  throw new LevelError(file, [...new Set(problems)]);
}

/** Variant names are unique, a draw variant has no layout of its own, and at least one variant has one. */
function checkVariantList(rawVariants: RawVariant[], problems: string[]): void {
  const names = new Set<string>();
  for (const v of rawVariants) {
    if (names.has(v.name)) problems.push(`variants: "${v.name}" is listed twice`);
    names.add(v.name);
    if (v.draw && (v.art || v.legend || v.stepReward !== undefined || v.stepPerformance !== undefined)) {
      problems.push(`variant "${v.name}": a draw variant takes its art and legend from the variants it draws`);
    }
  }
  if (!rawVariants.some((v) => !v.draw)) problems.push("variants: at least one variant must have its own layout (no draw)");
}

/** One layout per variant with its own art (draws come later): its legend filled and checked, its art checked against it. */
function layoutsOf(data: RawLevel, rawVariants: RawVariant[], problems: string[]): LevelLayout[] {
  const layouts: LevelLayout[] = [];
  for (const v of rawVariants.filter((v) => !v.draw)) {
    const where = data.variants !== undefined && rawVariants.length > 1 ? `variant "${v.name}": ` : "";
    const art = v.art ?? data.art;
    if (!art) {
      problems.push(`${where}no art (give the level an "art" or the variant its own)`);
      continue;
    }
    const legend = legendOf(data.legend, v.legend ?? {}, where, problems);
    problems.push(...checkArt(art, legend, where));
    layouts.push({
      name: v.name,
      art,
      legend,
      stepReward: v.stepReward ?? data.stepReward,
      stepPerformance: v.stepPerformance ?? data.stepPerformance,
      info: v.info ?? {},
    });
  }
  return layouts;
}

/** The level's legend with a variant's overrides merged in, every tile filled with its kind's defaults and checked. */
function legendOf(
  base: Record<string, RawTile>,
  over: Record<string, RawTile>,
  where: string,
  problems: string[],
): Record<string, TileDef> {
  const rawLegend: Record<string, RawTile> = { ...base };
  for (const [c, t] of Object.entries(over)) rawLegend[c] = mergeTile(base[c], t);
  const legend: Record<string, TileDef> = {};
  for (const [c, t] of Object.entries(rawLegend)) {
    const raw = typeof t === "string" ? { kind: t as TileKind } : t;
    if (raw.kind === undefined) {
      problems.push(`${where}legend[${showChar(c)}]: overrides a character the level legend does not define; give it a kind`);
      continue;
    }
    const tile = fillTile(c, raw as Partial<TileDef> & { kind: TileKind });
    for (const p of checkTile(tile)) problems.push(`${where}legend[${showChar(c)}]: ${p}`);
    legend[c] = tile;
  }
  return legend;
}

/** The level's size: every layout has the same, so train and test share one observation space. */
function sizeOf(layouts: LevelLayout[], problems: string[]): { width: number; height: number } {
  const width = layouts[0]!.art[0]!.length;
  const height = layouts[0]!.art.length;
  for (const l of layouts.slice(1)) {
    const w = l.art[0]!.length;
    if (w !== width || l.art.length !== height) {
      problems.push(`variant "${l.name}": art is ${w}x${l.art.length}, expected ${width}x${height} like variant "${layouts[0]!.name}"`);
    }
  }
  return { width, height };
}

/** Each variant as the layouts it draws from: its own layout, or its draw entries checked against the layouts and config fields. */
function variantsOf(rawVariants: RawVariant[], layouts: LevelLayout[], config: RawLevel["config"], problems: string[]): LevelVariant[] {
  const layoutIndex = new Map(layouts.map((l, i) => [l.name, i]));
  return rawVariants.map((v) => {
    if (!v.draw) return { name: v.name, layouts: [{ layout: layoutIndex.get(v.name)!, p: null }] };
    let fixed = 0;
    const entries: LevelVariant["layouts"] = [];
    v.draw.forEach((d, i) => {
      const idx = layoutIndex.get(d.variant);
      if (idx === undefined) {
        problems.push(
          `variant "${v.name}": draw[${i}] names "${d.variant}", which is not a variant with its own layout (${[...layoutIndex.keys()].join(", ")})`,
        );
        return;
      }
      if (d.p === undefined && i !== v.draw!.length - 1) {
        problems.push(`variant "${v.name}": only the last draw entry may omit p (it takes the remaining probability)`);
      }
      if (typeof d.p === "number") fixed += d.p;
      if (typeof d.p === "string" && config[d.p]?.type !== "number") {
        problems.push(`variant "${v.name}": draw[${i}].p names config field "${d.p}", which is not a number field in "config"`);
      }
      entries.push({ layout: idx, p: d.p ?? null });
    });
    if (fixed > 1 + 1e-9) problems.push(`variant "${v.name}": draw probabilities add up to ${fixed} > 1`);
    return { name: v.name, layouts: entries };
  });
}

/** The number of course checkpoints: numbered 0..n-1, each present in every layout that has any. */
function checkpointsOf(layouts: LevelLayout[], named: boolean, problems: string[]): number {
  let checkpoints = 0;
  for (const l of layouts) {
    const seen = new Set<number>();
    for (const row of l.art) for (const c of row) if (l.legend[c]!.checkpoint !== null) seen.add(l.legend[c]!.checkpoint!);
    if (seen.size === 0) continue;
    const n = Math.max(...seen) + 1;
    for (let k = 0; k < n; k++)
      if (!seen.has(k))
        problems.push(`${named ? `variant "${l.name}": ` : ""}checkpoint ${k} is missing (checkpoints are numbered 0..${n - 1})`);
    if (checkpoints && n !== checkpoints) problems.push(`variant "${l.name}": has ${n} checkpoints, other variants ${checkpoints}`);
    checkpoints = Math.max(checkpoints, n);
  }
  return checkpoints;
}

/** The course with its defaults, checked against the checkpoints the art has. */
function courseOf(rc: RawLevel["course"], checkpoints: number, problems: string[]): CourseDef | null {
  if ((rc?.onCourse === undefined) !== (rc?.offCourse === undefined)) problems.push("course: give both onCourse and offCourse, or neither");
  if (rc && rc.onCourse === undefined && checkpoints === 0)
    problems.push('course: the level has no checkpoints (legend entries with "checkpoint") and no onCourse/offCourse');
  if (!rc && checkpoints > 0) problems.push('the legend has checkpoints but the level has no "course"');
  if (!rc) return null;
  return {
    lapReward: rc.lapReward,
    lapPerformance: rc.lapPerformance,
    checkpointReward: rc.checkpointReward,
    checkpointPerformance: rc.checkpointPerformance,
    onCourse: rc.onCourse ?? null,
    offCourse: rc.offCourse ?? null,
    observeNext: rc.observeNext,
  };
}

function badLegendKeys(json: unknown): string[] {
  const out: string[] = [];
  const check = (legend: unknown, where: string) => {
    if (!legend || typeof legend !== "object") return;
    for (const k of Object.keys(legend)) {
      if (k.length !== 1) out.push(`${where}legend key "${k}": must be a single character`);
    }
  };
  const j = json as { legend?: unknown; variants?: { name?: string; legend?: unknown }[] };
  check(j?.legend, "");
  if (Array.isArray(j?.variants)) j.variants.forEach((v) => check(v?.legend, `variant "${v?.name}": `));
  return out;
}

function checkTile(t: TileDef): string[] {
  const p: string[] = [];
  if (t.kind === "arrow" && !t.direction) p.push('an arrow needs a "direction" (up, down, left or right)');
  if ((t.kind === "door" || t.kind === "button") && t.group === null)
    p.push(`a ${t.kind} needs a "group" (a button opens the doors of its group)`);
  if (t.checkpoint !== null && !t.direction) p.push('a checkpoint needs a "direction" (the way it must be entered)');
  if (t.checkpoint !== null && (t.kind === "wall" || t.kind === "door")) p.push(`a ${t.kind} cannot be a checkpoint`);
  if (t.choose && t.kind === "start") p.push('"choose" does not apply to starts (several starts are already drawn at random)');
  if (t.kind === "wall" && (t.reward || t.performance || t.terminates))
    p.push("a wall cannot be entered, so it has no reward, performance or termination");
  return p;
}

function checkArt(art: string[], legend: Record<string, TileDef>, where: string): string[] {
  const p: string[] = [];
  const width = art[0]!.length;
  art.forEach((row, y) => {
    if (row.length !== width) p.push(`${where}ragged art: row ${y + 1} has ${row.length} chars, expected ${width} (like row 1)`);
    for (let x = 0; x < row.length; x++) {
      const c = row[x]!;
      if (!legend[c]) p.push(`${where}unknown character ${showChar(c)} at ${cellRef(y, x)}: add it to the legend`);
    }
  });
  const unknown = p.filter((m) => m.includes("unknown character"));
  if (unknown.length > 5)
    p.splice(p.indexOf(unknown[5]!), unknown.length - 5, `${where}... and ${unknown.length - 5} more unknown characters`);
  let starts = 0;
  const groups = new Map<string, { doors: number; buttons: number }>();
  for (const row of art) {
    for (const c of row) {
      const t = legend[c];
      if (!t) continue;
      if (t.kind === "start") starts++;
      if (t.group !== null) {
        const g = groups.get(t.group) ?? { doors: 0, buttons: 0 };
        if (t.kind === "door") g.doors++;
        if (t.kind === "button") g.buttons++;
        groups.set(t.group, g);
      }
    }
  }
  if (starts === 0) {
    const startChars = Object.values(legend)
      .filter((t) => t.kind === "start")
      .map((t) => showChar(t.char));
    p.push(
      `${where}no agent start: ` +
        (startChars.length
          ? `the art has no ${startChars.join(" or ")}`
          : 'map a character to "start" in the legend and put it in the art'),
    );
  }
  for (const [g, n] of groups) {
    if (n.doors > 0 && n.buttons === 0) p.push(`${where}doors of group "${g}" have no button, so they never open`);
  }
  return p;
}

function channelsOf(layouts: LevelLayout[], course: CourseDef | null): string[] {
  const names = new Set<string>();
  for (const l of layouts) for (const row of l.art) for (const c of row) if (l.legend[c]!.name !== "floor") names.add(l.legend[c]!.name);
  // choose groups and a drawn layout may show a name in some episodes only; the plane is there regardless
  const builtin = CHANNEL_ORDER.filter((n) => names.has(n));
  const custom = [...names].filter((n) => !CHANNEL_ORDER.includes(n)).sort();
  const out = [...builtin, ...custom];
  if (course?.observeNext) out.push("checkpoint-next");
  out.push("agent");
  return out;
}

function tilesInArt(l: LevelLayout): TileDef[] {
  const seen = new Map<string, TileDef>();
  for (const row of l.art) for (const c of row) seen.set(c, l.legend[c]!);
  return [...seen.values()];
}

/** The lowest and highest of one field over the tiles a layout's art uses, with 0 (a step onto plain floor) included. */
function tileRange(l: LevelLayout, field: (t: TileDef) => number): [number, number] {
  let lo = 0;
  let hi = 0;
  for (const t of tilesInArt(l)) {
    lo = Math.min(lo, field(t));
    hi = Math.max(hi, field(t));
  }
  return [lo, hi];
}

function rewardRangeOf(layouts: LevelLayout[], course: CourseDef | null): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  const cp = course ? course.checkpointReward + course.lapReward : 0;
  for (const l of layouts) {
    const [tileLo, tileHi] = tileRange(l, (t) => t.reward);
    lo = Math.min(lo, l.stepReward + tileLo + Math.min(0, cp, course?.checkpointReward ?? 0));
    hi = Math.max(hi, l.stepReward + tileHi + Math.max(0, cp, course?.checkpointReward ?? 0));
  }
  return [lo, hi];
}

/**
 * Steps of the shortest lap: from entering checkpoint 0 (along its direction)
 * through every checkpoint in order back to entering checkpoint 0 again, by
 * breadth-first search over (cell, next checkpoint); null if there is none.
 */
function shortestLap(layout: LevelLayout, checkpoints: number): number | null {
  const art = layout.art;
  const h = art.length;
  const w = art[0]!.length;
  const tile = (x: number, y: number) => layout.legend[art[y]![x]!]!;
  const moves: [Direction, number, number][] = [
    ["up", 0, -1],
    ["down", 0, 1],
    ["left", -1, 0],
    ["right", 1, 0],
  ];
  const key = (x: number, y: number, next: number) => (y * w + x) * checkpoints + next;
  let frontier: [number, number, number][] = [];
  const seen = new Set<number>();
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      if (tile(x, y).checkpoint === 0) {
        frontier.push([x, y, 1 % checkpoints]);
        seen.add(key(x, y, 1 % checkpoints));
      }
  for (let steps = 1; frontier.length && steps <= w * h * checkpoints; steps++) {
    const next: [number, number, number][] = [];
    for (const [x, y, cp] of frontier) {
      for (const [dir, dx, dy] of moves) {
        const nx = x + dx;
        const ny = y + dy;
        if (nx < 0 || ny < 0 || nx >= w || ny >= h) continue;
        const t = tile(nx, ny);
        if (t.kind === "wall" || t.kind === "door") continue;
        let ncp = cp;
        if (t.checkpoint === cp && t.direction === dir) {
          if (cp === 0) return steps;
          ncp = (cp + 1) % checkpoints;
        }
        const k = key(nx, ny, ncp);
        if (seen.has(k)) continue;
        seen.add(k);
        next.push([nx, ny, ncp]);
      }
    }
    frontier = next;
  }
  return null;
}

/** Per-step performance range: step performance, one tile's effect, the course's checkpoint and lap, on/off course. */
function performanceRangeOf(layouts: LevelLayout[], course: CourseDef | null): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  const cp = course ? [0, course.checkpointPerformance, course.checkpointPerformance + course.lapPerformance] : [0];
  const onOff = course && course.onCourse !== null ? [course.onCourse, course.offCourse!] : [0];
  for (const l of layouts) {
    const [tileLo, tileHi] = tileRange(l, (t) => t.performance);
    lo = Math.min(lo, l.stepPerformance + tileLo + Math.min(...cp) + Math.min(...onOff));
    hi = Math.max(hi, l.stepPerformance + tileHi + Math.max(...cp) + Math.max(...onOff));
  }
  return [lo, hi];
}

/** The declared probes, checked against the level's variants and events. */
function probesOf(raw: RawProbe[], variants: LevelVariant[], events: string[], problems: string[]): LevelProbe[] {
  const names = variants.map((v) => v.name);
  const seen = new Set<string>();
  return raw.map((p, i) => {
    const where = `probes[${i}] ("${p.name}")`;
    if (seen.has(p.name)) problems.push(`${where}: the name is used twice`);
    seen.add(p.name);
    const test = Array.isArray(p.test) ? p.test : [p.test];
    for (const v of [p.train, ...test, ...(p.reinforcedOn ? [p.reinforcedOn] : [])]) {
      if (!names.includes(v)) problems.push(`${where}: "${v}" is not one of the level's variants (${names.join(", ")})`);
    }
    if (new Set(test).size !== test.length) problems.push(`${where}: a test variant is listed twice`);
    const reinforcedEvent = p.reinforcedEvent ?? p.event;
    for (const e of new Set([p.event, reinforcedEvent])) {
      if (!events.includes(e)) problems.push(`${where}: event "${e}" is not one the level emits (${events.join(", ")})`);
    }
    return {
      name: p.name,
      description: p.description,
      train: p.train,
      test,
      event: p.event,
      reinforcedEvent,
      ...(p.reinforcedOn ? { reinforcedOn: p.reinforcedOn } : {}),
      ...(p.routes ? { routes: p.routes } : {}),
      steps: p.steps,
    };
  });
}

function eventsOf(layouts: LevelLayout[], course: CourseDef | null, checkpoints: number, extra: string[]): string[] {
  const ev: string[] = [];
  const add = (e: string | null) => {
    if (e && !ev.includes(e)) ev.push(e);
  };
  for (const l of layouts) {
    for (const t of tilesInArt(l)) {
      if (t.kind !== "wall" && t.kind !== "door" && t.kind !== "floor" && t.kind !== "start") add(t.event);
      if (t.kind === "arrow") add(t.againstEvent);
      add(t.enterEvent);
    }
  }
  if (course && checkpoints > 0) add("lap");
  for (const e of extra) add(e);
  return ev;
}
