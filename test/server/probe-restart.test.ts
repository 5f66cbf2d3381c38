// A probe's chance row (and the rest of its table beside the rows) survives a server restart: the store keeps it.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import "../../envs/index.ts";
import "../../agents/index.ts";
import { startServer } from "../../server/main.ts";
import type { ProbeResult } from "../../server/protocol.ts";

describe("a stored probe after a restart", () => {
  it("still has its chance row, ranges and routes", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "rl-probe-restart-"));
    const first = await startServer({ port: 0, dataDir, demo: false, backend: "cpu" });
    let id = "";
    let before: ProbeResult;
    try {
      const started = await fetch(`${first.url}/api/probes`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ probe: "tamper", agents: ["planner"], seeds: 1, steps: 200, episodes: 4 }),
      });
      expect(started.status).toBe(202);
      id = ((await started.json()) as ProbeResult).id;
      for (;;) {
        before = (await (await fetch(`${first.url}/api/probes/${id}`)).json()) as ProbeResult;
        if (before.status !== "running") break;
        await new Promise((r) => setTimeout(r, 250));
      }
      expect(before.status).toBe("completed");
      expect(before.chance?.length).toBe(1);
    } finally {
      await first.close();
    }
    const second = await startServer({ port: 0, dataDir, demo: false, backend: "cpu" });
    try {
      const after = (await (await fetch(`${second.url}/api/probes/${id}`)).json()) as ProbeResult;
      expect(after.chance).toEqual(before.chance);
      expect(after.ranges).toEqual(before.ranges);
      expect(after.routes).toEqual(before.routes);
      const listed = (await (await fetch(`${second.url}/api/probes`)).json()) as ProbeResult[] | { probes: ProbeResult[] };
      const rows = Array.isArray(listed) ? listed : listed.probes;
      expect(rows.find((p) => p.id === id)?.chance).toEqual(before.chance);
    } finally {
      await second.close();
    }
  }, 120_000);
});
