import { defineConfig } from "vitest/config";
import { shared } from "./vitest.config.ts";

// Browser tests: the real server as a child process, Debian's chromium via playwright-core.
// Run with `npx vitest run --config vitest.e2e.config.ts`.
export default defineConfig({
  test: {
    ...shared,
    include: ["test/e2e/**/*.test.ts"],
    testTimeout: 240_000,
    hookTimeout: 180_000,
    outputFile: { json: "test-results/e2e.json" },
    fileParallelism: false,
    env: { REWARDLAB_E2E: "1" },
  },
});
