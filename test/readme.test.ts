/** README's command table is the CLI's own definitions: it fails when README and `--help` drift apart. */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { README, commandTable, withTable } from "../scripts/readme-cli.ts";

describe("README command table", () => {
  it("is what scripts/readme-cli.ts generates from the CLI (run `npx tsx scripts/readme-cli.ts` to update it)", () => {
    const readme = readFileSync(README, "utf8");
    expect(withTable(readme, commandTable())).toBe(readme);
  });

  it("names every verb and every flag of train, as --help does", () => {
    const table = commandTable();
    for (const verb of [
      "envs",
      "play",
      "check-env",
      "train",
      "eval",
      "watch",
      "probe",
      "compare",
      "runs",
      "report",
      "sweep",
      "worker",
      "serve",
    ])
      expect(table).toMatch(new RegExp(`^\\| \`${verb}[ \`]`, "m"));
    const train = table.split("\n").find((l) => l.startsWith("| `train"))!;
    for (const f of [
      "--env <id>",
      "--variant",
      "--agent reinforce\\|ppo\\|planner",
      "--config",
      "--steps",
      "--backend tensorflow\\|wasm\\|cpu",
      "--out",
      "--force",
    ])
      expect(train).toContain(f);
  });
});
