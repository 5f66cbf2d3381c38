import { defineConfig, type ViteUserConfig } from "vitest/config";

/** What the unit and the browser test runs share (vitest.e2e.config.ts takes it too). */
export const shared: NonNullable<ViteUserConfig["test"]> = {
  // temporary folders go under one folder per run, removed at its end
  globalSetup: ["test/setup/tmpdir.ts"],
  reporters: ["default", "json"],
  // tfjs backends are process-global: keep each file in its own fork
  pool: "forks",
};

export default defineConfig({
  test: {
    ...shared,
    include: ["test/**/*.test.ts"],
    exclude: ["test/e2e/**", "node_modules/**"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    outputFile: { json: "test-results/unit.json" },
    maxWorkers: 2,
  },
});
