/**
 * The processes of a container (for `ps`, `kill --all`), found from its first process: those
 * in its PID namespace when it has its own (every one of them is the container's, and none
 * outlives pid 1), else those in its cgroup when it has its own, else the first process alone.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { ownCgroupDirsOf } from '../run/cgroups.js';

function link(path: string): string {
  try {
    return readlinkSync(path);
  } catch {
    return '';
  }
}

function read(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** The host pids of the processes of the container whose first process is `pid` (it first). */
export function containerProcesses(pid: number): number[] {
  const namespace = link(`/proc/${pid}/ns/pid`);
  if (namespace === '') return [];
  const all = readdirSync('/proc').filter((e) => /^\d+$/.test(e)).map(Number);
  let found: number[];
  if (namespace !== link('/proc/self/ns/pid')) found = all.filter((p) => link(`/proc/${p}/ns/pid`) === namespace);
  else found = cgroupProcesses(pid) ?? [pid];
  return [pid, ...found.filter((p) => p !== pid).sort((a, b) => a - b)];
}

/** The processes in the cgroup of `pid`, when it has one of its own (not ours); undefined otherwise. */
function cgroupProcesses(pid: number): number[] | undefined {
  for (const dir of ownCgroupDirsOf(pid)) {
    const procs = read(join(dir, 'cgroup.procs')).trim();
    if (procs !== '') return procs.split('\n').map(Number);
  }
  return undefined;
}
