// A worker thread's entry. Compiled (dist/experiments/, built by bin/build-cli.js) it
// imports worker.js beside it; in the source tree it registers the tsx loader first,
// since worker threads do not inherit the main thread's.
import { existsSync } from "node:fs";

if (existsSync(new URL("./worker.js", import.meta.url))) {
  await import(new URL("./worker.js", import.meta.url).href);
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import("./worker.ts");
}
