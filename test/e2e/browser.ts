/**
 * What every browser test shares: Debian's chromium (REWARDLAB_CHROMIUM names
 * another), headless, quiet, offline-safe; the real server as a child process
 * (`rewardlab serve` on a free port, with a temporary data folder of its own);
 * the built client; a page that records its uncaught errors; waiting with a
 * named bound; the REST API as JSON; a hash of a canvas's pixels.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { type Browser, type BrowserContextOptions, chromium, type Page } from "playwright-core";

export const ROOT = resolve(import.meta.dirname, "../..");
export const CHROMIUM = process.env.REWARDLAB_CHROMIUM || "/usr/bin/chromium";
const LISTENING = /listening on (http:\/\/127\.0\.0\.1:\d+)/;
/** How long a server may take to print "listening on" (a loaded machine compiles and loads tfjs first). */
const START_MS = 90_000;
/** How long a SIGTERM may take (the graceful shutdown checkpoints runs) before SIGKILL. */
const STOP_MS = 8_000;

export function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (or set REWARDLAB_CHROMIUM to a Chromium binary)`);
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-quic",
      "--no-first-run",
    ],
  });
}

/** Builds the client once when client/dist is missing (`npm run build:client` does it beforehand). */
export async function ensureClientBuilt(): Promise<void> {
  if (existsSync(join(ROOT, "client/dist/index.html"))) return;
  const { build } = await import("vite");
  await build({ root: join(ROOT, "client"), logLevel: "warn" });
}

/** Starts bin/rewardlab.js with `args`; resolves with what `found` picks from its output, or its whole output when it exits 0. */
function spawnCli(
  args: string[],
  env: NodeJS.ProcessEnv,
  found: (out: string) => string | null,
): { child: ChildProcess; output: () => string; done: Promise<string> } {
  const child = spawn(process.execPath, ["bin/rewardlab.js", ...args], {
    cwd: ROOT,
    env: { ...process.env, NO_COLOR: "1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  const done = new Promise<string>((res, rej) => {
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const hit = found(out);
      if (hit) res(hit);
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.on("exit", (code) => (code === 0 ? res(out) : rej(new Error(`rewardlab ${args[0]} exited with ${code}:\n${out.slice(-3000)}`))));
  });
  return { child, output: () => out, done };
}

/** Runs one command of the CLI to its end (`compare ...`); rejects with its output's tail when it fails. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  return spawnCli(args, env, () => null).done;
}

export interface ServeOptions {
  /** Arguments after `serve --port P --data D`, such as `--no-demo` or `--demo-idle 8`. */
  args?: string[];
  /** A data folder to serve; when absent, a new temporary one that `close()` removes. */
  dataDir?: string;
  /** Extra environment for the server process. */
  env?: NodeJS.ProcessEnv;
}

/** The real server as a child process: `start()` on a free port, `stop()` and `listen(port)` again on the same data folder, `close()`. */
export class E2eServer {
  base = "";
  private child: ChildProcess | null = null;
  private output: () => string = () => "";

  private constructor(
    readonly dataDir: string,
    private readonly ownsData: boolean,
    private readonly options: ServeOptions,
  ) {}

  static async start(options: ServeOptions = {}): Promise<E2eServer> {
    const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), "rewardlab-e2e-")));
    const server = new E2eServer(dataDir, options.dataDir === undefined, options);
    await server.listen(0);
    return server;
  }

  /** What the server printed since it last started. */
  get log(): string {
    return this.output();
  }

  /** Starts the process (again) on `port` (0: a free one); resolves with its base URL once it prints "listening on". */
  async listen(port: number): Promise<string> {
    const args = ["serve", "--port", String(port), "--data", this.dataDir, ...(this.options.args ?? [])];
    const cli = spawnCli(args, this.options.env ?? {}, (out) => LISTENING.exec(out)?.[1] ?? null);
    this.child = cli.child;
    this.output = cli.output;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, rej) => {
      timer = setTimeout(
        () => rej(new Error(`server did not print "listening on" within ${START_MS / 1000} s:\n${cli.output().slice(-3000)}`)),
        START_MS,
      );
    });
    cli.done.catch(() => undefined); // a failure after the race is reported by the race or by the test that follows
    try {
      const url = await Promise.race([cli.done, timeout]);
      if (!url.startsWith("http://")) throw new Error(`server exited before listening:\n${url.slice(-3000)}`);
      this.base = url;
      return url;
    } catch (e) {
      cli.child.kill("SIGKILL");
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  /** SIGTERM (the graceful shutdown), SIGKILL after a bound. */
  async stop(): Promise<void> {
    const s = this.child;
    if (!s || s.exitCode !== null || s.signalCode !== null) return;
    await new Promise<void>((res) => {
      const kill = setTimeout(() => s.kill("SIGKILL"), STOP_MS);
      s.once("exit", () => {
        clearTimeout(kill);
        res();
      });
      s.kill("SIGTERM");
    });
  }

  /** Stops the server and removes the data folder it made. */
  async close(): Promise<void> {
    await this.stop();
    if (this.ownsData) await rm(this.dataDir, { recursive: true, force: true });
  }

  /** A JSON request to the server; a GET is repeated (twice at most) when a kept-alive connection was reset. */
  async api<T>(method: string, path: string, body?: unknown): Promise<T> {
    let res: Response;
    for (let attempt = 1; ; attempt++) {
      try {
        res = await fetch(this.base + path, {
          method,
          headers: body ? { "content-type": "application/json" } : {},
          ...(body ? { body: JSON.stringify(body) } : {}),
        });
        break;
      } catch (e) {
        if (method !== "GET" || attempt >= 3) throw e;
      }
    }
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return (text ? JSON.parse(text) : null) as T;
  }
}

/** A browser test's fixtures: the server, Chromium, one page and the page's uncaught errors. */
export interface E2eSession {
  server: E2eServer;
  browser: Browser;
  page: Page;
  pageErrors: string[];
  /** Closes the browser, stops the server and removes its temporary data folder. */
  close(): Promise<void>;
}

/** Builds the client if needed, starts the server, launches Chromium and opens a 1440x900 page (`context` overrides). */
export async function openSession(options: ServeOptions & { context?: BrowserContextOptions } = {}): Promise<E2eSession> {
  await ensureClientBuilt();
  const server = await E2eServer.start(options);
  let browser: Browser;
  try {
    browser = await launchChromium();
  } catch (e) {
    await server.close();
    throw e;
  }
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, deviceScaleFactor: 1, ...options.context });
  const page = await context.newPage();
  const pageErrors: string[] = [];
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  const close = async () => {
    await browser.close();
    await server.close();
  };
  return { server, browser, page, pageErrors, close };
}

/** Polls `fn` until `ok` holds; past `timeoutMs` throws naming `what` and the last value. */
export async function until<T>(what: string, fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 60_000, everyMs = 300): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: T = await fn();
  while (!ok(last)) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what} (last value: ${JSON.stringify(last)?.slice(0, 300)})`);
    await new Promise((r) => setTimeout(r, everyMs));
    last = await fn();
  }
  return last;
}

/** A hash of a canvas's pixels (changes when anything drawn changes): "none" without a canvas, "blank" when nothing is drawn. */
export function canvasSignature(page: Page, selector: string): Promise<string> {
  return page.evaluate((sel) => {
    const c = document.querySelector<HTMLCanvasElement>(sel);
    if (!c || c.width < 2) return "none";
    const data = c.getContext("2d")!.getImageData(0, 0, c.width, c.height).data;
    let h = 2166136261;
    let ink = 0;
    for (let i = 0; i < data.length; i += 4) {
      h = Math.imul(h ^ (data[i]! + 7 * data[i + 1]! + 31 * data[i + 2]!), 16777619);
      if (data[i + 3]! > 0) ink++;
    }
    return ink === 0 ? "blank" : `${c.width}x${c.height}:${(h >>> 0).toString(16)}`;
  }, selector);
}

/** Waits until a canvas's pixels differ from what it shows now (a streamed frame drawn); resolves with the new signature. */
export async function canvasChanges(page: Page, selector: string, what: string, timeoutMs: number): Promise<string> {
  const before = await canvasSignature(page, selector);
  return until(
    what,
    () => canvasSignature(page, selector),
    (s) => s !== before && s !== "blank",
    timeoutMs,
    250,
  );
}

/** Waits until a canvas shows something drawn; resolves with its signature. */
export function canvasDrawn(page: Page, selector: string, what: string, timeoutMs: number): Promise<string> {
  return until(
    what,
    () => canvasSignature(page, selector),
    (s) => s !== "none" && s !== "blank",
    timeoutMs,
  );
}
