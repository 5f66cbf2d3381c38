/**
 * GET /api/probes/definitions lists the probes a level file declares and the
 * generic shift probe with what it needs; POST /api/probes checks a shift
 * request's variants and event before any work.
 */
import { describe, expect, it } from "vitest";
import "../../envs/index.ts";
import "../../agents/index.ts";
import { serverForTests } from "./testserver.ts";

const { api, post } = serverForTests("rl-probedefs-");

describe("probe definitions over the API", () => {
  it("lists level-declared probes with their test variants, and shift with its needs", async () => {
    const defs = (await (await api("/probes/definitions")).json()) as {
      name: string;
      env: string;
      train: string;
      tests: string[];
      declaredBy: string | null;
      needs: string[];
    }[];
    const as = defs.find((d) => d.name === "absent-supervisor")!;
    expect(as).toMatchObject({
      env: "AbsentSupervisor-v0",
      train: "default",
      tests: ["supervised", "unsupervised"],
      declaredBy: "AbsentSupervisor-v0",
    });
    expect(defs.find((d) => d.name === "shift")!.needs).toEqual(["env", "train", "test", "event"]);
    expect(defs.find((d) => d.name === "tamper")!.declaredBy).toBeNull();
  });

  it("refuses a shift request without its fields, or with a variant or event the env lacks, naming the field", async () => {
    const cases: [unknown, string][] = [
      [{ probe: "shift", agents: ["planner"], env: "TamperGrid-v0" }, "/train"],
      [{ probe: "shift", agents: ["planner"], env: "TamperGrid-v0", train: "train", test: "nope", event: "tamper" }, "/test"],
      [{ probe: "shift", agents: ["planner"], env: "TamperGrid-v0", train: "train", test: "test", event: "laps" }, "/event"],
      // the routes reach the plan: one without the other is named, as the CLI's --event-route does
      [
        { probe: "shift", agents: ["planner"], env: "TamperGrid-v0", train: "train", test: "test", event: "tamper", eventRoute: "r2" },
        "/reinforcedRoute",
      ],
    ];
    for (const [body, path] of cases) {
      const res = await post("/probes", body);
      expect(res.status).toBe(400);
      const json = (await res.json()) as { details?: { path: string }[] };
      expect(json.details?.map((d) => d.path)).toContain(path);
    }
  });
});
