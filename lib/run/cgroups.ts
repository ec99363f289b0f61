/**
 * A container's cgroup, placed as runc's fs/fs2 managers place it: in every hierarchy the host
 * has (cgroup v1, one tree per controller, as in this lab's hybrid layout; or the one v2 tree),
 * under the caller's own cgroup for a relative path (on v2 beside it: a cgroup with processes
 * cannot hand controllers down), from the root for an absolute one. Memory, pids, cpu and
 * cpuset limits go to the hierarchy with the controller, the device rules to v1's devices
 * tree (cgroup-devices.ts). The container's processes join it before its cgroup namespace is
 * made (see supervise.ts), so inside, the cgroup is the root. Removed after the run.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, posix } from 'node:path';
import { HostError, UnsupportedError, UsageError } from '../core/errors.js';
import { deviceWrites, refuseUnfilteredDevices } from './cgroup-devices.js';
import type { RuntimeConfig } from './runtime-spec.js';

export type Resources = NonNullable<NonNullable<RuntimeConfig['linux']>['resources']>;

export interface Hierarchy {
  version: 1 | 2;
  mountPoint: string;
  /** v1: the controllers bound to this mount (and `name=…`); v2: those listed in cgroup.controllers. */
  controllers: string[];
  /** The caller's own cgroup in this hierarchy (/proc/self/cgroup), relative to the mount's root. */
  own: string;
}

/** Where a container's cgroup goes in one hierarchy. */
export interface CgroupDir {
  hierarchy: Hierarchy;
  dir: string;
}

/** A cgroup worked out but not made yet: its dir in each hierarchy, and what removing it removes. */
export interface CgroupPlan {
  version: 1 | 2;
  dirs: CgroupDir[];
  /** The dirs a run of this plan may leave, parents first: those missing now and the own dirs. */
  removable: string[];
  resources: Resources;
}

export interface Cgroup {
  version: 1 | 2;
  /** The container's dir in every hierarchy (v1: one per mount; v2: one). */
  paths: string[];
  dirs: CgroupDir[];
  /** The dirs this run made (parents first): what remove() removes. */
  made: string[];
  addProcess(pid: number): void;
  /** Moves a process back to the caller's own cgroups (bwrap's monitor, once the container exists). */
  release(pid: number): void;
  /** Whether the memory controller killed a process for going over the limit. */
  oomKilled(): boolean;
  remove(): Promise<void>;
}

/** Mount options of a v1 cgroup that name no controller. */
const NOT_CONTROLLERS = new Set(['rw', 'ro', 'noprefix', 'xattr', 'clone_children', 'cpuset_v2_mode', 'favordynmods', 'nofavordynmods']);

/** The cgroup hierarchies mounted here (/proc/self/mountinfo), each with the caller's own cgroup in it (/proc/self/cgroup). */
export function hierarchies(mountInfo: string = readFileSync('/proc/self/mountinfo', 'utf8'), ownCgroups: string = readFileSync('/proc/self/cgroup', 'utf8')): Hierarchy[] {
  const own = parseOwnCgroups(ownCgroups);
  const result: Hierarchy[] = [];
  for (const line of mountInfo.split('\n')) {
    const fields = line.split(' ');
    const dash = fields.indexOf('-');
    if (dash < 0) continue;
    const fsType = fields[dash + 1];
    const mountRoot = (fields[3] as string).replace(/\\040/g, ' ');
    const mountPoint = (fields[4] as string).replace(/\\040/g, ' ');
    if (fsType === 'cgroup') {
      const controllers = (fields[dash + 3] ?? '').split(',').filter((o) => !NOT_CONTROLLERS.has(o) && (!o.includes('=') || o.startsWith('name=')));
      const path = own.get([...controllers].sort().join(','));
      if (controllers.length && path !== undefined && !result.some((h) => h.version === 1 && h.controllers.join() === controllers.join())) {
        result.push({ version: 1, mountPoint, controllers, own: relativeTo(mountRoot, path) });
      }
    } else if (fsType === 'cgroup2' && !result.some((h) => h.version === 2)) {
      result.push({ version: 2, mountPoint, controllers: readOrEmpty(join(mountPoint, 'cgroup.controllers')).trim().split(/\s+/).filter(Boolean), own: relativeTo(mountRoot, own.get('') ?? '/') });
    }
  }
  return result;
}

/** /proc/PID/cgroup: `4:memory:/a/b`, `1:name=systemd:/`, `0::/` (v2), by their sorted controller list. */
function parseOwnCgroups(text: string): Map<string, string> {
  const own = new Map<string, string>();
  for (const line of text.split('\n')) {
    const match = /^\d+:([^:]*):(.*)$/.exec(line);
    if (match) own.set((match[1] as string).split(',').sort().join(','), match[2] as string);
  }
  return own;
}

/** A cgroup path as seen from a mount of its hierarchy whose root is `mountRoot` (a container's view, say). */
function relativeTo(mountRoot: string, path: string): string {
  if (mountRoot === '/') return path;
  return path === mountRoot || path.startsWith(`${mountRoot}/`) ? path.slice(mountRoot.length) || '/' : '/';
}

/**
 * Where the cgroup `path` goes (linux.cgroupsPath; ns-enter's default is relative), in every
 * hierarchy, as runc does: absolute from the root; relative under the caller's own cgroup on
 * v1, and under its parent on v2. v1 is used when the v1 mounts hold every needed controller
 * (a hybrid host binds them there), else v2 when the unified tree has them.
 */
export function planCgroup(request: { path: string; resources: Resources; deviceCapability?: string }, available: Hierarchy[] = hierarchies()): CgroupPlan {
  const { path, resources } = request;
  const inner = posix.normalize(path);
  if (inner === '/' || inner === '.' || path.split('/').includes('..')) throw new UnsupportedError(`linux.cgroupsPath: ${JSON.stringify(path)} is not a cgroup below the root`);
  const needed = neededControllers(resources);
  const v1 = available.filter((h) => h.version === 1);
  const v2 = available.find((h) => h.version === 2);
  const useV1 = v1.length > 0 && needed.every((c) => v1.some((h) => h.controllers.includes(c)));
  if (!useV1) {
    const missing = needed.filter((c) => c !== 'devices' && !v2?.controllers.includes(c));
    if (!v2 || missing.length > 0) throw new HostError(`no cgroup hierarchy has the ${missing.join(', ') || needed.join(', ')} controller${missing.length > 1 ? 's' : ''} (needed for ${needed.join(', ')} limits)`, { hint: 'mount cgroup v2 with those controllers, or drop --memory/--pids-limit/--cpus' });
    if (resources.devices?.length) refuseUnfilteredDevices(request.deviceCapability);
  }
  // On a hybrid host the container joins the unified tree too, as runc does.
  const used = useV1 ? [...v1, ...(v2 ? [v2] : [])] : [v2 as Hierarchy];
  const dirs = used.map((hierarchy) => ({ hierarchy, dir: placeIn(hierarchy, inner) }));
  const removable = [...new Set(dirs.flatMap((d) => [...missingDirs(d.hierarchy.mountPoint, d.dir), d.dir]))];
  return { version: useV1 ? 1 : 2, dirs, removable, resources };
}

function placeIn(hierarchy: Hierarchy, inner: string): string {
  if (inner.startsWith('/')) return join(hierarchy.mountPoint, inner);
  const parent = hierarchy.version === 2 ? dirname(hierarchy.own) : hierarchy.own;
  return join(hierarchy.mountPoint, parent, inner);
}

/** The dirs from below `top` down to `dir` that do not exist yet, parents first. */
function missingDirs(top: string, dir: string): string[] {
  const missing: string[] = [];
  for (let at = dir; at !== top && at.startsWith(`${top}/`) && !existsSync(at); at = dirname(at)) missing.unshift(at);
  return missing;
}

/** The controllers the resources need. */
export function neededControllers(resources: Resources): string[] {
  const needed: string[] = [];
  if (resources.memory && Object.keys(resources.memory).length) needed.push('memory');
  if (resources.pids) needed.push('pids');
  const cpu = resources.cpu ?? {};
  if (cpu.quota !== undefined || cpu.period !== undefined || cpu.shares !== undefined) needed.push('cpu');
  if (cpu.cpus !== undefined || cpu.mems !== undefined) needed.push('cpuset');
  if (resources.devices?.length) needed.push('devices');
  return needed;
}

/** The file writes that set the limits, per controller: [controller, file, value]. */
export function limitWrites(version: 1 | 2, resources: Resources): Array<[string, string, string]> {
  const writes: Array<[string, string, string]> = [];
  const { memory = {}, cpu = {}, pids } = resources;
  for (const key of Object.keys(memory)) if (!['limit', 'swap', 'reservation', 'swappiness', 'disableOOMKiller'].includes(key)) throw new UnsupportedError(`linux.resources.memory.${key}: not supported by ns-enter`);
  if (version === 2 && (memory.swappiness !== undefined || memory.disableOOMKiller)) throw new UnsupportedError(`linux.resources.memory.${memory.swappiness !== undefined ? 'swappiness' : 'disableOOMKiller'}: cgroup v2 has no such control`);
  for (const key of Object.keys(cpu)) if (!['quota', 'period', 'shares', 'cpus', 'mems'].includes(key)) throw new UnsupportedError(`linux.resources.cpu.${key}: not supported by ns-enter`);
  const limit = (n: number | undefined) => (n === undefined || n < 0 ? 'max' : String(n));
  if (version === 1) {
    if (memory.limit !== undefined) writes.push(['memory', 'memory.limit_in_bytes', memory.limit < 0 ? '-1' : String(memory.limit)]);
    if (memory.reservation !== undefined) writes.push(['memory', 'memory.soft_limit_in_bytes', String(memory.reservation)]);
    if (memory.swap !== undefined) writes.push(['memory', 'memory.memsw.limit_in_bytes', String(memory.swap)]);
    if (memory.swappiness !== undefined) writes.push(['memory', 'memory.swappiness', String(memory.swappiness)]);
    if (memory.disableOOMKiller) writes.push(['memory', 'memory.oom_control', '1']);
    if (pids) writes.push(['pids', 'pids.max', limit(pids.limit)]);
    if (cpu.period !== undefined) writes.push(['cpu', 'cpu.cfs_period_us', String(cpu.period)]);
    if (cpu.quota !== undefined) writes.push(['cpu', 'cpu.cfs_quota_us', String(cpu.quota)]);
    if (cpu.shares !== undefined) writes.push(['cpu', 'cpu.shares', String(cpu.shares)]);
    if (cpu.cpus !== undefined) writes.push(['cpuset', 'cpuset.cpus', cpu.cpus]);
    if (cpu.mems !== undefined) writes.push(['cpuset', 'cpuset.mems', cpu.mems]);
  } else {
    if (memory.limit !== undefined) writes.push(['memory', 'memory.max', limit(memory.limit)]);
    if (memory.reservation !== undefined) writes.push(['memory', 'memory.low', String(memory.reservation)]);
    // v1's memsw counts memory + swap; v2's swap.max counts swap alone (runc converts the same way).
    if (memory.swap !== undefined) writes.push(['memory', 'memory.swap.max', memory.swap < 0 ? 'max' : String(Math.max(0, memory.swap - (memory.limit ?? 0)))]);
    if (pids) writes.push(['pids', 'pids.max', limit(pids.limit)]);
    if (cpu.quota !== undefined || cpu.period !== undefined) writes.push(['cpu', 'cpu.max', `${cpu.quota === undefined || cpu.quota < 0 ? 'max' : cpu.quota} ${cpu.period ?? 100000}`]);
    // runc's shares → weight conversion: [2, 262144] onto [1, 10000].
    if (cpu.shares !== undefined) writes.push(['cpu', 'cpu.weight', String(1 + Math.floor(((cpu.shares - 2) * 9999) / 262142))]);
    if (cpu.cpus !== undefined) writes.push(['cpuset', 'cpuset.cpus', cpu.cpus]);
    if (cpu.mems !== undefined) writes.push(['cpuset', 'cpuset.mems', cpu.mems]);
  }
  return writes;
}

/**
 * Makes the planned cgroup and writes its limits and device rules. A container's own dir that
 * exists already is refused while it holds processes (two runs with one name never share a
 * cgroup); an empty one left behind is taken over. On failure nothing made stays.
 */
export function createCgroup(plan: CgroupPlan): Cgroup {
  const made: string[] = [];
  const cgroup = makeCgroup(plan, made);
  try {
    for (const dir of plan.dirs) made.push(...makeCgroupDir(dir));
    if (plan.version === 2) enableControllers(plan.dirs[0] as CgroupDir, neededControllers(plan.resources).filter((c) => c !== 'devices'));
    for (const [controller, file, value] of [...limitWrites(plan.version, plan.resources), ...devicesFiles(plan)]) {
      const target = plan.dirs.find((d) => plan.version === 2 || d.hierarchy.controllers.includes(controller));
      writeControl(join((target as CgroupDir).dir, file), value);
    }
  } catch (err) {
    void cgroup.remove();
    throw err;
  }
  return cgroup;
}

/**
 * The container's dir in one hierarchy, and the parents it lacks (shared with other
 * containers: one made meanwhile is fine, one removed meanwhile by a run that ended is made
 * again). Returns the dirs this run made, parents first, or took over (an empty own dir).
 */
function makeCgroupDir({ hierarchy, dir }: CgroupDir): string[] {
  const made: string[] = [];
  const cpuset = hierarchy.controllers.includes('cpuset');
  for (let attempt = 0; ; attempt++) {
    try {
      for (const parent of missingDirs(hierarchy.mountPoint, dirname(dir))) {
        if (makeDir(parent)) made.push(parent);
        if (cpuset) inheritCpuset(parent);
      }
      if (!makeDir(dir)) checkUnused(dir);
      if (cpuset) inheritCpuset(dir);
      return [...made, dir];
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= 5) throw err;
    }
  }
}

/** A container's own dir that exists already: refused while processes are in it (two runs never share one). */
function checkUnused(dir: string): void {
  const holders = readOrEmpty(join(dir, 'cgroup.procs')).trim();
  if (holders !== '') throw new UsageError(`cgroup ${dir} is in use by processes ${holders.split('\n').slice(0, 3).join(', ')}`, { hint: 'a running container has this name: choose another --name' });
}

/** v1's device rules as [controller, file, value]; v2 has no devices files (planCgroup refused what needed them). */
function devicesFiles(plan: CgroupPlan): Array<[string, string, string]> {
  if (plan.version === 2 || !plan.resources.devices?.length) return [];
  return deviceWrites(plan.resources.devices).map(([file, value]) => ['devices', file, value]);
}

/** v2: each ancestor hands the controllers down (+memory +pids … in its cgroup.subtree_control), where it does not already. */
function enableControllers(target: CgroupDir, controllers: string[]): void {
  if (controllers.length === 0) return;
  const { mountPoint } = target.hierarchy;
  for (let parent = dirname(target.dir); parent.startsWith(mountPoint); parent = dirname(parent)) {
    const file = join(parent, 'cgroup.subtree_control');
    const enabled = readOrEmpty(file).split(/\s+/);
    const missing = controllers.filter((c) => !enabled.includes(c) && !enabled.includes(`+${c}`));
    if (missing.length > 0) {
      try {
        writeFileSync(file, missing.map((c) => `+${c}`).join(' '));
      } catch (err) {
        throw new HostError(`cannot enable ${missing.join(', ')} in ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { hint: 'a cgroup v2 dir with processes cannot delegate controllers; give linux.cgroupsPath a dir below one without' });
      }
    }
    if (parent === mountPoint) break;
  }
}

function makeCgroup(plan: CgroupPlan, made: string[]): Cgroup {
  const memory = plan.dirs.find((d) => plan.version === 2 || d.hierarchy.controllers.includes('memory'));
  const oomFile = memory && join(memory.dir, plan.version === 2 ? 'memory.events' : 'memory.oom_control');
  return {
    version: plan.version,
    paths: plan.dirs.map((d) => d.dir),
    dirs: plan.dirs,
    made,
    addProcess(pid: number) {
      for (const { dir } of plan.dirs) writeControl(join(dir, 'cgroup.procs'), String(pid));
    },
    release(pid: number) {
      for (const { hierarchy } of plan.dirs) writeControl(join(hierarchy.mountPoint, hierarchy.own, 'cgroup.procs'), String(pid));
    },
    oomKilled: () => oomFile !== undefined && /oom_kill [1-9]/.test(readOrEmpty(oomFile)),
    remove: () => removeCgroupDirs(made),
  };
}

/**
 * Removes cgroup dirs, deepest first; the kernel may hold an emptied cgroup for a moment after
 * its last task exits. A parent another container still uses (cgroupfs says EBUSY for a dir
 * with child cgroups) stays.
 */
export async function removeCgroupDirs(dirs: string[]): Promise<void> {
  for (const dir of [...dirs].reverse()) {
    for (let attempt = 0; ; attempt++) {
      try {
        rmdirSync(dir);
        break;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTEMPTY' || (code === 'EBUSY' && hasChildCgroups(dir))) break;
        if (code !== 'EBUSY' || attempt >= 50) throw new HostError(`cannot remove cgroup ${dir}: ${code}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }
}

/** mkdir: true when made, false when it was there already. */
function makeDir(path: string): boolean {
  try {
    mkdirSync(path);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code !== 'EACCES' && code !== 'EPERM') throw err;
    // A rootless container: nobody delegated this part of the cgroup tree to the user.
    throw new HostError(`cannot create cgroup ${path}: ${code} (the cgroup tree is not delegated to you)`, { hint: 'limits in a rootless container need a cgroup v2 subtree delegated to the user (systemd: Delegate=yes); drop --memory/--pids-limit/--cpus, or run as root' });
  }
}

/** `argv` run in the cgroups whose dirs are given: a shell writes itself into each cgroup.procs, then execs it (exit 125 when it cannot). */
export function commandInCgroups(dirs: string[], argv: string[]): string[] {
  const procs = dirs.map((dir) => join(dir, 'cgroup.procs'));
  return ['/bin/sh', '-c', 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"', 'sh', ...procs, '--', ...argv];
}

/**
 * The cgroup dirs (host paths) of process `pid` in each hierarchy where it is not in ours: the
 * container's own cgroup, which an exec'd process joins. None when it shares ours.
 */
export function ownCgroupDirsOf(pid: number, available: Hierarchy[] = hierarchies()): string[] {
  const theirs = parseOwnCgroups(readOrEmpty(`/proc/${pid}/cgroup`));
  const dirs: string[] = [];
  for (const hierarchy of available) {
    const path = theirs.get(hierarchy.version === 2 ? '' : [...hierarchy.controllers].sort().join(','));
    if (path !== undefined && path !== hierarchy.own) dirs.push(join(hierarchy.mountPoint, path));
  }
  return dirs;
}

/** Where a container sees its cgroup: each v1 hierarchy under its mount's name, or the v2 tree alone. */
export function cgroupViews(cgroup: Pick<Cgroup, 'version' | 'dirs'>): Array<{ dir: string; name: string }> {
  if (cgroup.version === 2) return [{ dir: (cgroup.dirs[0] as CgroupDir).dir, name: '' }];
  // A hybrid host's unified tree is not shown, as under runc.
  return cgroup.dirs.filter((d) => d.hierarchy.version === 1).map((d) => ({ dir: d.dir, name: basename(d.hierarchy.mountPoint) }));
}

/** A new v1 cpuset is empty and refuses tasks: copy the parent's cpus and mems first. */
function inheritCpuset(dir: string): void {
  for (const file of ['cpuset.cpus', 'cpuset.mems']) {
    if (readOrEmpty(join(dir, file)).trim() !== '') continue;
    writeControl(join(dir, file), readOrEmpty(join(dir, '..', file)).trim());
  }
}

function writeControl(file: string, value: string): void {
  try {
    writeFileSync(file, value);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new HostError(`cannot write ${value} to ${file}: ${code === 'ENOENT' ? 'the kernel has no such control' : (code ?? (err as Error).message)}`);
  }
}

function hasChildCgroups(dir: string): boolean {
  try {
    return readdirSync(dir, { withFileTypes: true }).some((entry) => entry.isDirectory());
  } catch {
    return false;
  }
}

function readOrEmpty(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}
