/**
 * A saved comparison's tables as Markdown (what `rewardlab compare` writes as
 * <stem>.md; this reads the <stem>.json of a run, e.g. one made before the
 * .md existed):
 *
 *   npx tsx scripts/compare-md.ts data/reports/compare-<ts>.json
 */
import { readFileSync } from "node:fs";
import { compareMarkdown } from "../experiments/cli/probe.ts";
import type { ProbeReportSection } from "../experiments/report.ts";

const file = process.argv[2];
if (!file) {
  console.error("usage: npx tsx scripts/compare-md.ts <compare-*.json>");
  process.exit(2);
}
const saved = JSON.parse(readFileSync(file, "utf8")) as { sections: ProbeReportSection[] };
process.stdout.write(compareMarkdown(saved.sections));
