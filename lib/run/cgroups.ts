/**
 * A container's cgroup: memory, pids and cpu limits (linux.resources), on whichever hierarchy
 * the host has: cgroup v1 (one tree per controller, this lab's hybrid layout) or cgroup v2
 * (one unified tree; controllers enabled down the path through cgroup.subtree_control).
 * Like runc's fs/fs2 managers: made before the container runs, removed after it exits.
 */
import { mkdirSync, readFileSync, rmdirSync, writeFileSync, existsSync } from 'node:fs';
import { join, posix } from 'node:path';
import { HostError, UnsupportedError } from '../core/errors.js';
import type { RuntimeConfig } from './runtime-spec.js';

export type Resources = NonNullable<NonNullable<RuntimeConfig['linux']>['resources']>;

export interface Cgroup {
  version: 1 | 2;
  /** One dir per v1 controller, or the one v2 dir. */
  paths: string[];
  addProcess(pid: number): void;
  /** Whether the memory controller killed a process for going over the limit. */
  oomKilled(): boolean;
  remove(): Promise<void>;
}

interface Hierarchy {
  version: 1 | 2;
  mountPoint: string;
  /** v1: the controllers bound to this mount; v2: those listed in cgroup.controllers. */
  controllers: string[];
}

/** The cgroup hierarchies mounted here, from /proc/self/mountinfo. */
export function hierarchies(mountInfo: string = readFileSync('/proc/self/mountinfo', 'utf8')): Hierarchy[] {
  const result: Hierarchy[] = [];
  for (const line of mountInfo.split('\n')) {
    const fields = line.split(' ');
    const dash = fields.indexOf('-');
    if (dash < 0) continue;
    const fsType = fields[dash + 1];
    const mountPoint = (fields[4] as string).replace(/\\040/g, ' ');
    if (fsType === 'cgroup') {
      const controllers = (fields[dash + 3] ?? '').split(',').filter((o) => ['memory', 'pids', 'cpu', 'cpuacct', 'cpuset'].includes(o));
      if (controllers.length) result.push({ version: 1, mountPoint, controllers });
    } else if (fsType === 'cgroup2') {
      let controllers: string[] = [];
      try {
        controllers = readFileSync(join(mountPoint, 'cgroup.controllers'), 'utf8').trim().split(/\s+/).filter(Boolean);
      } catch {
        // not readable: no controllers for us
      }
      result.push({ version: 2, mountPoint, controllers });
    }
  }
  return result;
}

/** The controllers the resources need. */
export function neededControllers(resources: Resources): string[] {
  const needed: string[] = [];
  if (resources.memory && Object.keys(resources.memory).length) needed.push('memory');
  if (resources.pids) needed.push('pids');
  const cpu = resources.cpu ?? {};
  if (cpu.quota !== undefined || cpu.period !== undefined || cpu.shares !== undefined) needed.push('cpu');
  if (cpu.cpus !== undefined || cpu.mems !== undefined) needed.push('cpuset');
  return needed;
}

/** The file writes that set the limits, per controller: [controller, file, value]. */
export function limitWrites(version: 1 | 2, resources: Resources): Array<[string, string, string]> {
  const writes: Array<[string, string, string]> = [];
  const { memory = {}, cpu = {}, pids } = resources;
  for (const key of Object.keys(memory)) if (!['limit', 'swap', 'reservation'].includes(key)) throw new UnsupportedError(`linux.resources.memory.${key}: not supported by ns-enter`);
  for (const key of Object.keys(cpu)) if (!['quota', 'period', 'shares', 'cpus', 'mems'].includes(key)) throw new UnsupportedError(`linux.resources.cpu.${key}: not supported by ns-enter`);
  const limit = (n: number | undefined) => (n === undefined || n < 0 ? 'max' : String(n));
  if (version === 1) {
    if (memory.limit !== undefined) writes.push(['memory', 'memory.limit_in_bytes', memory.limit < 0 ? '-1' : String(memory.limit)]);
    if (memory.reservation !== undefined) writes.push(['memory', 'memory.soft_limit_in_bytes', String(memory.reservation)]);
    if (memory.swap !== undefined) writes.push(['memory', 'memory.memsw.limit_in_bytes', String(memory.swap)]);
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
 * Creates the cgroup at `path` (linux.cgroupsPath; relative paths are taken from the
 * hierarchy's root, as runc does) with the limits set. v1 when every needed controller is on a
 * v1 hierarchy (a hybrid host binds them there), else v2 when the unified tree has them.
 */
export async function createCgroup(path: string, resources: Resources, available: Hierarchy[] = hierarchies()): Promise<Cgroup> {
  const needed = neededControllers(resources);
  const inner = posix.normalize(`/${path}`);
  if (inner === '/' || path.split('/').includes('..')) throw new UnsupportedError(`linux.cgroupsPath: ${JSON.stringify(path)} is not a cgroup below the root`);
  const v1 = needed.map((c) => available.find((h) => h.version === 1 && h.controllers.includes(c)));
  if (v1.every((h) => h !== undefined)) return createV1(inner, resources, needed, v1 as Hierarchy[]);
  const v2 = available.find((h) => h.version === 2 && needed.every((c) => h.controllers.includes(c)));
  if (v2) return createV2(inner, resources, needed, v2);
  const missing = needed.filter((c, i) => !v1[i] && !available.some((h) => h.version === 2 && h.controllers.includes(c)));
  throw new HostError(`no cgroup hierarchy has the ${missing.join(', ')} controller${missing.length > 1 ? 's' : ''} (needed for ${needed.join(', ')} limits)`, { hint: 'mount cgroup v2 with those controllers, or drop --memory/--pids-limit/--cpus' });
}

function createV1(inner: string, resources: Resources, needed: string[], found: Hierarchy[]): Cgroup {
  const dirs = new Map<string, string>();
  needed.forEach((controller, i) => dirs.set(controller, join((found[i] as Hierarchy).mountPoint, inner)));
  const made: string[] = [];
  const cgroup = makeCgroup(1, [...new Set(dirs.values())], made, () => {
    const oom = dirs.get('memory');
    return oom !== undefined && /oom_kill [1-9]/.test(readOrEmpty(join(oom, 'memory.oom_control')));
  });
  try {
    for (const [controller, dir] of dirs) {
      made.push(...mkdirAll(dir));
      if (controller === 'cpuset') inheritCpuset(dir);
    }
    for (const [controller, file, value] of limitWrites(1, resources)) writeControl(join(dirs.get(controller) as string, file), value);
  } catch (err) {
    void cgroup.remove();
    throw err;
  }
  return cgroup;
}

function createV2(inner: string, resources: Resources, needed: string[], hierarchy: Hierarchy): Cgroup {
  const dir = join(hierarchy.mountPoint, inner);
  const made: string[] = [];
  const cgroup = makeCgroup(2, [dir], made, () => /oom_kill [1-9]/.test(readOrEmpty(join(dir, 'memory.events'))));
  try {
    // Each ancestor hands the controllers down: +memory +pids ... in its cgroup.subtree_control.
    const parts = inner.split('/').filter(Boolean);
    for (let i = 0; i < parts.length; i++) {
      const parent = join(hierarchy.mountPoint, ...parts.slice(0, i));
      const enable = needed.map((c) => `+${c}`).join(' ');
      try {
        writeFileSync(join(parent, 'cgroup.subtree_control'), enable);
      } catch (err) {
        throw new HostError(`cannot enable ${needed.join(', ')} in ${parent}/cgroup.subtree_control: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { hint: 'a cgroup v2 dir with processes cannot delegate controllers; give linux.cgroupsPath a dir below one without' });
      }
      made.push(...mkdirAll(join(hierarchy.mountPoint, ...parts.slice(0, i + 1))));
    }
    for (const [, file, value] of limitWrites(2, resources)) writeControl(join(dir, file), value);
  } catch (err) {
    void cgroup.remove();
    throw err;
  }
  return cgroup;
}

function makeCgroup(version: 1 | 2, paths: string[], made: string[], oomKilled: () => boolean): Cgroup {
  return {
    version,
    paths,
    addProcess(pid: number) {
      for (const dir of paths) writeControl(join(dir, 'cgroup.procs'), String(pid));
    },
    oomKilled,
    async remove() {
      // Deepest first; the kernel may hold an emptied cgroup for a moment after its last task exits.
      for (const dir of [...made].reverse()) {
        for (let attempt = 0; ; attempt++) {
          try {
            rmdirSync(dir);
            break;
          } catch (err) {
            const code = (err as NodeJS.ErrnoException).code;
            if (code === 'ENOENT' || code === 'ENOTEMPTY') break;
            if (code !== 'EBUSY' || attempt >= 50) throw new HostError(`cannot remove cgroup ${dir}: ${code}`);
            await new Promise((r) => setTimeout(r, 20));
          }
        }
      }
    },
  };
}

/** mkdir -p that returns the dirs it made (only those are removed afterwards). */
function mkdirAll(dir: string): string[] {
  const made: string[] = [];
  const parts = dir.split('/').filter(Boolean);
  for (let i = 1; i <= parts.length; i++) {
    const path = `/${parts.slice(0, i).join('/')}`;
    if (existsSync(path)) continue;
    try {
      mkdirSync(path);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EACCES' && code !== 'EPERM') throw err;
      // A rootless container: nobody delegated this part of the cgroup tree to the user.
      throw new HostError(`cannot create cgroup ${path}: ${code} (the cgroup tree is not delegated to you)`, { hint: 'limits in a rootless container need a cgroup v2 subtree delegated to the user (systemd: Delegate=yes); drop --memory/--pids-limit/--cpus, or run as root' });
    }
    made.push(path);
  }
  return made;
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

function readOrEmpty(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}
