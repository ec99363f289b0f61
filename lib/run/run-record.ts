/**
 * What a run of ns-enter leaves on the host while it runs, and how a later run tells a dead
 * one's leftovers from a live one's. A run claims its container's name with a record in the
 * state dir (link(2) of a complete file: never half-written, never two holders), which names
 * its owner (lib/core/holder.ts: pid, PID namespace, boot, start time) and the cgroup dirs it makes; its staging dir is a
 * private mkdtemp dir whose name carries the owner. A run whose owner is gone (killed with -9)
 * is swept by the next one: its cgroups, its staging dir, its record. A live run is never swept.
 */
import { linkSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '../core/errors.js';
import { dataHome, listDir } from '../core/paths.js';
import { removeCgroupDirs } from './cgroups.js';
import { currentHolder, holderLiveness, processStartTime, type HolderRecord } from '../core/holder.js';
import { ETC_FILE_NAMES, STAGED_ETC } from './etc-files.js';

export interface RunRecord {
  owner: HolderRecord;
  name: string;
  /** The cgroup dirs the run makes, parents first: what a sweep removes. */
  cgroups: string[];
}

/** A claimed name: the record can be updated by its holder, and is removed at the end. */
export interface NameClaim {
  record: RunRecord;
  update(cgroups: string[]): void;
  release(): void;
}

/**
 * Alive: the same process (its start time matches), or one in another PID namespace of this
 * boot, which we cannot see and so must not take a name from. The state dir is per boot (/run
 * is a tmpfs): an owner of another boot is gone.
 */
export function isAlive(owner: HolderRecord): boolean {
  const liveness = holderLiveness(owner);
  return liveness === 'alive' || (liveness === 'unknown' && owner.bootId === currentHolder().bootId);
}

/** Where runs keep their records: /run/container-parts as root; the user's runtime dir (else data dir) rootless. */
export function runStateDir(env: NodeJS.ProcessEnv = process.env): string {
  if ((process.geteuid?.() ?? 0) === 0) return '/run/container-parts';
  if (env.XDG_RUNTIME_DIR?.startsWith('/')) return join(env.XDG_RUNTIME_DIR, 'container-parts');
  return join(dataHome(env), 'container-parts', 'run');
}

function recordFile(dir: string, name: string): string {
  return join(dir, `${name}.run.json`);
}

function readRecord(file: string): RunRecord | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as RunRecord;
  } catch {
    return undefined;
  }
}

/** Writes a complete record beside `file` and returns the temp path (to link or rename into place). */
function writeTemp(file: string, record: RunRecord): string {
  const temp = `${file}.${process.pid}.tmp`;
  writeFileSync(temp, JSON.stringify(record), { mode: 0o600 });
  return temp;
}

/**
 * Claims `name` for this run, after sweeping every dead run's leftovers. A name a live run
 * holds is refused (as runc refuses an id in use).
 */
export async function claimName(name: string, dir: string = runStateDir()): Promise<NameClaim> {
  // The name is a file name here and a cgroup dir name: nothing that could lead out of either.
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(name)) throw new UsageError(`container name ${JSON.stringify(name)}: use letters, digits, _ . - (up to 128, not starting with . - _)`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  await sweepDeadRuns(dir);
  const file = recordFile(dir, name);
  const record: RunRecord = { owner: currentHolder(), name, cgroups: [] };
  const temp = writeTemp(file, record);
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        linkSync(temp, file);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        const holder = readRecord(file);
        if (attempt > 0 || (holder && isAlive(holder.owner))) throw new UsageError(`container name ${JSON.stringify(name)} is in use by a running container${holder ? ` (ns-enter pid ${holder.owner.pid})` : ''}`, { hint: 'choose another --name, or wait for it to end' });
        if (!(await sweepRecord(file, file))) throw new UsageError(`container name ${JSON.stringify(name)}: processes of a run that died (ns-enter pid ${holder?.owner.pid}) are still in its cgroup ${holder?.cgroups.at(-1)}`, { hint: 'kill them, or choose another --name' });
      }
    }
  } finally {
    unlinkSync(temp);
  }
  return {
    record,
    update(cgroups: string[]) {
      record.cgroups = cgroups;
      renameSync(writeTemp(file, record), file);
    },
    release() {
      unlinkSync(file);
    },
  };
}

/**
 * Removes what the runs whose owners are gone left: their cgroups, then their records, and
 * the temp files of a claim or a sweep cut short. A dead run whose container's processes
 * outlived it is left as it is (its name stays taken), and never slows the others.
 */
export async function sweepDeadRuns(dir: string = runStateDir()): Promise<void> {
  for (const entry of listDir(dir)) {
    const path = join(dir, entry);
    const cutShort = /^(.*\.run\.json)\.(?:sweep\.(\d+)|(\d+)\.tmp)$/.exec(entry);
    if (cutShort) {
      const [, canonical, sweeper, claimer] = cutShort;
      if (processStartTime(Number(sweeper ?? claimer)) !== '') continue;
      if (claimer) unlinkQuietly(path);
      else await sweepRecord(path, join(dir, canonical as string));
    } else if (entry.endsWith('.run.json')) {
      const record = readRecord(path);
      if (!record || !isAlive(record.owner)) await sweepRecord(path, path);
    }
  }
}

/**
 * Sweeps one dead run; false when its container's processes are still in its cgroups. The
 * record is first moved aside under a name of our own, so two runs sweeping at once never both
 * act on it; a record that turns out live, or that cannot be swept, goes back to `canonical`.
 */
async function sweepRecord(file: string, canonical: string): Promise<boolean> {
  const aside = `${canonical}.sweep.${process.pid}`;
  try {
    renameSync(file, aside);
  } catch {
    return true; // another run swept it first
  }
  const record = readRecord(aside);
  const dead = !record || !isAlive(record.owner);
  if (dead && (await removeDeadCgroups(record?.cgroups ?? []))) {
    unlinkSync(aside);
    return true;
  }
  try {
    linkSync(aside, canonical);
  } catch {
    // a new claim of the name holds it: this record is moot
  }
  unlinkSync(aside);
  return !dead;
}

/** A dead run's cgroup dirs, deepest first; false (and nothing more tried) at one that still has processes. */
async function removeDeadCgroups(dirs: string[]): Promise<boolean> {
  for (const dir of [...dirs].reverse()) {
    let procs = '';
    try {
      procs = readFileSync(join(dir, 'cgroup.procs'), 'utf8').trim();
    } catch {
      // gone already, or not a cgroup any more
    }
    if (procs !== '') return false;
    try {
      await removeCgroupDirs([dir]);
    } catch {
      return false;
    }
  }
  return true;
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // gone already
  }
}

const STAGING = /^ns-enter-(\d+)\.(\d+)-[A-Za-z0-9]{6}$/;
/** What earlier versions named a staging dir: its owner's pid alone. */
const LEGACY_STAGING = /^ns-enter-staging-(\d+)$/;

/** A private (0700) dir of unpredictable name for this run's staged mounts, its owner in its name. */
export function makeStagingDir(): string {
  const owner = currentHolder();
  return mkdtempSync(join(tmpdir(), `ns-enter-${owner.pid}.${owner.startTime}-`));
}

/**
 * The staged mounts lived in the container's private mount namespace and went with it; their
 * mount points are empty dirs here (an empty file for a file's bind). rmdir, and unlink of an
 * empty file, not a recursive remove: it can never delete content.
 */
export function removeStagingDir(dir: string): void {
  for (const entry of listDir(dir)) if (/^\d+$/.test(entry)) removeMountPoint(join(dir, entry));
  // The run's /etc files (etc-files.ts): only those names are removed, then the dir, with rmdir.
  for (const name of ETC_FILE_NAMES) rmSync(join(dir, STAGED_ETC, name), { force: true });
  tryRmdir(join(dir, STAGED_ETC));
  tryRmdir(dir);
}

function removeMountPoint(path: string): void {
  const info = lstatSync(path, { throwIfNoEntry: false });
  if (info?.isFile() && info.size === 0) rmSync(path, { force: true });
  else tryRmdir(path);
}

function tryRmdir(path: string): void {
  try {
    rmdirSync(path);
  } catch {
    // not empty: left for the user to see
  }
}

/** Removes the staging dirs of runs that are gone: only ours (same owner uid), by the owner in their names. */
export function sweepStagingDirs(parent: string = tmpdir()): void {
  const uid = process.geteuid?.() ?? 0;
  for (const entry of listDir(parent)) {
    const match = STAGING.exec(entry) ?? LEGACY_STAGING.exec(entry);
    if (!match || Number(match[1]) === process.pid) continue;
    const path = join(parent, entry);
    const info = lstatSync(path, { throwIfNoEntry: false });
    if (!info?.isDirectory() || info.uid !== uid) continue;
    const start = processStartTime(Number(match[1]));
    if (match[2] === undefined ? start === '' : start !== match[2]) removeStagingDir(path);
  }
}

