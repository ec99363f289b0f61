/**
 * The process's credentials and limits, set after bwrap made the namespaces and mounts, by
 * ns-enter-exec (native/ns-enter-exec.c): a static program bwrap runs from an fd ns-enter holds
 * (/proc/self/fd/N), so no file of the host is bound into the container and it needs no libc
 * of the image's. It sets the rlimits, HOME, the working directory (made when missing, as
 * runc does), the groups, gid and uid, the five capability sets and no_new_privs, closes every
 * fd above stderr, and execs the command: nothing of it is left in the container.
 */
import { existsSync } from 'node:fs';
import { HostError, UnsupportedError } from '../core/errors.js';
import { FD_CONSOLE, FD_HELPER, FD_STDERR } from './bwrap-fds.js';
import type { ProcessConfig } from './config-checks.js';
import { ALL_CAPABILITIES } from './runflags.js';
import { distPath } from '../core/paths.js';

/** Where the build (scripts/postbuild.mjs) puts ns-enter's static helpers (native/NAME.c): dist/native/, beside dist/lib/. */
export function nativeProgram(name: 'ns-enter-exec' | 'ns-enter-prelude' | 'ns-enter-sysctl'): string {
  const path = distPath(import.meta.url, 'native', name);
  if (!existsSync(path)) throw new HostError(`${path} is missing: ns-enter's helper is built with the project`, { hint: 'npm run build (it needs gcc and libc6-dev: scripts/install-deps.sh)' });
  return path;
}

export function helperPath(): string {
  return nativeProgram('ns-enter-exec');
}

export interface HelperOptions {
  /** Whether setgroups(2) is allowed (not in a user namespace that maps only our own gid). */
  setgroups: boolean;
  /** --init: the helper is PID 1, forwarding signals and reaping zombies. */
  init: boolean;
  /** process.terminal: a pty in the container's devpts, its master sent to the relay on FD_CONSOLE. */
  terminal: boolean;
  /** The group of the new pty: the devpts mount's gid= (runc's default config: 5, tty), as the kernel would set it. */
  terminalGid?: number;
  /** Wait to read one byte from this fd just before the exec (oci-runtime's start); EOF ends the container. */
  startFd?: number;
}

/** The command bwrap runs: the helper from its fd, its flags, then the config's args. */
export function helperCommand(proc: ProcessConfig & { args: string[] }, options: HelperOptions): string[] {
  return [
    `/proc/self/fd/${FD_HELPER}`,
    ...(options.startFd === undefined ? [] : ['--start-fd', String(options.startFd)]),
    ...rlimitFlags(proc.rlimits ?? []),
    '--cwd', proc.cwd,
    ...(options.terminal ? ['--console', String(FD_CONSOLE), ...(options.terminalGid === undefined ? [] : ['--console-gid', String(options.terminalGid)])] : ['--stderr', String(FD_STDERR)]),
    ...credentialFlags(proc, options.setgroups),
    ...(options.init ? ['--init'] : []),
    '--',
    ...proc.args,
  ];
}

/**
 * runc's exec-time credentials. The kernel keeps an ambient capability only if it is also
 * inheritable and bounding (runc ignores the rest, so do we); after exec uid 0 gets the
 * bounding set, any other uid the ambient set, and effective/permitted must say so.
 */
function credentialFlags(proc: ProcessConfig, setgroups: boolean): string[] {
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
  const groups = proc.user.additionalGids ?? [];
  // Where setgroups(2) is denied (a user namespace that maps only our own gid), the groups stay as they are.
  if (!setgroups && groups.some((g) => g !== proc.user.gid)) throw new UnsupportedError('process.user.additionalGids: supplementary groups need a subordinate gid range (/etc/subgid) in a rootless container');
  const masks = [bounding, inheritable, ambient, [...expected], [...expected]].map((set, i) => capabilityMask(set, ['bounding', 'inheritable', 'ambient', 'effective', 'permitted'][i] as string));
  return [
    // podman writes one (0022); set by the helper just before it execs, as runc does.
    ...(proc.user.umask === undefined ? [] : ['--umask', proc.user.umask.toString(8)]),
    '--uid', String(proc.user.uid),
    '--gid', String(proc.user.gid),
    ...(!setgroups ? ['--keep-groups'] : groups.length > 0 ? ['--groups', groups.join(',')] : ['--clear-groups']),
    '--caps', masks.join(':'),
  ];
}

/** A capability set as the kernel's bit mask (capability.h numbers: the order of ALL_CAPABILITIES), in hex. */
function capabilityMask(names: string[], set: string): string {
  let mask = 0n;
  for (const name of names) {
    const bit = (ALL_CAPABILITIES as readonly string[]).indexOf(name);
    if (bit === -1) throw new UnsupportedError(`process.capabilities.${set}: ${name} is not a capability`);
    mask |= 1n << BigInt(bit);
  }
  return mask.toString(16);
}

const RLIMITS = new Set([
  'RLIMIT_AS', 'RLIMIT_CORE', 'RLIMIT_CPU', 'RLIMIT_DATA', 'RLIMIT_FSIZE', 'RLIMIT_LOCKS', 'RLIMIT_MEMLOCK', 'RLIMIT_MSGQUEUE',
  'RLIMIT_NICE', 'RLIMIT_NOFILE', 'RLIMIT_NPROC', 'RLIMIT_RSS', 'RLIMIT_RTPRIO', 'RLIMIT_RTTIME', 'RLIMIT_SIGPENDING', 'RLIMIT_STACK',
]);

/** Set in the container before the user switch, as runc does (only the command and its children have them). */
function rlimitFlags(rlimits: Array<{ type: string; hard: number; soft: number }>): string[] {
  return rlimits.flatMap((r, i) => {
    if (!RLIMITS.has(r.type)) throw new UnsupportedError(`process.rlimits[${i}].type: unknown limit ${r.type}`);
    return ['--rlimit', `${r.type}:${BigInt(Math.floor(r.soft))}:${BigInt(Math.floor(r.hard))}`];
  });
}
