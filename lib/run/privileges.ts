/**
 * The process's credentials, set after bwrap made the namespaces: util-linux setpriv (the
 * user and groups, the bounding/inheritable/ambient capability sets, as runc's exec does),
 * bound in read-only under HELPER_DIR and started through the host's dynamic loader so the
 * image needs no libc; and prlimit, which sets the rlimits bwrap and the command inherit.
 */
import { realpathSync } from 'node:fs';
import { UnsupportedError } from '../core/errors.js';
import { findProgram } from '../core/host.js';
import type { ProcessConfig } from './config-checks.js';
import { sharedObjects } from './elf.js';

/** Where helper binaries appear inside the container: bwrap's own /dev tmpfs, so the rootfs is not touched. */
export const HELPER_DIR = '/dev/.ns-enter';

/**
 * setpriv's flags: runc's exec-time credentials. The kernel keeps an ambient capability only
 * if it is also inheritable and bounding (runc ignores the rest, so do we); after exec uid 0
 * gets the bounding set, any other uid the ambient set, and effective/permitted must say so.
 */
export function setprivArgs(proc: ProcessConfig, setgroups: boolean): string[] {
  const caps = proc.capabilities ?? {};
  const bounding = caps.bounding ?? [];
  const inheritable = caps.inheritable ?? [];
  const ambient = (caps.ambient ?? []).filter((c) => inheritable.includes(c) && bounding.includes(c));
  const isRoot = proc.user.uid === 0;
  const expected = new Set(isRoot ? bounding : ambient);
  for (const set of ['effective', 'permitted'] as const) {
    const given = new Set(caps[set] ?? []);
    const same = given.size === expected.size && [...given].every((c) => expected.has(c));
    if (!same) throw new UnsupportedError(`process.capabilities.${set}: must equal the ${isRoot ? 'bounding' : 'ambient (and inheritable)'} set for uid ${proc.user.uid}: that is what the kernel gives after exec`);
  }
  const list = (names: string[]) => ['-all', ...names.map((n) => `+${n.replace(/^CAP_/, '').toLowerCase()}`)].join(',');
  const groups = proc.user.additionalGids ?? [];
  // Where setgroups(2) is denied (a user namespace that maps only our own gid), the groups stay as they are.
  if (!setgroups && groups.some((g) => g !== proc.user.gid)) throw new UnsupportedError('process.user.additionalGids: supplementary groups need a subordinate gid range (/etc/subgid) in a rootless container');
  return [
    '--reuid', String(proc.user.uid),
    '--regid', String(proc.user.gid),
    ...(!setgroups ? ['--keep-groups'] : groups.length > 0 ? ['--groups', groups.join(',')] : ['--clear-groups']),
    '--inh-caps', list(inheritable),
    '--ambient-caps', list(ambient),
    '--bounding-set', list(bounding),
    '--nnp',
  ];
}

const RLIMIT_FLAGS: Record<string, string> = {
  RLIMIT_AS: 'as', RLIMIT_CORE: 'core', RLIMIT_CPU: 'cpu', RLIMIT_DATA: 'data', RLIMIT_FSIZE: 'fsize', RLIMIT_LOCKS: 'locks',
  RLIMIT_MEMLOCK: 'memlock', RLIMIT_MSGQUEUE: 'msgqueue', RLIMIT_NICE: 'nice', RLIMIT_NOFILE: 'nofile', RLIMIT_NPROC: 'nproc',
  RLIMIT_RSS: 'rss', RLIMIT_RTPRIO: 'rtprio', RLIMIT_RTTIME: 'rttime', RLIMIT_SIGPENDING: 'sigpending', RLIMIT_STACK: 'stack',
};

/** rlimits are inherited across exec: prlimit sets them and execs bwrap. */
export function rlimitPrefix(rlimits: Array<{ type: string; hard: number; soft: number }>): string[] {
  if (rlimits.length === 0) return [];
  const flags = rlimits.map((r, i) => {
    const name = RLIMIT_FLAGS[r.type];
    if (!name) throw new UnsupportedError(`process.rlimits[${i}].type: unknown limit ${r.type}`);
    return `--${name}=${r.soft}:${r.hard}`;
  });
  return [findProgram('prlimit'), ...flags, '--'];
}

/**
 * setpriv (and catatonit for --init) from the host, bound read-only under HELPER_DIR with the
 * shared libraries setpriv needs, found by reading its ELF headers (PT_INTERP, DT_NEEDED).
 */
export function helperBinds(init: boolean): { binds: string[]; setpriv: string[] } {
  const setpriv = realpathSync(findProgram('setpriv'));
  const { interpreter, libraries } = sharedObjects(setpriv);
  const binds: string[] = [];
  const bind = (source: string, name: string) => binds.push('--ro-bind', source, `${HELPER_DIR}/${name}`);
  bind(setpriv, 'setpriv');
  for (const library of libraries) bind(library.path, library.name);
  if (init) bind(realpathSync(findProgram('catatonit')), 'catatonit');
  if (!interpreter) return { binds, setpriv: [`${HELPER_DIR}/setpriv`] };
  bind(interpreter, 'ld.so');
  return { binds, setpriv: [`${HELPER_DIR}/ld.so`, '--library-path', HELPER_DIR, `${HELPER_DIR}/setpriv`] };
}
