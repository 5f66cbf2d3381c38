/** `rewardlab report <id>` takes a unique prefix of a run id (the client shows 8 characters). */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import "../../envs/index.ts";
import "../../agents/index.ts";
import { findRun } from "../../experiments/cli/store.ts";
import { UserError } from "../../experiments/cli/options.ts";
import { resolveRunSpec } from "../../experiments/run.ts";
import { Store } from "../../experiments/store.ts";

describe("findRun", () => {
  it("finds a run by its full id or a unique prefix, and says when a prefix is ambiguous or unknown", () => {
    const store = new Store(mkdtempSync(join(tmpdir(), "rl-cli-store-")));
    try {
      const spec = resolveRunSpec({ env: "GoalShift-v0", agent: "planner" });
      store.createRun("5f3a9c1e-0000-4000-8000-000000000001", spec, "completed");
      store.createRun("5f3a9c1e-0000-4000-8000-000000000002", spec, "completed");
      store.createRun("a71b2c3d-0000-4000-8000-000000000003", spec, "completed");
      expect(findRun(store, "a71b2c3d").id).toBe("a71b2c3d-0000-4000-8000-000000000003");
      expect(findRun(store, "5f3a9c1e-0000-4000-8000-000000000002").id).toBe("5f3a9c1e-0000-4000-8000-000000000002");
      expect(() => findRun(store, "5f3a9c1e")).toThrow(UserError);
      expect(() => findRun(store, "5f3a9c1e")).toThrow(/matches 2 runs.*give more characters/);
      expect(() => findRun(store, "ffff")).toThrow(/no run ffff/);
    } finally {
      store.close();
    }
  });
});
