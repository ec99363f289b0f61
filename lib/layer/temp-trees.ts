/**
 * The temp trees img-unpack builds beside their final name (`.NAME.unpacking-XXXXXX`), and
 * the record of who builds each (`….owner` beside it), so that nothing an interrupted unpack
 * leaves stays for ever, and nothing a live one is building is taken from under it:
 *
 * - on SIGINT/SIGTERM (and SIGHUP) the live temp trees of this process are removed before it
 *   dies of the signal;
 * - kill -9 cannot be caught: the next unpack into the same directory sweeps every temp tree
 *   whose owner is dead: the same boot and pid namespace, and no process with that pid and
 *   start time (lib/core/holder.ts). An owner in another pid namespace or boot (a container,
 *   or another machine, sharing the store) cannot be seen, so it is taken as alive until its
 *   record is stale (a live owner refreshes the record's mtime every minute). A tree with no record (an unpack from before
 *   records) is swept once it is stale by its own mtime.
 */
import { readFileSync, renameSync, statSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { listDir } from '../core/paths.js';
import { chmod, mkdir, mkdtemp, realpath } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { removeTree } from './tree.js';
import { currentHolder, holderLiveness, parseHolder } from '../core/holder.js';

const TEMP_NAME = /^\..+\.unpacking-[A-Za-z0-9]{6}$/;
/** A record (or its half-written temp) whose tree is gone: renamed into place, or removed by a sweep that was cut short. */
const RECORD_NAME = /^(\..+\.unpacking-[A-Za-z0-9]{6})\.owner(\.tmp)?$/;
const OWNER_SUFFIX = '.owner';
const HEARTBEAT_MS = 60_000;
/** A record (or an ownerless tree) not refreshed for this long belongs to no live unpack. */
export const STALE_MS = 10 * 60_000;

/** Live temp trees of this process → removing them needs chmod first (rootless). */
const live = new Map<string, { rootless: boolean }>();
let heartbeat: NodeJS.Timeout | undefined;
const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** A fresh, recorded temp dir beside `final` (same file system, so the last rename is atomic), after sweeping dead ones. */
export async function createTempTree(final: string, options: { rootless: boolean }): Promise<string> {
  await mkdir(dirname(final), { recursive: true });
  const parent = await realpath(dirname(final));
  sweepTempTrees(parent);
  // mkdtemp picks the unique name; the record is in place before anything is written inside.
  const temp = await mkdtemp(join(parent, `.${basename(final)}.unpacking-`));
  writeOwnerRecord(temp);
  await chmod(temp, 0o755);
  track(temp, options.rootless);
  return temp;
}

/** The temp tree is renamed into place (or gone): its record goes, then the signal handlers. */
export function releaseTempTree(temp: string): void {
  unlinkQuietly(`${temp}${OWNER_SUFFIX}`);
  untrack(temp);
}

/** Removes the temp tree, then its record. */
export function discardTempTree(temp: string, rootless: boolean): void {
  removeTree(temp, rootless);
  unlinkQuietly(`${temp}${OWNER_SUFFIX}`);
  // Last: until here a signal still finds the tree in `live` and finishes the job.
  untrack(temp);
}

/** Removes the temp trees in `dir` whose owner is dead (see the top of this file). */
export function sweepTempTrees(dir: string, now = Date.now()): string[] {
  const swept: string[] = [];
  const names = listDir(dir);
  for (const name of names) {
    const tree = RECORD_NAME.exec(name)?.[1];
    if (tree && !names.includes(tree)) unlinkQuietly(join(dir, name));
    if (!TEMP_NAME.test(name)) continue;
    const temp = join(dir, name);
    if (live.has(temp) || !ownerIsDead(temp, now)) continue;
    removeTree(temp, process.getuid?.() !== 0);
    unlinkQuietly(`${temp}${OWNER_SUFFIX}`);
    swept.push(temp);
  }
  return swept;
}

function ownerIsDead(temp: string, now: number): boolean {
  const recordPath = `${temp}${OWNER_SUFFIX}`;
  let text: string;
  let refreshed: number;
  try {
    refreshed = statSync(recordPath).mtimeMs;
    text = readFileSync(recordPath, 'utf8');
  } catch {
    return ageOf(temp, now) > STALE_MS;
  }
  const holder = parseHolder(text);
  const liveness = holder ? holderLiveness(holder) : 'unknown';
  return liveness === 'dead' || (liveness === 'unknown' && now - refreshed > STALE_MS);
}

function ageOf(path: string, now: number): number {
  try {
    return now - statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

/** Written whole under a temp name and renamed: a reader never sees half a record. */
function writeOwnerRecord(temp: string): void {
  const path = `${temp}${OWNER_SUFFIX}`;
  writeFileSync(`${path}.tmp`, `${JSON.stringify(currentHolder())}\n`);
  renameSync(`${path}.tmp`, path);
}

function track(temp: string, rootless: boolean): void {
  if (live.size === 0) {
    for (const signal of SIGNALS) process.on(signal, removeLiveAndDie);
    heartbeat = setInterval(refreshRecords, HEARTBEAT_MS);
    heartbeat.unref();
  }
  live.set(temp, { rootless });
}

function untrack(temp: string): void {
  if (!live.delete(temp) || live.size > 0) return;
  for (const signal of SIGNALS) process.off(signal, removeLiveAndDie);
  clearInterval(heartbeat);
}

function refreshRecords(): void {
  const now = new Date();
  for (const temp of live.keys()) {
    try {
      utimesSync(`${temp}${OWNER_SUFFIX}`, now, now);
    } catch {
      // Gone already: nothing to keep alive.
    }
  }
}

/** Interrupted: the half-built trees go, then the process dies of the signal as it would have. */
function removeLiveAndDie(signal: NodeJS.Signals): void {
  for (const [temp, { rootless }] of [...live]) {
    try {
      discardTempTree(temp, rootless);
    } catch {
      // Best effort: the next unpack's sweep finds what is left (its owner is dead by then).
    }
  }
  for (const s of SIGNALS) process.off(s, removeLiveAndDie);
  process.kill(process.pid, signal);
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Already gone.
  }
}
