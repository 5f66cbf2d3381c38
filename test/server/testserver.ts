/**
 * A server for the tests of one file: started before them (a free port, a
 * fresh data folder, no demo, the cpu backend) and closed after; `api` and
 * `post` speak to its REST API, `url()` names it (for sockets).
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll } from "vitest";
import "../../envs/index.ts";
import "../../agents/index.ts";
import { type RunningServer, startServer } from "../../server/main.ts";

export function serverForTests(prefix: string) {
  let server: RunningServer | undefined;
  beforeAll(async () => {
    server = await startServer({ port: 0, dataDir: mkdtempSync(join(tmpdir(), prefix)), demo: false, backend: "cpu" });
  });
  afterAll(async () => {
    await server?.close();
  });
  const url = () => server!.url;
  const api = (path: string, init?: RequestInit) => fetch(`${url()}/api${path}`, init);
  const post = (path: string, body: unknown) =>
    api(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  return { url, api, post };
}
