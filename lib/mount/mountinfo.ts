/**
 * The kernel's mount table, /proc/PID/mountinfo (fields: id parent major:minor root mountpoint
 * options ... - fstype source superoptions): this namespace's, and those of the other mount
 * namespaces a process of ours can be read in (a container's copy of an overlay lives there).
 */
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { resolve } from 'node:path';
import type { OverlayDriver } from './model.js';

export interface MountInfoEntry {
  /** The mount's id, unique while it is mounted. */
  id: number;
  /** The superblock's device, major:minor (st_dev of what is on it). */
  device: string;
  /** The path in that file system the mount shows (a bind mount's source: what a container was given). */
  root: string;
  mountPoint: string;
  fsType: string;
  source: string;
  options: Record<string, string>;
}

export function parseMountInfo(text: string): MountInfoEntry[] {
  return text.split('\n').filter((l) => l !== '').map((line) => {
    const fields = line.split(' ');
    const dash = fields.indexOf('-');
    const superOptions: Record<string, string> = {};
    for (const option of splitOptions(fields[dash + 3] ?? '')) {
      const eq = option.indexOf('=');
      superOptions[eq === -1 ? option : option.slice(0, eq)] = eq === -1 ? '' : unescapeMountInfo(option.slice(eq + 1));
    }
    return {
      id: Number(fields[0]),
      device: fields[2] as string,
      root: unescapeMountInfo(fields[3] as string),
      mountPoint: unescapeMountInfo(fields[4] as string),
      fsType: fields[dash + 1] as string,
      source: unescapeMountInfo(fields[dash + 2] as string),
      options: superOptions,
    };
  });
}

/** This process's mount table (or another process's, by its mountinfo file). */
export function readMountInfo(file = '/proc/self/mountinfo'): MountInfoEntry[] {
  return parseMountInfo(readFileSync(file, 'utf8'));
}

/** Options are comma-separated, but overlay escapes commas inside paths with a backslash. */
export function splitOptions(text: string): string[] {
  return text.split(/(?<!\\),/);
}

function unescapeMountInfo(text: string): string {
  return text.replace(/\\([0-7]{3})/g, (_m, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/** The mount on top at PATH (the last one made there), if any. */
export function mountAt(path: string, entries: MountInfoEntry[] = readMountInfo()): MountInfoEntry | undefined {
  const resolved = resolve(path);
  return entries.filter((m) => m.mountPoint === resolved).pop();
}

export async function isMountPoint(path: string): Promise<boolean> {
  return mountAt(path) !== undefined;
}

/** Which overlay driver made a mount, or undefined when it is not an overlay. */
export function overlayDriverOf(entry: MountInfoEntry): OverlayDriver | undefined {
  if (entry.fsType === 'overlay') return 'overlay';
  return entry.fsType === 'fuse.fuse-overlayfs' ? 'fuse-overlayfs' : undefined;
}

/** lowerdir= as its names, top first (`:` separates them; overlay escapes `:` and `\` in a name). */
export function lowerNamesOf(lowerdir: string): string[] {
  return lowerdir.split(/(?<!\\):/).filter((l) => l !== '').map((l) => l.replace(/\\(.)/g, '$1'));
}

/** A process in another mount namespace than ours, and that namespace's mount table. */
export interface NamespaceMounts {
  pid: number;
  entries: MountInfoEntry[];
}

/**
 * One process of each other mount namespace we may read (all of them as root; a user's own
 * otherwise), with its mount table. Processes that end while being read are skipped.
 */
export function otherNamespaceMounts(): NamespaceMounts[] {
  const own = namespaceOf('self');
  const seen = new Set<string>(own === undefined ? [] : [own]);
  const result: NamespaceMounts[] = [];
  for (const pid of processIds()) {
    const ns = namespaceOf(String(pid));
    if (ns === undefined || seen.has(ns)) continue;
    seen.add(ns);
    try {
      result.push({ pid, entries: readMountInfo(`/proc/${pid}/mountinfo`) });
    } catch {
      // ended, or not ours to read
    }
  }
  return result;
}

/** Every process id in /proc but our own. */
export function processIds(): number[] {
  return readdirSync('/proc').filter((name) => /^\d+$/.test(name)).map(Number).filter((pid) => pid !== process.pid);
}

function namespaceOf(pid: string): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/mnt`);
  } catch {
    return undefined;
  }
}

/**
 * Whether an overlay's mount table entry has the dirs of the option string it was mounted with
 * (lowerdir, upperdir, workdir as given: absolute paths, or ovl-mount's short names).
 */
export function optionsMatch(options: string, entry: MountInfoEntry): boolean {
  const given: Record<string, string> = {};
  for (const option of splitOptions(options)) {
    const eq = option.indexOf('=');
    if (eq !== -1) given[option.slice(0, eq)] = option.slice(eq + 1);
  }
  return ['lowerdir', 'upperdir', 'workdir'].every((key) => given[key] === entry.options[key]);
}

/** The kernel overlay in `entries` whose upper (or work) dir is one of these, named by absolute path. */
export function overlayUsing(dirs: { upper?: string; work?: string }, entries: MountInfoEntry[]): MountInfoEntry | undefined {
  if (dirs.upper === undefined) return undefined;
  return entries.find((e) => overlayDriverOf(e) === 'overlay' && (e.options.upperdir === dirs.upper || (dirs.work !== undefined && e.options.workdir === dirs.work)));
}

/** A process of another mount namespace that has an overlay on these upper or work dirs (a container running on them). */
export function namespaceUsing(dirs: { upper?: string; work?: string }): NamespaceMounts | undefined {
  if (dirs.upper === undefined) return undefined;
  return otherNamespaceMounts().find((ns) => overlayUsing(dirs, ns.entries) !== undefined);
}
