/**
 * A lock file for read-modify-write of a shared file (index.json) by concurrent commands.
 * The holder's record is written whole to a temp file and link(2)ed into place, so the lock
 * never exists half-written: a reader sees a full record or no lock. A lock whose holder is
 * dead is broken; one whose holder we cannot see (another PID namespace) only when its
 * heartbeat is stale. Content that is no record (an empty file of an older version) is broken.
 * The file calls are synchronous: each is a moment on a local disk, and a pull takes and
 * releases the lock with a dozen of them, which through the thread pool cost a round trip each.
 * Only the wait for a held lock gives the event loop back.
 */
import { closeSync, fstatSync, linkSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
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
    const now = read(lockPath);
    if (now && now.ino === mine.ino && now.text === mine.text) rmSync(lockPath, { force: true });
  }
}

async function acquire(lockPath: string): Promise<Pick<LockFile, 'ino' | 'text'>> {
  const temp = join(dirname(lockPath), `.${basename(lockPath)}.${randomBytes(6).toString('hex')}.tmp`);
  const text = JSON.stringify(currentHolder());
  try {
    writeFileSync(temp, text);
    for (let attempt = 0; ; attempt++) {
      try {
        linkSync(temp, lockPath);
        return { ino: statSync(temp).ino, text };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      if (!breakIfAbandoned(lockPath)) await sleep(Math.min(RETRY_MS * (1 + attempt), 100));
    }
  } finally {
    try {
      rmSync(temp, { force: true });
    } catch {
      // A temp file that cannot be removed is swept later (sweepTempFiles).
    }
  }
}

/**
 * Removes the lock when its holder is gone; true when it did (or the lock went meanwhile).
 * Breakers take turns under a second lock file, and remove the lock only if it is still the
 * very file judged (inode and record): only its holder and breakers ever remove a lock, so a
 * lock its holder released meanwhile, and the fresh lock another process took, survive.
 */
function breakIfAbandoned(lockPath: string): boolean {
  const judged = judge(lockPath);
  if (judged === 'gone') return true;
  if (judged === 'held') return false;
  const breaking = `${lockPath}.break`;
  try {
    writeFileSync(breaking, '', { flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    // A breaker killed between its two steps leaves its turn behind: taken over once stale.
    const info = statSync(breaking, { throwIfNoEntry: false });
    if (info && Date.now() - info.mtimeMs > STALE_BREAK_MS) rmSync(breaking, { force: true });
    return false;
  }
  try {
    const now = read(lockPath);
    if (now && now.ino === judged.ino && now.text === judged.text) rmSync(lockPath, { force: true });
  } finally {
    rmSync(breaking, { force: true });
  }
  return true;
}

interface LockFile {
  ino: number;
  mtimeMs: number;
  text: string;
}

function judge(lockPath: string): 'gone' | 'held' | LockFile {
  const lock = read(lockPath);
  if (!lock) return 'gone';
  const holder = parseHolder(lock.text);
  const liveness = holder ? holderLiveness(holder) : 'dead';
  const abandoned = liveness === 'dead' || (liveness === 'unknown' && isStale(lock.mtimeMs));
  return abandoned ? lock : 'held';
}

function read(lockPath: string): LockFile | undefined {
  let fd;
  try {
    fd = openSync(lockPath, 'r');
  } catch {
    return undefined;
  }
  try {
    const info = fstatSync(fd);
    return { ino: info.ino, mtimeMs: info.mtimeMs, text: readFileSync(fd, 'utf8') };
  } finally {
    closeSync(fd);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
