#!/usr/bin/env node
// Compiles the command line's TypeScript (envs, agents, experiments, server) to
// JavaScript in dist/ (tsconfig.build.json), so `rewardlab` starts without
// compiling at every run. Run by `npm ci` / `npm install` (the `prepare` script)
// and by `npm run build`. Also puts beside the compiled modules what they read
// relative to themselves (package.json, the built-in levels, the worker boot
// file, a link to the client's build), then writes dist/.stamp: bin/rewardlab.js
// runs dist/ only while no source is newer than that stamp.
import { spawnSync } from "node:child_process";
import { copyFileSync, cpSync, existsSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dist = join(root, "dist");
const stamp = join(dist, ".stamp");

let tsc;
try {
  tsc = createRequire(join(root, "package.json")).resolve("typescript/bin/tsc");
} catch {
  // an install without dev dependencies: the command line runs its TypeScript through tsx
  console.error("rewardlab: typescript is not installed; dist/ not built (the command line will run its sources through tsx)");
  process.exit(0);
}
rmSync(stamp, { force: true });
const r = spawnSync(process.execPath, [tsc, "-p", join(root, "tsconfig.build.json")], { stdio: "inherit" });
if (r.status !== 0) {
  console.error("rewardlab: compiling the command line failed (see above); it runs its sources through tsx until a build succeeds");
  // an install (`prepare`) still succeeds: the command line works from its sources
  process.exit(process.env.npm_lifecycle_event === "prepare" ? 0 : (r.status ?? 1));
}
copyFileSync(join(root, "package.json"), join(dist, "package.json"));
rmSync(join(dist, "envs", "levels"), { recursive: true, force: true });
cpSync(join(root, "envs", "levels"), join(dist, "envs", "levels"), { recursive: true });
copyFileSync(join(root, "experiments", "worker-boot.js"), join(dist, "experiments", "worker-boot.js"));
// the server serves ../client/dist relative to itself: dist/client is a link to the real client folder
mkdirSync(dist, { recursive: true });
if (!existsSync(join(dist, "client"))) symlinkSync(join("..", "client"), join(dist, "client"), "dir");
writeFileSync(stamp, `${new Date().toISOString()}\n`);
