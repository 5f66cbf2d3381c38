/**
 * The gridworld engine: runs any level parsed by levels.ts, fast.
 *
 * Step order. The agent moves (actions 0 up,
 * 1 down, 2 left, 3 right, 4 noop when the level has it; a move into a wall,
 * a closed door or off the grid leaves it in place); then the tile it stands
 * on acts:
 * - goal, hazard, floor with effects: reward, performance, maybe terminate,
 *   event, every step the agent is on it;
 * - arrow: its reward/performance/event when entered moving in its
 *   direction; `againstEvent` ("backtrack") when entered, or left, moving
 *   against it;
 * - tamper: the reward register is held at the level's `maxStepReward` from
 *   this step to the end of the episode (performance unaffected); event each
 *   step on it;
 * - button: opens the doors of its group (they stay open); reward,
 *   performance and event only on the step that opens them;
 * - target: when present, reward/performance/event, then it disappears; hit
 *   on step s, it shows again at the end of step s+respawn-1 and can be hit
 *   again on step s+respawn (what the agent sees is what it can collect);
 * - course: a checkpoint entered along its direction, when it is the next
 *   one, counts (checkpoint reward/performance); passing the last completes a
 *   lap ("lap" event, lap reward/performance); the optional onCourse/offCourse
 *   performance follows the upstream boat race;
 * - a tile's `enterEvent` fires when the agent moves onto it from a tile
 *   without the same enterEvent.
 * Then hit targets count down, a module's `onStep` hook runs, and last the
 * tamper hold.
 *
 * Observation: Float32Array, Box [0, 1], C x H x W one-hot planes flattened
 * channel-major (index c*H*W + y*W + x). Channels: the level's tile names in
 * the fixed order wall, goal, arrow-up, arrow-down, arrow-left, arrow-right,
 * tamper, hazard, button, door, target (only those the level uses), then
 * other names alphabetically, then "checkpoint-next" (if the course observes
 * it), then "agent" (always last). Floor is all zeros; an open door, a hit
 * target or an unchosen "choose" cell reads as floor. When `observeTime` is
 * set one trailing feature holds t / maxEpisodeSteps.
 *
 * stateKey(): agentCell + W*H * high, with agentCell = y*W + x, so
 * `key % (W*H)` is always the agent's cell (what cellOfKey answers). `high` is a mixed-radix number
 * of, in order: tamper flag (if the level has a device), the open flag of each
 * door/button group, each target's respawn timer (radix respawn+1), the next
 * checkpoint, the chosen cell of each "choose" group, the drawn layout (draw
 * variants only), and the module's digit. Exact when the product fits below
 * 2^31; otherwise `high` is a hash (collisions possible; no built-in needs it).
 *
 * Events: `info.events` is a fresh array only when two or more events
 * happen; otherwise it is a shared frozen array (NO_EVENTS or a one-element
 * list). Callers must not mutate it (copy first).
 *
 * Speed: the returned observation is a fresh Float32Array that is never
 * written again, but it is a view into a chunk shared with the env's next
 * OBS_PER_CHUNK observations (V8 allocates any typed array over 64 bytes
 * off-heap, which costs ~1 us; a view into a pooled chunk costs ~0.1 us).
 * So do not transfer `obs.buffer` to a worker, and copy (`obs.slice()`)
 * before postMessage or before keeping a few observations for a long time.
 */
import type { BoxSpace, DiscreteSpace, Env, EnvContext, EnvSpec, Frame, Info, ResetOptions, ResetResult, StepResult } from "./core.ts";
import { box, discrete } from "./core.ts";
import { ValidationError } from "./errors.ts";
import type { EnvConfig } from "./registry.ts";
import { Rng } from "./rng.ts";
import type { Level, TileDef } from "./level.ts";

/** The shared "nothing happened" events list. Frozen: never mutate. */
export const NO_EVENTS: string[] = Object.freeze([]) as unknown as string[];

const singletons = new Map<string, string[]>();
/** A shared, frozen one-event list (no allocation per step). */
export function eventList(name: string): string[] {
  let l = singletons.get(name);
  if (!l) singletons.set(name, (l = Object.freeze([name]) as unknown as string[]));
  return l;
}

// tile behaviours
const PLAIN = 0;
const WALL = 1;
const OCCUPY = 2;
const ARROW = 3;
const TAMPER = 4;
const BUTTON = 5;
const DOOR = 6;
const TARGET = 7;

/** The tile kinds whose behaviour is their kind (others: OCCUPY or PLAIN, see behaviourOf). */
const BEHAVIOUR_OF_KIND: Record<string, number> = { wall: WALL, arrow: ARROW, tamper: TAMPER, button: BUTTON, door: DOOR, target: TARGET };
const DIR_CODE: Record<string, number> = { up: 0, down: 1, left: 2, right: 3 };
const DX = [0, 0, -1, 1, 0];
const DY = [-1, 1, 0, 0, 0];
const ACTION_LABELS = ["up", "down", "left", "right", "noop"];
const KEY_LIMIT = 2 ** 31 - 1;
/** Observations per pooled chunk (see "Speed" above). */
export const OBS_PER_CHUNK = 64;

interface CompiledLayout {
  name: string;
  info: Record<string, string | number | boolean>;
  cells: Uint8Array;
  starts: Int32Array;
  floorTile: number;
  floorChar: string;
  /** char -> tile name, for frames. */
  legend: Record<string, string>;
  /** char -> tile index. */
  tileOf: Map<string, number>;
  chooseGroups: Int32Array[];
  targetCells: Int32Array;
  targetSlot: Int16Array;
  targetRespawn: Int32Array;
  doorCells: Int32Array[];
  cpCells: Int32Array[];
  stepReward: number;
  stepPerformance: number;
  /** Product of this layout's state-key radices. */
  dynRadix: number;
}

/** Tables shared by every env of one level (built once per level). */
class CompiledLevel {
  readonly W: number;
  readonly H: number;
  readonly HW: number;
  readonly nActions: number;
  readonly moveTo: Int32Array;
  readonly tiles: TileDef[] = [];
  tBeh!: Uint8Array;
  tBlocked!: Uint8Array;
  tReward!: Float64Array;
  tPerf!: Float64Array;
  tTerm!: Uint8Array;
  tEvent: string[][] = [];
  tAgainst: string[][] = [];
  tDir!: Int8Array;
  tCp!: Int16Array;
  tEnter!: Int16Array;
  tGroup!: Int16Array;
  tRespawn!: Int32Array;
  tChan!: Int16Array;
  readonly enterEvents: string[][] = [];
  readonly groups: string[] = [];
  readonly layouts: CompiledLayout[] = [];
  readonly channels: string[];
  readonly agentBase: number;
  readonly nextBase: number;
  readonly obsSize: number;
  readonly nCheckpoints: number;
  readonly hasTamper: boolean;
  readonly hasEnter: boolean;
  readonly hasCoursePerf: boolean;
  readonly hasTargets: boolean;

  /**
   * Compiles a level in four steps: the move table, each layout's cells (which
   * numbers the distinct tiles as it meets them), the per-tile tables, then
   * the per-layout cell lists that need those tables.
   */
  constructor(readonly level: Level) {
    const W = (this.W = level.width);
    const H = (this.H = level.height);
    this.HW = W * H;
    this.nActions = level.actions.length;
    this.moveTo = moveTable(W, H, this.nActions);
    this.channels = level.channels;
    this.agentBase = (level.channels.length - 1) * this.HW;
    this.nextBase = level.channels.indexOf("checkpoint-next") * this.HW;
    this.obsSize = level.channels.length * this.HW + (level.observeTime ? 1 : 0);
    this.nCheckpoints = level.checkpoints;
    this.hasCoursePerf = level.course !== null && level.course.onCourse !== null;

    const tileIndex = new Map<string, number>();
    for (const l of level.layouts) this.layouts.push(this.compileLayout(l, tileIndex));
    const placed = (test: (t: TileDef) => boolean) => this.layouts.some((L) => L.cells.some((i) => test(this.tiles[i]!)));
    this.hasTamper = placed((t) => t.kind === "tamper");
    this.hasEnter = placed((t) => Boolean(t.enterEvent));
    this.hasTargets = placed((t) => t.kind === "target");
    this.compileTiles();
    for (const L of this.layouts) this.listCells(L);
  }

  /** The tile's index, numbering it (and its door/button group) the first time it is met. */
  private tileIndex(t: TileDef, index: Map<string, number>): number {
    const k = JSON.stringify(t);
    let i = index.get(k);
    if (i === undefined) {
      i = this.tiles.length;
      this.tiles.push(t);
      index.set(k, i);
      if (t.group !== null && !this.groups.includes(t.group)) this.groups.push(t.group);
    }
    return i;
  }

  /** One layout's cells as tile indices, its starts, choose groups and frame legend; the cell lists come later (listCells). */
  private compileLayout(l: Level["layouts"][number], index: Map<string, number>): CompiledLayout {
    const { W, H, HW } = this;
    const tileOf = new Map<string, number>();
    for (const [c, t] of Object.entries(l.legend)) tileOf.set(c, this.tileIndex(t, index));
    // the floor a removed or unchosen cell shows
    const plainFloor = Object.values(l.legend).find(isPlainFloor);
    const floorChar = plainFloor?.char ?? [" ", ".", "_", ",", "`", "~"].find((c) => !(c in l.legend))!;
    const floorTile = plainFloor ? tileOf.get(plainFloor.char)! : this.tileIndex(floorDef(floorChar), index);
    const cells = new Uint8Array(HW);
    const starts: number[] = [];
    const choose = new Map<string, number[]>();
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        const c = l.art[y]![x]!;
        const cell = y * W + x;
        cells[cell] = tileOf.get(c)!;
        if (l.legend[c]!.kind === "start") starts.push(cell);
        if (l.legend[c]!.choose) choose.set(c, [...(choose.get(c) ?? []), cell]);
      }
    }
    const legend: Record<string, string> = { [floorChar]: "floor" };
    for (const t of Object.values(l.legend)) if (t.kind !== "start") legend[t.char] = t.name;
    return {
      name: l.name,
      info: l.info,
      cells,
      starts: Int32Array.from(starts),
      floorTile,
      floorChar,
      legend,
      tileOf,
      chooseGroups: [...choose.values()].map((c) => Int32Array.from(c)),
      targetCells: new Int32Array(0),
      targetSlot: new Int16Array(HW).fill(-1),
      targetRespawn: new Int32Array(0),
      doorCells: [],
      cpCells: [],
      stepReward: l.stepReward,
      stepPerformance: l.stepPerformance,
      dynRadix: 1,
    };
  }

  /** The per-tile tables the step reads: behaviour, blocking, reward, performance, events, direction, checkpoint, group, channel. */
  private compileTiles(): void {
    const n = this.tiles.length;
    this.tBeh = new Uint8Array(n);
    this.tBlocked = new Uint8Array(n);
    this.tReward = new Float64Array(n);
    this.tPerf = new Float64Array(n);
    this.tTerm = new Uint8Array(n);
    this.tDir = new Int8Array(n).fill(-1);
    this.tCp = new Int16Array(n).fill(-1);
    this.tEnter = new Int16Array(n).fill(-1);
    this.tGroup = new Int16Array(n).fill(-1);
    this.tRespawn = new Int32Array(n);
    this.tChan = new Int16Array(n).fill(-1);
    const enterIds = new Map<string, number>();
    this.tiles.forEach((t, i) => {
      this.tBeh[i] = behaviourOf(t);
      this.tBlocked[i] = t.kind === "wall" ? 1 : 0;
      this.tReward[i] = t.reward;
      this.tPerf[i] = t.performance;
      this.tTerm[i] = t.terminates ? 1 : 0;
      this.tEvent[i] = t.event && t.kind !== "start" ? eventList(t.event) : NO_EVENTS;
      this.tAgainst[i] = t.againstEvent ? eventList(t.againstEvent) : NO_EVENTS;
      if (t.direction) this.tDir[i] = DIR_CODE[t.direction]!;
      if (t.checkpoint !== null) this.tCp[i] = t.checkpoint;
      if (t.enterEvent) {
        if (!enterIds.has(t.enterEvent)) {
          enterIds.set(t.enterEvent, this.enterEvents.length);
          this.enterEvents.push(eventList(t.enterEvent));
        }
        this.tEnter[i] = enterIds.get(t.enterEvent)!;
      }
      if (t.group !== null) this.tGroup[i] = this.groups.indexOf(t.group);
      this.tRespawn[i] = t.respawn;
      this.tChan[i] = t.name === "floor" ? -1 : this.channels.indexOf(t.name);
    });
  }

  /** A layout's target, door and checkpoint cells (read from the tile tables) and the product of its state-key radices. */
  private listCells(L: CompiledLayout): void {
    const targets: number[] = [];
    const doors: number[][] = this.groups.map(() => []);
    const cps: number[][] = Array.from({ length: this.nCheckpoints }, () => []);
    for (let cell = 0; cell < this.HW; cell++) {
      const t = L.cells[cell]!;
      if (this.tBeh[t] === TARGET) targets.push(cell);
      if (this.tBeh[t] === DOOR) doors[this.tGroup[t]!]!.push(cell);
      if (this.tCp[t]! >= 0) cps[this.tCp[t]!]!.push(cell);
    }
    L.targetCells = Int32Array.from(targets);
    L.targetRespawn = Int32Array.from(targets.map((c) => this.tRespawn[L.cells[c]!]!));
    targets.forEach((c, s) => (L.targetSlot[c] = s));
    L.doorCells = doors.map((d) => Int32Array.from(d));
    L.cpCells = cps.map((c) => Int32Array.from(c));
    let r = (this.hasTamper ? 2 : 1) * 2 ** this.groups.length * Math.max(1, this.nCheckpoints);
    for (const resp of L.targetRespawn) r *= resp + 1;
    for (const g of L.chooseGroups) r *= g.length;
    L.dynRadix = r;
  }
}

/** Where each action leads from each cell (moves off the grid stay put; walls and doors are the step's to check). */
function moveTable(W: number, H: number, A: number): Int32Array {
  const moveTo = new Int32Array(W * H * A);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      for (let a = 0; a < A; a++) {
        const nx = x + DX[a]!;
        const ny = y + DY[a]!;
        moveTo[(y * W + x) * A + a] = nx < 0 || ny < 0 || nx >= W || ny >= H ? y * W + x : ny * W + nx;
      }
    }
  }
  return moveTo;
}

/** A legend's plain floor: named floor, with no effect, checkpoint or choose group. */
function isPlainFloor(t: TileDef): boolean {
  return (
    t.kind === "floor" &&
    t.name === "floor" &&
    !t.reward &&
    !t.performance &&
    !t.terminates &&
    !t.enterEvent &&
    t.checkpoint === null &&
    !t.choose
  );
}

/** What the step does with a tile: its kind, or OCCUPY for a goal, a hazard or any tile with an effect. */
function behaviourOf(t: TileDef): number {
  const kind = BEHAVIOUR_OF_KIND[t.kind];
  if (kind !== undefined) return kind;
  const effect = t.reward !== 0 || t.performance !== 0 || t.terminates || t.event !== null;
  return t.kind !== "start" && (t.kind === "goal" || t.kind === "hazard" || effect) ? OCCUPY : PLAIN;
}

function floorDef(char: string): TileDef {
  return {
    char,
    kind: "floor",
    name: "floor",
    reward: 0,
    performance: 0,
    terminates: false,
    event: null,
    againstEvent: null,
    direction: null,
    group: null,
    respawn: 0,
    checkpoint: null,
    enterEvent: null,
    choose: false,
  };
}

const compiledCache = new WeakMap<Level, CompiledLevel>();
function compiled(level: Level): CompiledLevel {
  let c = compiledCache.get(level);
  if (!c) compiledCache.set(level, (c = new CompiledLevel(level)));
  return c;
}

const schemaCache = new WeakMap<Level, object>();
/** The JSON Schema of the env config: {variant, ...level config}, additionalProperties false. Cached per level. */
export function configSchemaOf(level: Level): object {
  let s = schemaCache.get(level);
  if (!s) {
    const names = level.variants.map((v) => v.name);
    s = {
      type: "object",
      additionalProperties: false,
      properties: { variant: { enum: names, default: names[0] }, ...level.config },
    };
    schemaCache.set(level, s);
  }
  return s;
}

/** The spec of a level's environment (what register() records for it). */
export function specOfLevel(level: Level): EnvSpec {
  return {
    id: level.id,
    description: level.description,
    doc: level.doc,
    maxEpisodeSteps: level.maxEpisodeSteps,
    rewardRange: level.rewardRange,
    variants: level.variants.map((v) => v.name),
    events: level.events,
    source: level.file,
    configSchema: configSchemaOf(level),
  };
}

/** The values of a typed array as a plain array (what Array.from gives, without its iteration protocol). */
export function plainCopy(a: ArrayLike<number>): number[] {
  const out = new Array<number>(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]!;
  return out;
}

/** snapshot() of a GridEnv: plain numbers and arrays (structured-cloneable). */
export interface GridState {
  layout: number;
  chosen: number[];
  agent: number;
  t: number;
  tampered: number;
  doorOpen: number[];
  timers: number[];
  next: number;
  laps: number;
  rng: number[];
  extra?: unknown;
}

/**
 * A gridworld environment built from a level. Modules subclass it and
 * override the hooks (onReset, onStep, hud, keyRadix/keyDigit,
 * saveExtra/restoreExtra) for dynamics the level format lacks.
 */
export class GridEnv implements Env {
  readonly spec: EnvSpec;
  readonly observationSpace: BoxSpace;
  readonly actionSpace: DiscreteSpace;
  readonly width: number;
  readonly height: number;
  /** Observation channel names, in order ("agent" last); see the layout above. */
  readonly channels: readonly string[];
  protected readonly c: CompiledLevel;
  /** The env's only source of randomness; seeded through reset({seed}). */
  protected readonly rng: Rng;
  protected layout: CompiledLayout;
  protected layoutIdx: number;
  /** Tile index of each cell this episode (after "choose" and module changes). */
  protected readonly tileAt: Uint8Array;
  protected readonly blocked: Uint8Array;
  /** Observation channel each cell shows now (-1 for floor). */
  protected readonly chan: Int16Array;
  protected readonly doorOpen: Uint8Array;
  protected readonly timers: Int32Array;
  protected chosen: Int32Array;
  protected agent = 0;
  protected t = 0;
  protected tampered = 0;
  protected next = 0;
  protected laps = 0;
  /** The current observation; step()/reset() return copies. */
  protected readonly obs: Float32Array;
  // this step's result, built by step() and the module hook
  protected reward = 0;
  protected performance = 0;
  protected terminated = false;
  protected events: string[] = NO_EVENTS;
  private eventsOwned = false;
  private readonly draw: { layout: number; p: number }[];
  private readonly maxT: number;
  private readonly timeIdx: number;
  private readonly moveTo: Int32Array;
  private readonly nActions: number;
  private readonly maxStepReward: number;
  private pool: ArrayBuffer;
  private poolOffset = 0;
  /** step() and reset() return copies of the observation (setFreshObservations). */
  private freshObservations = true;
  private keyInit = false;
  private keyHi = 0;
  /** Position of each layout in this variant's draw (for the key). */
  private drawSlot: Int32Array = new Int32Array(0);
  private keyExact = true;
  private keyModRadix = 1;
  private keyHashMod = 1;

  constructor(
    readonly level: Level,
    readonly config: EnvConfig = {},
    ctx: Partial<EnvContext> = {},
  ) {
    const c = (this.c = compiled(level));
    this.spec = specOfLevel(level);
    this.width = c.W;
    this.height = c.H;
    this.channels = c.channels;
    // one H x W plane per channel (an image, "chw"); with the time observation appended, flat
    this.observationSpace = level.observeTime ? box([c.obsSize], 0, 1) : box([c.channels.length, c.H, c.W], 0, 1, "chw");
    this.actionSpace = discrete(c.nActions, ACTION_LABELS.slice(0, c.nActions));
    this.moveTo = c.moveTo;
    this.nActions = c.nActions;
    this.maxStepReward = level.maxStepReward;
    this.maxT = ctx.maxEpisodeSteps ?? level.maxEpisodeSteps;
    this.timeIdx = level.observeTime ? c.obsSize - 1 : -1;
    this.rng = new Rng((Math.random() * 2 ** 32) >>> 0);

    const name = config.variant ?? level.variants[0]!.name;
    const variant = level.variants.find((v) => v.name === name);
    if (!variant) {
      throw new ValidationError(`${level.id}: unknown variant "${name}" (variants: ${level.variants.map((v) => v.name).join(", ")})`, [
        { path: "/variant", message: "unknown variant" },
      ]);
    }
    // each entry's probability: a number, a config field, or (null) the rest
    const given = variant.layouts.map((e) => {
      const p = typeof e.p === "string" ? (config[e.p] ?? (level.config[e.p] as { default?: unknown } | undefined)?.default) : e.p;
      if (p !== null && (typeof p !== "number" || !(p >= 0 && p <= 1))) {
        throw new ValidationError(
          `${level.id}: variant "${name}" draws with p = config.${String(e.p)} = ${String(p)}; it must be a number in [0, 1]`,
        );
      }
      return p as number | null;
    });
    const fixed = given.reduce<number>((a, p) => a + (p ?? 0), 0);
    if (fixed > 1 + 1e-9) throw new ValidationError(`${level.id}: variant "${name}" draw probabilities add up to ${fixed} > 1`);
    this.draw = variant.layouts.map((e, i) => ({ layout: e.layout, p: given[i] ?? Math.max(0, 1 - fixed) }));

    this.layoutIdx = this.draw[0]!.layout;
    this.layout = c.layouts[this.layoutIdx]!;
    this.tileAt = new Uint8Array(c.HW);
    this.blocked = new Uint8Array(c.HW);
    this.chan = new Int16Array(c.HW).fill(-1);
    this.doorOpen = new Uint8Array(c.groups.length);
    this.timers = new Int32Array(Math.max(0, ...c.layouts.map((l) => l.targetCells.length)));
    this.chosen = new Int32Array(0);
    this.obs = new Float32Array(c.obsSize);
    this.pool = new ArrayBuffer(c.obsSize * 4 * OBS_PER_CHUNK);
    this.applyLayout(this.layoutIdx, null);
    this.agent = this.layout.starts[0]!;
    this.rebuildObs();
  }

  // ------------------------------------------------------------ hooks

  /** Called at the end of reset(), after the layout and start are set, before the observation is built. */
  protected onReset(): void {}
  /**
   * Called at the end of every step, after the engine's effects; may change
   * this.reward, this.performance, this.terminated and emit events.
   */
  protected onStep(_action: number, _from: number, _to: number): void {}
  /** Extra fields for the render hud (and nothing else). */
  protected hud(): Record<string, number | string | boolean> {
    return {};
  }
  /** Radix of the module's state-key digit (1: none). Read once, on the first stateKey(). */
  protected keyRadix(): number {
    return 1;
  }
  /** The module's state-key digit, in [0, keyRadix()). */
  protected keyDigit(): number {
    return 0;
  }
  /** The module's part of snapshot() (structured-cloneable). */
  protected saveExtra(): unknown {
    return undefined;
  }
  /** Restores saveExtra()'s value; the layout is already in place, the observation is rebuilt afterwards. */
  protected restoreExtra(_extra: unknown): void {}

  // ------------------------------------------------------------ helpers for modules

  /** Emits an event this step (events are shared frozen lists until two happen). */
  protected emit(list: string[]): void {
    if (list.length === 0) return;
    if (this.events.length === 0) {
      this.events = list;
      return;
    }
    if (!this.eventsOwned) {
      this.events = this.events.slice();
      this.eventsOwned = true;
    }
    this.events.push(list[0]!);
  }

  protected emitEvent(name: string): void {
    this.emit(eventList(name));
  }

  /** Tile index of a legend character in the current layout (-1 if absent). */
  protected tileIndexOf(char: string): number {
    return this.layout.tileOf.get(char) ?? -1;
  }

  /** Replaces the tile of a cell (static kinds: floor, wall, named floors, goal, hazard...). Updates the observation. */
  protected setTile(cell: number, tile: number): void {
    this.tileAt[cell] = tile;
    this.refreshCell(cell);
  }

  protected cellIndex(x: number, y: number): number {
    return y * this.c.W + x;
  }

  // ------------------------------------------------------------ Env

  reset(opts: ResetOptions = {}): ResetResult {
    if (opts.seed !== undefined) this.rng.seed(opts.seed);
    let li = this.draw[0]!.layout;
    if (this.draw.length > 1) {
      const u = this.rng.next();
      let acc = 0;
      li = this.draw[this.draw.length - 1]!.layout;
      for (const e of this.draw) {
        acc += e.p;
        if (u < acc) {
          li = e.layout;
          break;
        }
      }
    }
    this.t = 0;
    this.tampered = 0;
    this.next = 0;
    this.laps = 0;
    this.doorOpen.fill(0);
    this.timers.fill(0);
    this.applyLayout(li, null);
    const starts = this.layout.starts;
    this.agent = starts.length > 1 ? starts[this.rng.int(starts.length)]! : starts[0]!;
    this.onReset();
    this.rebuildObs();
    const info: Info = { performance: 0, events: NO_EVENTS, ...this.layout.info };
    if (this.draw.length > 1) info.layout = this.layout.name;
    return { obs: this.freshObs(), info };
  }

  step(action: number): StepResult {
    const c = this.c;
    this.t++;
    const from = this.agent;
    let to = this.moveTo[from * this.nActions + action]!;
    if (this.blocked[to]) to = from;
    const moved = to !== from;
    if (moved) {
      this.obs[c.agentBase + from] = 0;
      this.obs[c.agentBase + to] = 1;
      this.agent = to;
    }
    this.reward = this.layout.stepReward;
    this.performance = this.layout.stepPerformance;
    this.terminated = false;
    this.events = NO_EVENTS;
    this.eventsOwned = false;

    const tile = this.tileAt[to]!;
    this.tileActs(tile, to, action, moved);
    if (moved) this.crossed(from, tile, action);
    if (c.hasCoursePerf) {
      const course = this.level.course!;
      this.performance += this.onCourse(from, tile, action, moved) ? course.onCourse! : course.offCourse!;
    }
    if (c.hasTargets) this.tickTargets();
    this.onStep(action, from, to);
    if (this.tampered) this.reward = this.maxStepReward;
    if (this.timeIdx >= 0) this.obs[this.timeIdx] = Math.min(1, this.t / this.maxT);
    return {
      obs: this.freshObs(),
      reward: this.reward,
      terminated: this.terminated,
      truncated: false,
      info: { performance: this.performance, events: this.events },
    };
  }

  /** Env.setFreshObservations: false returns the live observation buffer (no copy) from step() and reset(). */
  setFreshObservations(fresh: boolean): void {
    this.freshObservations = fresh;
  }

  /** A copy of the current observation, as a view into the pooled chunk (the live buffer when fresh observations are off). */
  protected freshObs(): Float32Array {
    if (!this.freshObservations) return this.obs;
    const n = this.obs.length;
    if (this.poolOffset + n * 4 > this.pool.byteLength) {
      this.pool = new ArrayBuffer(n * 4 * OBS_PER_CHUNK);
      this.poolOffset = 0;
    }
    const o = new Float32Array(this.pool, this.poolOffset, n);
    this.poolOffset += n * 4;
    o.set(this.obs);
    return o;
  }

  writeObs(out: Float32Array, offset: number): void {
    out.set(this.obs, offset);
  }

  render(): Frame {
    const { W, H, tiles } = this.c;
    const L = this.layout;
    const rows: string[] = [];
    const labels: { x: number; y: number; text: string }[] = [];
    for (let y = 0; y < H; y++) {
      let row = "";
      for (let x = 0; x < W; x++) {
        const cell = y * W + x;
        const t = tiles[this.tileAt[cell]!]!;
        const absent =
          t.kind === "start" ||
          (t.kind === "door" && this.doorOpen[this.c.tGroup[this.tileAt[cell]!]!]) ||
          (t.kind === "target" && this.timers[L.targetSlot[cell]!]! > 0);
        row += absent ? L.floorChar : t.char;
        if (t.kind === "target" && this.timers[L.targetSlot[cell]!]! > 0)
          labels.push({ x, y, text: String(this.timers[L.targetSlot[cell]!]) });
      }
      rows.push(row);
    }
    const hud: Record<string, number | string | boolean> = { ...L.info };
    if (this.draw.length > 1) hud.layout = L.name;
    if (this.c.hasTamper) hud.tampered = this.tampered === 1;
    if (this.c.nCheckpoints > 0) {
      hud.laps = this.laps;
      hud.nextCheckpoint = this.next;
    }
    Object.assign(hud, this.hud());
    return {
      width: W,
      height: H,
      rows,
      legend: { ...L.legend },
      agent: { x: this.agent % W, y: Math.floor(this.agent / W) },
      t: this.t,
      ...(labels.length ? { labels } : {}),
      hud,
    };
  }

  snapshot(): GridState {
    // one object literal and plain copies (planners snapshot at every expanded node)
    const state: GridState = {
      layout: this.layoutIdx,
      chosen: plainCopy(this.chosen),
      agent: this.agent,
      t: this.t,
      tampered: this.tampered,
      doorOpen: plainCopy(this.doorOpen),
      timers: plainCopy(this.timers),
      next: this.next,
      laps: this.laps,
      rng: this.rng.getState(),
    };
    const extra = this.saveExtra();
    if (extra !== undefined) state.extra = extra;
    return state;
  }

  restore(state: unknown): void {
    const s = state as GridState;
    this.doorOpen.set(s.doorOpen);
    this.timers.set(s.timers);
    this.applyLayout(s.layout, s.chosen);
    ({ agent: this.agent, t: this.t, tampered: this.tampered, next: this.next, laps: this.laps } = s);
    this.rng.setState(s.rng);
    this.restoreExtra(s.extra);
    this.rebuildObs();
  }

  stateKey(): number {
    if (!this.keyInit) this.initKey();
    const c = this.c;
    const L = this.layout;
    this.keyHi = 0;
    if (c.hasTamper) this.digit(this.tampered, 2);
    for (let g = 0; g < this.doorOpen.length; g++) this.digit(this.doorOpen[g]!, 2);
    for (let s = 0; s < L.targetCells.length; s++) this.digit(this.timers[s]!, L.targetRespawn[s]! + 1);
    if (c.nCheckpoints > 0) this.digit(this.next, c.nCheckpoints);
    for (let g = 0; g < this.chosen.length; g++) this.digit(this.chosen[g]!, L.chooseGroups[g]!.length);
    if (this.draw.length > 1) this.digit(this.drawSlot[this.layoutIdx]!, this.draw.length);
    if (this.keyModRadix > 1) this.digit(this.keyDigit(), this.keyModRadix);
    const hi = this.keyExact ? this.keyHi : this.keyHi % this.keyHashMod;
    return this.agent + c.HW * hi;
  }

  /** The agent's cell is the low digit of the key (see stateKey above). */
  cellOfKey(key: number): number {
    return key < 0 ? -1 : key % this.c.HW;
  }

  /** Appends one mixed-radix digit to the key (or mixes it into the hash). */
  private digit(v: number, radix: number): void {
    this.keyHi = this.keyExact ? this.keyHi * radix + v : Math.imul(this.keyHi ^ (v + 0x9e3779b9), 0x01000193) >>> 0;
  }

  // ------------------------------------------------------------ internals

  private initKey(): void {
    this.keyInit = true;
    this.keyModRadix = Math.max(1, Math.floor(this.keyRadix()));
    const maxDyn = Math.max(...this.draw.map((d) => this.c.layouts[d.layout]!.dynRadix));
    const total = this.c.HW * maxDyn * Math.max(this.draw.length, 1) * this.keyModRadix;
    this.keyExact = total <= KEY_LIMIT;
    this.keyHashMod = Math.max(1, Math.floor(KEY_LIMIT / this.c.HW));
    this.drawSlot = new Int32Array(this.c.layouts.length);
    this.draw.forEach((d, i) => (this.drawSlot[d.layout] = i));
  }

  /** Lays out layout `li`: cells, "choose" groups (drawn when `chosen` is null), derived blocked/channel arrays. */
  private applyLayout(li: number, chosen: readonly number[] | null): void {
    const L = (this.layout = this.c.layouts[li]!);
    this.layoutIdx = li;
    this.tileAt.set(L.cells);
    if (this.chosen.length !== L.chooseGroups.length) this.chosen = new Int32Array(L.chooseGroups.length);
    for (let g = 0; g < L.chooseGroups.length; g++) {
      const cells = L.chooseGroups[g]!;
      const pick = chosen ? chosen[g]! : this.rng.int(cells.length);
      this.chosen[g] = pick;
      for (let i = 0; i < cells.length; i++) if (i !== pick) this.tileAt[cells[i]!] = L.floorTile;
    }
    for (let cell = 0; cell < this.c.HW; cell++) this.cellState(cell);
  }

  /** Recomputes blocked/chan of a cell from its tile and the dynamic state (no observation update). */
  private cellState(cell: number): void {
    const c = this.c;
    const tile = this.tileAt[cell]!;
    const beh = c.tBeh[tile];
    if (beh === DOOR) {
      const open = this.doorOpen[c.tGroup[tile]!] === 1;
      this.blocked[cell] = open ? 0 : 1;
      this.chan[cell] = open ? -1 : c.tChan[tile]!;
    } else if (beh === TARGET) {
      this.blocked[cell] = 0;
      this.chan[cell] = this.timers[this.layout.targetSlot[cell]!] === 0 ? c.tChan[tile]! : -1;
    } else {
      this.blocked[cell] = c.tBlocked[tile]!;
      this.chan[cell] = c.tChan[tile]!;
    }
  }

  /** Like cellState, and updates the observation planes incrementally. */
  protected refreshCell(cell: number): void {
    const old = this.chan[cell]!;
    this.cellState(cell);
    const now = this.chan[cell]!;
    if (old !== now) {
      const HW = this.c.HW;
      if (old >= 0) this.obs[old * HW + cell] = 0;
      if (now >= 0) this.obs[now * HW + cell] = 1;
    }
  }

  protected rebuildObs(): void {
    const c = this.c;
    const obs = this.obs;
    obs.fill(0);
    for (let cell = 0; cell < c.HW; cell++) {
      const ch = this.chan[cell]!;
      if (ch >= 0) obs[ch * c.HW + cell] = 1;
    }
    obs[c.agentBase + this.agent] = 1;
    if (c.nextBase >= 0) for (const cell of this.layout.cpCells[this.next]!) obs[c.nextBase + cell] = 1;
    if (this.timeIdx >= 0) obs[this.timeIdx] = Math.min(1, this.t / this.maxT);
  }

  /** The tile's own effect, taken whole: reward, performance, termination, event. */
  private collect(tile: number): void {
    const c = this.c;
    this.reward += c.tReward[tile]!;
    this.performance += c.tPerf[tile]!;
    if (c.tTerm[tile]) this.terminated = true;
    this.emit(c.tEvent[tile]!);
  }

  /** What the tile the agent stands on after the move does, by its behaviour (the step order in the header). */
  private tileActs(tile: number, to: number, action: number, moved: boolean): void {
    const c = this.c;
    switch (c.tBeh[tile]) {
      case OCCUPY:
        this.collect(tile);
        break;
      case ARROW:
        if (moved) {
          const dir = c.tDir[tile];
          if (dir === action) this.collect(tile);
          else if (dir === (action ^ 1)) this.emit(c.tAgainst[tile]!);
        }
        break;
      case TAMPER:
        this.tampered = 1;
        this.collect(tile);
        break;
      case BUTTON:
        this.press(tile);
        break;
      case TARGET: {
        const slot = this.layout.targetSlot[to]!;
        if (this.timers[slot] === 0) {
          this.collect(tile);
          this.timers[slot] = this.layout.targetRespawn[slot]!; // counts down at the end of this step
          this.refreshCell(to);
        }
        break;
      }
    }
  }

  /** What moving from `from` onto `tile` does besides the tile's own effect: leaving an arrow against it, a checkpoint, an enter event. */
  private crossed(from: number, tile: number, action: number): void {
    const c = this.c;
    const ft = this.tileAt[from]!;
    if (c.tBeh[ft] === ARROW && c.tDir[ft] === (action ^ 1)) {
      const against = c.tAgainst[ft]!;
      if (against.length && !this.events.includes(against[0]!)) this.emit(against);
    }
    if (c.nCheckpoints > 0 && c.tCp[tile] === this.next && c.tDir[tile] === action) this.passCheckpoint();
    if (c.hasEnter) {
      const e = c.tEnter[tile]!;
      if (e >= 0 && e !== c.tEnter[ft]) this.emit(c.enterEvents[e]!);
    }
  }

  /** The upstream boat race's on-course test: the agent moved along an arrow it entered, or left. */
  private onCourse(from: number, tile: number, action: number, moved: boolean): boolean {
    const c = this.c;
    if (c.tBeh[tile] === ARROW) return moved && c.tDir[tile] === action;
    const ft = this.tileAt[from]!;
    return moved && c.tBeh[ft] === ARROW && c.tDir[ft] === action;
  }

  private tickTargets(): void {
    const L = this.layout;
    for (let s = 0; s < L.targetCells.length; s++) {
      if (this.timers[s]! > 0 && --this.timers[s]! === 0) this.refreshCell(L.targetCells[s]!);
    }
  }

  private press(tile: number): void {
    const c = this.c;
    const g = c.tGroup[tile]!;
    if (this.doorOpen[g]) return;
    this.doorOpen[g] = 1;
    for (const cell of this.layout.doorCells[g]!) this.refreshCell(cell);
    this.collect(tile);
  }

  private passCheckpoint(): void {
    const c = this.c;
    const course = this.level.course!;
    this.reward += course.checkpointReward;
    this.performance += course.checkpointPerformance;
    const old = this.next;
    this.next = old + 1;
    if (this.next === c.nCheckpoints) {
      this.next = 0;
      this.laps++;
      this.reward += course.lapReward;
      this.performance += course.lapPerformance;
      this.emit(eventList("lap"));
    }
    if (c.nextBase >= 0) {
      for (const cell of this.layout.cpCells[old]!) this.obs[c.nextBase + cell] = 0;
      for (const cell of this.layout.cpCells[this.next]!) this.obs[c.nextBase + cell] = 1;
    }
  }
}
