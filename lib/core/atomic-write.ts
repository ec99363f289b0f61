/**
 * Whole-file writes readers never see half of: the data goes to a temp file beside the target
 * and is renamed over it. A temp file a failed write leaves (ENOSPC, kill -9) is removed by the
 * writer when it can, and by sweepTempFiles() once it is older than any write can take.
 */
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';

/** A temp file untouched this long is garbage: a live write renames its temp file within moments. */
export const STALE_TEMP_MS = 60_000;

const TEMP_FILE = /^\.(.*\.)?[0-9a-f]{12}\.tmp$/;

/** Write to a temp file and rename, so readers never see half a file. */
export async function writeFileAtomic(path: string, data: string | Buffer, options: { onlyIfMissing?: boolean } = {}): Promise<void> {
  const temp = tempPathFor(path);
  try {
    await writeFile(temp, data);
    if (options.onlyIfMissing && (await exists(path))) {
      await rm(temp, { force: true });
      return;
    }
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true }).catch(() => undefined);
    throw err;
  }
}

/** writeFileAtomic's synchronous twin, for the small files of a command's start (a cache entry), with the file's mode. */
export function writeFileAtomicSync(path: string, data: string | Buffer, mode = 0o666): void {
  const temp = tempPathFor(path);
  try {
    writeFileSync(temp, data, { mode });
    renameSync(temp, path);
  } catch (err) {
    try {
      rmSync(temp, { force: true });
    } catch {
      // swept later (sweepTempFiles)
    }
    throw err;
  }
}

function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
}

/** Removes the temp files of writes that died (untouched for STALE_TEMP_MS): a full disk's 0-byte ones too. */
export async function sweepTempFiles(dir: string, now = Date.now()): Promise<void> {
  const entries = await readdir(dir).catch(() => [] as string[]);
  for (const entry of entries) {
    if (!TEMP_FILE.test(entry)) continue;
    const info = await stat(join(dir, entry)).catch(() => undefined);
    if (info?.isFile() && now - info.mtimeMs > STALE_TEMP_MS) await rm(join(dir, entry), { force: true });
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** A regular file, of `size` bytes when a size is given. */
export async function isFileOfSize(path: string, size?: number): Promise<boolean> {
  try {
    const info = await stat(path);
    return info.isFile() && (size === undefined || info.size === size);
  } catch {
    return false;
  }
}
