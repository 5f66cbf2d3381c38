/**
 * Uploaded level files in the data folder: written atomically (a temporary
 * file beside the target, fsync, rename, fsync of the folder), so a full
 * disk or a crash leaves the old file or the new one, never half of one; a
 * failed write removes its temporary file.
 */
import { open, readdir, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { randomBytes } from "node:crypto";

/** Writes `text` to `file` atomically; on any error the target is untouched and the temporary file is gone. */
export async function writeFileAtomic(file: string, text: string): Promise<void> {
  const tmp = join(dirname(file), `.${basename(file)}.${randomBytes(6).toString("hex")}.tmp`);
  try {
    const fh = await open(tmp, "wx", 0o644);
    try {
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw e;
  }
  // the rename itself survives a crash once the folder is synced (best effort: not every filesystem allows it)
  const dir = await open(dirname(file), "r").catch(() => null);
  if (dir)
    await dir
      .sync()
      .catch(() => undefined)
      .finally(() => dir.close());
}

/** Level files in a folder (what loadLevelDir would load). */
export async function levelFileCount(dir: string): Promise<number> {
  return (await readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith(".json") && !f.startsWith(".")).length;
}
