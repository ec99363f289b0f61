/**
 * A lock file for read-modify-write of a shared file (index.json) by concurrent commands.
 * The holder's record is written whole to a temp file and link(2)ed into place, so the lock
 * never exists half-written: a reader sees a full record or no lock. A lock whose holder is
 * dead is broken; one whose holder we cannot see (another PID namespace) only when its
 * heartbeat is stale. Content that is no record (an empty file of an older version) is broken.
 */
import { link, open, rename, rm, stat, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { currentHolder, holderLiveness, isStale, parseHolder, startHeartbeat } from './holder.js';

const RETRY_MS = 10;

export async function withLock<T>(lockPath: string, fn: () => Promise<T>): Promise<T> {
  await acquire(lockPath);
  const heartbeat = startHeartbeat(lockPath);
  try {
    return await fn();
  } finally {
    heartbeat.stop();
    await rm(lockPath, { force: true });
  }
}

async function acquire(lockPath: string): Promise<void> {
  const temp = join(dirname(lockPath), `.${basename(lockPath)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await writeFile(temp, JSON.stringify(currentHolder()));
    for (let attempt = 0; ; attempt++) {
      try {
        await link(temp, lockPath);
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      if (!(await breakIfAbandoned(lockPath))) await sleep(Math.min(RETRY_MS * (1 + attempt), 100));
    }
  } finally {
    await rm(temp, { force: true }).catch(() => undefined);
  }
}

/**
 * Removes the lock when its holder is gone; true when it did (or the lock went meanwhile).
 * The judged file is moved aside first and checked to be the one judged, so two processes
 * breaking the same dead lock cannot remove the fresh lock one of them just took.
 */
async function breakIfAbandoned(lockPath: string): Promise<boolean> {
  const judged = await judge(lockPath);
  if (judged === 'gone') return true;
  if (judged === 'held') return false;
  const aside = `${lockPath}.${randomBytes(6).toString('hex')}.broken`;
  try {
    await rename(lockPath, aside);
  } catch {
    return true;
  }
  const moved = await stat(aside).catch(() => undefined);
  // Not the one judged: someone took the lock in between. Put it back (it is theirs).
  if (moved && moved.ino !== judged.ino) await link(aside, lockPath).catch(() => undefined);
  await rm(aside, { force: true });
  return true;
}

async function judge(lockPath: string): Promise<'gone' | 'held' | { ino: number }> {
  let handle;
  try {
    handle = await open(lockPath, 'r');
  } catch {
    return 'gone';
  }
  try {
    const info = await handle.stat();
    const holder = parseHolder(await handle.readFile('utf8'));
    const liveness = holder ? holderLiveness(holder) : 'dead';
    const abandoned = liveness === 'dead' || (liveness === 'unknown' && isStale(info.mtimeMs));
    return abandoned ? { ino: info.ino } : 'held';
  } finally {
    await handle.close();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
