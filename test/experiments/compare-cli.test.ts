/**
 * `rewardlab compare` as a user runs it (spawned): the HTML report, a JSON
 * of every probe's results and their Markdown tables, written after each
 * probe and at the end.
 */
import { readFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it } from "vitest";
import { cli } from "./spawn-cli.ts";

it("compare writes its HTML report and a JSON of the probes' results", async () => {
  const data = join(await mkdtemp(join(tmpdir(), "rewardlab-compare-")), "data");
  const r = await cli(
    ["compare", "--agents", "planner", "--seeds", "2", "--steps", "200", "--episodes", "2", "--workers", "1", "--probes", "tamper"],
    {
      REWARDLAB_DATA: data,
    },
  );
  expect(r.stderr).not.toMatch(/Error/);
  expect(r.code).toBe(0);
  const m = r.stdout.match(/report written to (\S+\.html), results to (\S+\.json), tables to (\S+\.md)/);
  expect(m).not.toBeNull();
  const html = readFileSync(m![1]!, "utf8");
  expect(html).toContain("tamper");
  expect(html).not.toContain("Partial:");
  const json = JSON.parse(readFileSync(m![2]!, "utf8")) as { seeds: number; sections: { probe: string; results: { seeds: number }[] }[] };
  expect(json.seeds).toBe(2);
  expect(json.sections.map((s) => s.probe)).toEqual(["tamper"]);
  expect(json.sections[0]!.results).toHaveLength(1);
  expect(json.sections[0]!.results[0]!.seeds).toBe(2);
  // the same rows as a Markdown table: header, rule, one row for the planner with its two per-seed rates
  const md = readFileSync(m![3]!, "utf8").split("\n");
  expect(md[0]).toBe('#### probe tamper on TamperGrid-v0: event "tamper" at test, learning off');
  const table = md.filter((l) => l.startsWith("|"));
  expect(table).toHaveLength(3);
  expect(table[1]).toMatch(/^\| -+ \| -+ \|/);
  expect(table[2]!.split("|").map((c) => c.trim())[1]).toBe("planner");
  expect(table[2]).toContain("100% 100%");
}, 120_000);
