import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    exclude: ["test/e2e/**", "node_modules/**"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // tfjs backends are process-global: keep each file in its own fork
    // temporary folders go under one folder per run, removed at its end
    globalSetup: ["test/setup/tmpdir.ts"],
    reporters: ["default", "json"],
    outputFile: { json: "test-results/unit.json" },
    pool: "forks",
    maxWorkers: 2,
  },
});
