import { defineConfig } from "vitest/config";

// Browser tests: the real server as a child process, Debian's chromium via playwright-core.
// Run with `npx vitest run --config vitest.e2e.config.ts`.
export default defineConfig({
  test: {
    include: ["test/e2e/**/*.test.ts"],
    testTimeout: 240_000,
    hookTimeout: 180_000,
    // temporary folders go under one folder per run, removed at its end
    globalSetup: ["test/setup/tmpdir.ts"],
    reporters: ["default", "json"],
    outputFile: { json: "test-results/e2e.json" },
    pool: "forks",
    fileParallelism: false,
    env: { REWARDLAB_E2E: "1" },
  },
});
