#!/usr/bin/env node
// Starts the command line: the compiled JavaScript in dist/ (built by `npm ci` and
// `npm run build`) while it is current, else the TypeScript sources through tsx's
// loader, saying so on a terminal (bin/entry.js decides). `--version` answers from
// package.json without loading anything else.
import { readFileSync } from "node:fs";
import { chooseEntry } from "./entry.js";

const root = new URL("../", import.meta.url);
const args = process.argv.slice(2);

if (args.length === 1 && (args[0] === "--version" || args[0] === "-V")) {
  console.log(JSON.parse(readFileSync(new URL("package.json", root), "utf8")).version);
  process.exit(0);
}

const entry = chooseEntry(root, args);
let cli;
let server;
if (entry.use === "dist") {
  cli = await import("../dist/experiments/cli.js");
  server = await import("../dist/server/cli.js");
} else {
  if (entry.reason !== "plugins import the sources" && process.stderr.isTTY) {
    console.error(`rewardlab: ${entry.reason}; running the TypeScript through tsx (slower start; \`npm run build\` compiles it)`);
  }
  const { register } = await import("tsx/esm/api");
  register();
  cli = await import("../experiments/cli.ts");
  // `serve` is defined in server/ (experiments/ never imports the server); its modules load only when it runs
  server = await import("../server/cli.ts");
}
process.exitCode = await cli.main(args, [server.serveCommand]);
