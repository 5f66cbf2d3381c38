#!/usr/bin/env node
// Runs the TypeScript command line through tsx's loader (no build step).
import { register } from "tsx/esm/api";

register();
const { main } = await import("../experiments/cli.ts");
// `serve` is defined in server/ (experiments/ never imports the server); its modules load only when it runs
const { serveCommand } = await import("../server/cli.ts");
process.exitCode = await main(process.argv.slice(2), [serveCommand]);
