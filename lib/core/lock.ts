/**
 * A lock file for read-modify-write of a shared file (index.json) by concurrent commands.
 * The holder's record is written whole to a temp file and link(2)ed into place, so the lock
 * never exists half-written: a reader sees a full record or no lock. A lock whose holder is
 * dead is broken; one whose holder we cannot see (another PID namespace) only when its
 * heartbeat is stale. Content that is no record (an empty file of an older version) is broken.
 */
import { link, open, rm, stat, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { currentHolder, holderLiveness, isStale, parseHolder, startHeartbeat } from './holder.js';

const RETRY_MS = 10;
/** A breaker's turn lasts moments; one this old was a breaker's that died. */
const STALE_BREAK_MS = 10_000;

export async function withLock<T>(lockPath: string, fn: () => Promise<T>): Promise<T> {
  const mine = await acquire(lockPath);
  const heartbeat = startHeartbeat(lockPath);
  try {
    return await fn();
  } finally {
    heartbeat.stop();
    // Only our own: had it been broken (we stalled past the heartbeat's limit), the lock there now is another's.
    const now = await read(lockPath);
    if (now && now.ino === mine.ino && now.text === mine.text) await rm(lockPath, { force: true });
  }
}

async function acquire(lockPath: string): Promise<Pick<LockFile, 'ino' | 'text'>> {
  const temp = join(dirname(lockPath), `.${basename(lockPath)}.${randomBytes(6).toString('hex')}.tmp`);
  const text = JSON.stringify(currentHolder());
  try {
    await writeFile(temp, text);
    for (let attempt = 0; ; attempt++) {
      try {
        await link(temp, lockPath);
        return { ino: (await stat(temp)).ino, text };
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
 * Breakers take turns under a second lock file, and remove the lock only if it is still the
 * very file judged (inode and record): only its holder and breakers ever remove a lock, so a
 * lock its holder released meanwhile, and the fresh lock another process took, survive.
 */
async function breakIfAbandoned(lockPath: string): Promise<boolean> {
  const judged = await judge(lockPath);
  if (judged === 'gone') return true;
  if (judged === 'held') return false;
  const breaking = `${lockPath}.break`;
  try {
    await writeFile(breaking, '', { flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    // A breaker killed between its two steps leaves its turn behind: taken over once stale.
    const info = await stat(breaking).catch(() => undefined);
    if (info && Date.now() - info.mtimeMs > STALE_BREAK_MS) await rm(breaking, { force: true });
    return false;
  }
  try {
    const now = await read(lockPath);
    if (now && now.ino === judged.ino && now.text === judged.text) await rm(lockPath, { force: true });
  } finally {
    await rm(breaking, { force: true });
  }
  return true;
}

interface LockFile {
  ino: number;
  mtimeMs: number;
  text: string;
}

async function judge(lockPath: string): Promise<'gone' | 'held' | LockFile> {
  const lock = await read(lockPath);
  if (!lock) return 'gone';
  const holder = parseHolder(lock.text);
  const liveness = holder ? holderLiveness(holder) : 'dead';
  const abandoned = liveness === 'dead' || (liveness === 'unknown' && isStale(lock.mtimeMs));
  return abandoned ? lock : 'held';
}

async function read(lockPath: string): Promise<LockFile | undefined> {
  let handle;
  try {
    handle = await open(lockPath, 'r');
  } catch {
    return undefined;
  }
  try {
    const info = await handle.stat();
    return { ino: info.ino, mtimeMs: info.mtimeMs, text: await handle.readFile('utf8') };
  } finally {
    await handle.close();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
