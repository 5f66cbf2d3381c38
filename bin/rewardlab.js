#!/usr/bin/env node
// Runs the TypeScript command line through tsx's loader (no build step).
import { register } from "tsx/esm/api";

register();
const argv = process.argv.slice(2);
if (argv[0] === "serve") {
  const { serveMain } = await import("../server/cli.ts");
  // exit explicitly: once the store is closed nothing is left to do, and a
  // terminated worker's module-loader thread can otherwise keep the process up
  process.exit(await serveMain(argv.slice(1)));
} else {
  const { main } = await import("../experiments/cli.ts");
  process.exitCode = await main(argv);
}
