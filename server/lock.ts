/**
 * One server per data folder. The lock is SQLite's own exclusive lock on a
 * small file of the folder (`server.lock`), held for the server's life: the
 * operating system releases it when the process dies, however it dies
 * (kill -9 included), so a stale lock never blocks a restart. A second
 * server on the same folder gets SQLITE_BUSY at once and stops before it
 * opens the store, marks a run or loads a level.
 */
import Database from "better-sqlite3";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { RewardlabError } from "../envs/errors.ts";

export class DataFolderLocked extends RewardlabError {}

export interface DataLock {
  release(): void;
}

/** Takes the data folder's lock or throws DataFolderLocked (one line, naming the holder's pid when known). */
export function lockDataFolder(dataDir: string): DataLock {
  mkdirSync(dataDir, { recursive: true });
  const db = new Database(join(dataDir, "server.lock"), { timeout: 0 });
  try {
    db.pragma("locking_mode = EXCLUSIVE");
    db.exec("BEGIN EXCLUSIVE");
  } catch (e) {
    db.close();
    if ((e as { code?: string }).code !== "SQLITE_BUSY") throw e;
    let holder = "";
    try {
      holder = ` (pid ${Number.parseInt(readFileSync(join(dataDir, "server.pid"), "utf8"), 10)})`;
    } catch {
      // the holder has not written its pid yet
    }
    throw new DataFolderLocked(
      `another rewardlab server is using this data folder${holder}; stop it, or start this one with another --data folder`,
    );
  }
  try {
    writeFileSync(join(dataDir, "server.pid"), `${process.pid}\n`);
  } catch {
    // the pid only improves the second server's message
  }
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      db.close();
    },
  };
}
