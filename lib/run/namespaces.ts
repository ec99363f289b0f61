/**
 * Running a container: one OCI runtime config (config.json) executed by bubblewrap, the
 * sandbox Flatpak uses. Node cannot unshare(2) its own multithreaded process and has no
 * mount(2) or pivot_root(2), so bwrap makes the namespaces, the mounts and the pivot_root
 * (detaching the old root); util-linux setpriv, bound in read-only and started through the
 * host's dynamic loader so the image needs no libc, then sets what bwrap cannot: the user and
 * groups, the bounding/inheritable/ambient capability sets (as runc's exec does). prlimit sets
 * rlimits. One bwrap per container: --info-fd says the container's pid so it can be placed in
 * its cgroup before --block-fd lets it run, and --json-status-fd says how it ended.
 *
 * Everything in a config is either carried out or refused with an error naming the field.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readSync, realpathSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix, resolve } from 'node:path';
import { ContainerPartsError, HostError, UnsupportedError, UsageError } from '../core/errors.js';
import type { IdMapping, RuntimeConfig, RuntimeMount } from './runtime-spec.js';
import { unshareCommand } from '../core/userns.js';
import { resolveInRoot } from '../core/root-resolver.js';
import { findProgram } from '../core/host.js';
import { shellQuote } from '../core/shell.js';
import type { Cgroup } from './cgroups.js';

export interface RunOptions {
  /** A name for the container's cgroup (default: a new one per run). */
  id: string;
  /** A relative root.path is relative to the bundle dir. */
  bundleDir?: string;
  /** --init: catatonit as PID 1, forwarding signals to the command and reaping zombies (podman run --init). */
  init?: boolean;
  /** Whether the container's stdin is a terminal (process.terminal needs one). */
  stdinIsTerminal: boolean;
  /** The container's stdin, when it is not ours (an fd of the terminal, see openTerminal). */
  stdin?: number;
  /** The dir a root overlay's relative option names (ovl-mount's short links) are relative to. */
  overlayDir?: string;
  /**
   * An empty host dir (made and removed by runContainer) whose numbered subdirs are the mount
   * points of staged mounts: those bwrap cannot make with their flags (noexec), made first in a
   * private mount namespace and then bound in by bwrap, which keeps a bound mount's flags.
   */
  stagingDir?: string;
  /** Called with the container's first process (host pid) once it exists. */
  onStart?: (pid: number) => void;
  debug?: (message: string) => void;
}

/** Where helper binaries appear inside the container: bwrap's own /dev tmpfs, so the rootfs is not touched. */
export const HELPER_DIR = '/dev/.ns-enter';

/** The plan for one run: the argv to spawn, and what has to happen between start and unblock. */
export interface ExecutionPlan {
  argv: string[];
  /** Values for the cgroup and /proc/PID/oom_score_adj, applied while the container waits on --block-fd. */
  resources: NonNullable<NonNullable<RuntimeConfig['linux']>['resources']>;
  cgroupsPath?: string;
  oomScoreAdj?: number;
  /** Whether the command keeps our terminal as its controlling terminal (no --new-session). */
  terminal: boolean;
  /** Whether bwrap waits on --block-fd for the cgroup and oom_score_adj to be set. */
  blocks: boolean;
  /** How many subdirs of stagingDir the prelude mounts on (0: none). */
  staged: number;
}

const FD_INFO = 3;
const FD_STATUS = 4;
const FD_BLOCK = 5;

/**
 * Translates a runtime config into a bwrap command line (pure apart from looking at the host
 * paths it binds). Throws UnsupportedError naming the first field it cannot carry out.
 */
export function planExecution(config: RuntimeConfig, options: Pick<RunOptions, 'bundleDir' | 'init' | 'stdinIsTerminal' | 'overlayDir' | 'stagingDir'>): ExecutionPlan {
  checkKnownFields('', config, ['ociVersion', 'process', 'root', 'hostname', 'mounts', 'annotations', 'linux', 'hooks', 'domainname']);
  if (!/^1\./.test(config.ociVersion ?? '')) throw new UnsupportedError(`ociVersion: ${JSON.stringify(config.ociVersion)} is not a 1.x runtime-spec version`);
  if (config.domainname) throw new UnsupportedError('domainname: not supported by ns-enter (bubblewrap sets no NIS domain name)');
  if (config.hooks && Object.values(config.hooks).some((h) => Array.isArray(h) && h.length > 0)) throw new UnsupportedError('hooks: not supported by ns-enter');
  const proc = config.process;
  if (!proc) throw new UnsupportedError('process: missing (nothing to run)');
  checkKnownFields('process.', proc, ['terminal', 'consoleSize', 'user', 'args', 'env', 'cwd', 'capabilities', 'rlimits', 'noNewPrivileges', 'oomScoreAdj', 'apparmorProfile', 'selinuxLabel']);
  if (!proc.args || proc.args.length === 0) throw new UnsupportedError('process.args: missing (nothing to run)');
  if (proc.apparmorProfile) throw new UnsupportedError('process.apparmorProfile: not supported by ns-enter');
  if (proc.selinuxLabel) throw new UnsupportedError('process.selinuxLabel: not supported by ns-enter');
  if (proc.noNewPrivileges !== true) throw new UnsupportedError('process.noNewPrivileges: must be true (bubblewrap always sets no_new_privs)');
  if (proc.user.umask !== undefined) throw new UnsupportedError('process.user.umask: not supported by ns-enter');
  if (proc.user.username !== undefined) throw new UnsupportedError('process.user.username: a Windows field, not supported');
  if (proc.terminal && !options.stdinIsTerminal) throw new UnsupportedError('process.terminal: true needs a terminal on stdin (run from a terminal, or without -t)');

  const linux = config.linux ?? {};
  checkKnownFields('linux.', linux, ['namespaces', 'uidMappings', 'gidMappings', 'devices', 'cgroupsPath', 'resources', 'sysctl', 'seccomp', 'rootfsPropagation', 'maskedPaths', 'readonlyPaths', 'mountLabel']);
  for (const field of ['seccomp', 'mountLabel'] as const) {
    const value = linux[field];
    if (value !== undefined && !(Array.isArray(value) && value.length === 0)) throw new UnsupportedError(`linux.${field}: not supported by ns-enter yet`);
  }
  if (linux.devices?.length) throw new UnsupportedError('linux.devices: extra devices are not supported (the container gets null, zero, full, random, urandom, tty, pts)');
  if (linux.sysctl && Object.keys(linux.sysctl).length > 0) throw new UnsupportedError('linux.sysctl: not supported by ns-enter');
  if (linux.rootfsPropagation && !['private', 'rprivate', 'slave', 'rslave'].includes(linux.rootfsPropagation)) {
    throw new UnsupportedError(`linux.rootfsPropagation: ${linux.rootfsPropagation} is not supported (bubblewrap keeps the container's mounts private)`);
  }
  const resources = linux.resources ?? {};
  checkKnownFields('linux.resources.', resources, ['devices', 'memory', 'cpu', 'pids']);
  for (const [i, rule] of (resources.devices ?? []).entries()) {
    if (rule.allow) throw new UnsupportedError(`linux.resources.devices[${i}]: allow rules are not supported (only the default deny-all: the container's /dev holds only the safe devices)`);
  }

  const bwrap = findProgram('bwrap');
  // --block-fd only when something must happen before the command runs (a cgroup, oom_score_adj).
  const mustWait = cgroupLimits(linux.resources ?? {}) !== undefined || proc.oomScoreAdj !== undefined;
  const args: string[] = ['--die-with-parent', '--info-fd', String(FD_INFO), '--json-status-fd', String(FD_STATUS), ...(mustWait ? ['--block-fd', String(FD_BLOCK)] : [])];
  const namespaces = new Set<string>();
  for (const [i, ns] of (linux.namespaces ?? []).entries()) {
    if (ns.path) throw new UnsupportedError(`linux.namespaces[${i}].path: joining an existing namespace is not supported`);
    if (namespaces.has(ns.type)) throw new UnsupportedError(`linux.namespaces[${i}]: ${ns.type} twice`);
    namespaces.add(ns.type);
  }
  if (!namespaces.has('mount')) throw new UnsupportedError('linux.namespaces: a mount namespace is required (the root is switched with pivot_root)');
  const mapped = namespaces.has('user') ? userMappings(linux) : undefined;
  const unshare: Record<string, string> = { pid: '--unshare-pid', network: '--unshare-net', ipc: '--unshare-ipc', uts: '--unshare-uts', cgroup: '--unshare-cgroup' };
  for (const type of namespaces) {
    if (type === 'mount' || type === 'user') continue;
    const flag = unshare[type];
    if (!flag) throw new UnsupportedError(`linux.namespaces: ${type} is not supported by ns-enter yet`);
    args.push(flag);
  }
  if (config.hostname !== undefined && config.hostname !== '') {
    if (!namespaces.has('uts')) throw new UnsupportedError('hostname: needs a uts namespace');
    args.push('--hostname', config.hostname);
  }

  // The root, then the config's mounts in order, then masked and read-only paths (runc's order).
  const rootPath = config.root?.path;
  if (!rootPath) throw new UnsupportedError('root.path: missing');
  const root = resolve(options.bundleDir ?? process.cwd(), rootPath);
  if (!existsSync(root) || !statSync(root).isDirectory()) throw new UsageError(`root.path: ${root} is not a directory`);
  args.push('--bind', root, '/');
  const late: string[] = [];
  let hasDev = false;
  const mounts = config.mounts ?? [];
  const rootOverlay = mounts[0]?.type === 'overlay' && posix.normalize(mounts[0].destination) === '/' ? mounts[0] : undefined;
  const staged: PreludeStep[] = [];
  const stage = (step: (at: string) => PreludeStep): string => {
    const at = join(options.stagingDir ?? '/nonexistent', String(staged.length));
    staged.push(step(at));
    return at;
  };
  for (const [i, mount] of mounts.entries()) {
    if (mount === rootOverlay) continue;
    const translated = translateMount(mount, `mounts[${i}]`, hasDev, root, stage);
    if (mount.type === 'tmpfs' && posix.normalize(mount.destination) === '/dev') hasDev = true;
    args.push(...translated.args);
    late.push(...translated.late);
  }
  args.push(...late);
  for (const path of linux.maskedPaths ?? []) args.push(...maskPath(path));
  for (const path of linux.readonlyPaths ?? []) args.push(...readOnlyPath(path));

  const helpers = helperBinds(options.init === true);
  args.push(...helpers.binds);
  if (config.root?.readonly) args.push('--remount-ro', '/');

  args.push('--clearenv');
  for (const entry of proc.env ?? []) {
    const eq = entry.indexOf('=');
    if (eq <= 0) throw new UnsupportedError(`process.env: ${JSON.stringify(entry)} is not NAME=VALUE`);
    args.push('--setenv', entry.slice(0, eq), entry.slice(eq + 1));
  }
  if (!proc.cwd || !proc.cwd.startsWith('/')) throw new UnsupportedError('process.cwd: must be an absolute path');
  args.push('--chdir', proc.cwd);
  if (!proc.terminal) args.push('--new-session');
  if (namespaces.has('pid')) args.push('--as-pid-1');

  // A user namespace, and a mount namespace for the root overlay, are made around bwrap by
  // util-linux unshare (bwrap 0.8 maps only one id, and cannot mount an overlay); bwrap then
  // runs as that namespace's root and makes the rest as it does for real root.
  const steps = [...(rootOverlay ? [overlayStep(rootOverlay, root, options.overlayDir)] : []), ...staged];
  const outer = mapped || steps.length > 0 ? unshareCommand(mapped?.uidMappings, mapped?.gidMappings, { mount: true }) : undefined;
  const prelude = steps.length > 0 ? mountPrelude(steps) : [];
  const command = [...helpers.setpriv, ...setprivArgs(proc, outer?.setgroups ?? true), '--', ...(options.init ? [`${HELPER_DIR}/catatonit`, '--'] : []), ...proc.args];
  const argv = [...rlimitPrefix(proc.rlimits ?? []), ...(outer?.argv ?? []), ...prelude, bwrap, ...args, '--', ...command];
  return { argv, resources, cgroupsPath: linux.cgroupsPath, oomScoreAdj: proc.oomScoreAdj, terminal: proc.terminal === true, blocks: mustWait, staged: staged.length };
}

/** A user namespace's maps: both required (runtime-spec), and only with a user namespace. */
function userMappings(linux: NonNullable<RuntimeConfig['linux']>): { uidMappings: IdMapping[]; gidMappings: IdMapping[] } {
  const { uidMappings = [], gidMappings = [] } = linux;
  if (uidMappings.length === 0 || gidMappings.length === 0) throw new UnsupportedError(`linux.${uidMappings.length === 0 ? 'uidMappings' : 'gidMappings'}: a user namespace needs uid and gid mappings`);
  return { uidMappings, gidMappings };
}

/** What the outer shell reports on the info fd when a mount it makes fails. */
const MOUNT_FAILED = 'mount-failed: ';

/** One mount the prelude makes before bwrap starts: what it is (for the error) and the shell command. */
interface PreludeStep {
  what: string;
  command: string;
}

/**
 * A rootless root overlay (ovl-mount's `mountedIn: container`): mounted at root.path inside the
 * new user and mount namespaces, from the dir its relative names are relative to, then bwrap
 * binds it as /. It goes when the namespace goes, so nothing is left mounted on the host.
 */
function overlayStep(mount: RuntimeMount, root: string, dir: string | undefined): PreludeStep {
  const options = mount.options ?? [];
  const unknown = options.find((o) => !/^(lowerdir|upperdir|workdir)=/.test(o) && !['ro', 'rw', 'userxattr', 'nosuid', 'nodev', 'noexec', 'relatime', 'noatime'].includes(o) && !/^(redirect_dir|index|xino|metacopy|volatile|uuid)(=|$)/.test(o));
  if (unknown !== undefined) throw new UnsupportedError(`mounts[0].options: ${unknown} is not an overlay option ns-enter passes on`);
  if (!options.some((o) => o.startsWith('lowerdir='))) throw new UnsupportedError('mounts[0].options: an overlay at / needs lowerdir=');
  return { what: "the container's overlay", command: `(cd ${shellQuote(dir ?? '/')} && mount -t overlay overlay -o ${shellQuote(options.join(','))} ${shellQuote(root)})` };
}

/**
 * The shell that runs in the outer (private) mount namespace: each step's mount, then bwrap.
 * A failure is reported on the info fd as one line (mount's own reason) and ends the run.
 */
function mountPrelude(steps: PreludeStep[]): string[] {
  const script = steps
    // "$( (" : a space, or the shell reads "$((" as arithmetic.
    .map((step) => `err=$( ${step.command} 2>&1) || { printf '${MOUNT_FAILED}%s: %s\\n' ${shellQuote(step.what)} "$err" >&${FD_INFO}; exit 125; }`)
    .join('; ');
  return ['/bin/sh', '-c', `${script}; exec "$@"`, 'sh'];
}

function checkKnownFields(prefix: string, value: object, known: string[]): void {
  for (const key of Object.keys(value)) if (!known.includes(key)) throw new UnsupportedError(`${prefix}${key}: not supported by ns-enter`);
}

/**
 * The mode of a tmpfs as runc gives it: a directory already in the rootfs keeps its own mode
 * over the tmpfs (runc chmods the mount point back), else `mode=`, else 0755.
 */
function tmpfsMode(root: string, destination: string, options: string[]): string {
  const existing = resolveInRoot(root, destination);
  if (existing) {
    const stats = statSync(existing);
    if (stats.isDirectory()) return (stats.mode & 0o7777).toString(8).padStart(4, '0');
  }
  return (options.find((o) => o.startsWith('mode='))?.slice(5) ?? '755').padStart(4, '0');
}

/**
 * Options bwrap's mounts honour or make moot (its mounts are nosuid, its binds recursive and
 * private; a tmpfs or bind with noexec is staged, see RunOptions.stagingDir).
 */
const HARMLESS_OPTIONS = new Set(['nosuid', 'nodev', 'noexec', 'strictatime', 'relatime', 'noatime', 'rw', 'bind', 'rbind', 'private', 'rprivate', 'slave', 'rslave', 'newinstance']);

type Stage = (step: (at: string) => PreludeStep) => string;

function translateMount(mount: RuntimeMount, field: string, hasDev: boolean, root: string, stage: Stage): { args: string[]; late: string[] } {
  const destination = posix.normalize(mount.destination);
  if (!destination.startsWith('/')) throw new UnsupportedError(`${field}.destination: must be absolute`);
  const options = mount.options ?? [];
  const readOnly = options.includes('ro');
  const isBind = mount.type === 'bind' || options.includes('bind') || options.includes('rbind');
  const late = readOnly ? ['--remount-ro', destination] : [];
  const unknown = (allowed: (o: string) => boolean) => {
    const bad = options.find((o) => !HARMLESS_OPTIONS.has(o) && o !== 'ro' && !allowed(o));
    if (bad) throw new UnsupportedError(`${field}.options: ${bad} is not supported on ${destination}`);
  };
  if (mount.uidMappings?.length || mount.gidMappings?.length) throw new UnsupportedError(`${field}: idmapped mounts are not supported`);
  if (isBind) {
    unknown(() => false);
    if (!mount.source) throw new UnsupportedError(`${field}.source: a bind mount needs a source`);
    if (!existsSync(mount.source)) throw new UsageError(`${field}.source: ${mount.source} does not exist`);
    const source = options.includes('noexec')
      ? stage((at) => ({ what: `${field} (${destination})`, command: `mount --rbind ${shellQuote(mount.source as string)} ${shellQuote(at)} && mount -o remount,bind,noexec ${shellQuote(at)}` }))
      : mount.source;
    return { args: [readOnly ? '--ro-bind' : '--bind', source, destination], late: [] };
  }
  switch (mount.type) {
    case 'proc':
      unknown(() => false);
      return { args: ['--proc', destination], late };
    case 'tmpfs': {
      unknown((o) => /^(size|mode|nr_inodes)=/.test(o));
      if (destination === '/dev') return { args: ['--dev', '/dev'], late };
      const size = options.find((o) => o.startsWith('size='))?.slice(5);
      const mode = tmpfsMode(root, destination, options);
      if (options.includes('noexec')) {
        const flags = ['noexec', 'nosuid', 'nodev', `mode=${mode}`, ...(size ? [`size=${parseSize(size, field)}`] : [])].join(',');
        const at = stage((at) => ({ what: `${field} (${destination})`, command: `mount -t tmpfs -o ${flags} tmpfs ${shellQuote(at)}` }));
        return { args: ['--bind', at, destination], late };
      }
      return { args: [...(size ? ['--size', String(parseSize(size, field))] : []), '--perms', mode, '--tmpfs', destination], late };
    }
    case 'devpts':
      // bwrap's --dev mounts a private devpts (newinstance, ptmxmode=0666, mode=620) at /dev/pts.
      if (destination !== '/dev/pts' || !hasDev) throw new UnsupportedError(`${field}: devpts only at /dev/pts, after a tmpfs at /dev`);
      unknown((o) => /^(ptmxmode|mode|gid)=/.test(o));
      return { args: [], late: [] };
    case 'mqueue':
      unknown(() => false);
      return { args: ['--mqueue', destination], late: [] };
    case 'sysfs':
      // bwrap cannot mount a fresh sysfs: the host's is bound read-only (as runc does rootless).
      if (!readOnly) throw new UnsupportedError(`${field}: sysfs only read-only (ro): it is the host's, bound`);
      unknown(() => false);
      return { args: ['--ro-bind', '/sys', destination], late: [] };
    case 'cgroup':
    case 'cgroup2':
      // Already there, read-only, inside the /sys bind above.
      if (destination !== '/sys/fs/cgroup' || !readOnly) throw new UnsupportedError(`${field}: a cgroup mount only read-only at /sys/fs/cgroup (under the /sys bind)`);
      return { args: [], late: [] };
    default:
      throw new UnsupportedError(`${field}.type: ${mount.type ?? '(none)'} mounts are not supported by ns-enter`);
  }
}

function parseSize(text: string, field: string): number {
  const match = /^(\d+)([kmg]?)$/i.exec(text);
  if (!match) throw new UnsupportedError(`${field}.options: size=${text} is not a size`);
  return Number(match[1]) * ({ '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[(match[2] ?? '').toLowerCase()] as number);
}

/** runc: /dev/null over a file, an empty read-only tmpfs over a dir; a path the kernel does not have is skipped. */
function maskPath(path: string): string[] {
  let info;
  try {
    info = statSync(path);
  } catch {
    return [];
  }
  if (info.isDirectory()) return ['--perms', '0000', '--tmpfs', path, '--remount-ro', path];
  // --dev-bind: bwrap's other binds are nodev, and a nodev /dev/null cannot be opened.
  return ['--dev-bind', '/dev/null', path];
}

/**
 * runc binds each read-only path onto itself and remounts it read-only. bwrap's binds take
 * their source from the host, which is the same here: what /proc/sys and the like show is
 * decided by the reader's namespaces, not by the proc mount. A path the kernel lacks is skipped.
 */
function readOnlyPath(path: string): string[] {
  if (!existsSync(path)) return [];
  return ['--ro-bind', path, path];
}

/**
 * setpriv's flags: runc's exec-time credentials. The kernel keeps an ambient capability only
 * if it is also inheritable and bounding (runc ignores the rest, so do we); after exec uid 0
 * gets the bounding set, any other uid the ambient set, and effective/permitted must say so.
 */
function setprivArgs(proc: NonNullable<RuntimeConfig['process']>, setgroups: boolean): string[] {
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
function rlimitPrefix(rlimits: Array<{ type: string; hard: number; soft: number }>): string[] {
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
function helperBinds(init: boolean): { binds: string[]; setpriv: string[] } {
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

export interface SharedObjects {
  interpreter?: string;
  /** By soname (what DT_NEEDED asks for) and the file it resolves to. */
  libraries: Array<{ name: string; path: string }>;
}

const elfCache = new Map<string, SharedObjects>();

/** The dynamic loader and every shared library (transitively) an ELF64 little-endian program needs. */
export function sharedObjects(program: string): SharedObjects {
  const cached = elfCache.get(program);
  if (cached) return cached;
  const first = readElf(program);
  const searchDirs = [...new Set([first.interpreter ? dirname(realpathSync(first.interpreter)) : undefined, '/lib/x86_64-linux-gnu', '/usr/lib/x86_64-linux-gnu', '/lib/aarch64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/lib64', '/usr/lib64', '/lib', '/usr/lib'].filter((d): d is string => !!d))];
  const libraries = new Map<string, string>();
  const pending = [...first.needed];
  while (pending.length > 0) {
    const name = pending.shift() as string;
    if (libraries.has(name)) continue;
    const dir = searchDirs.find((d) => existsSync(join(d, name)));
    if (!dir) throw new HostError(`setpriv needs ${name}, which is not in ${searchDirs.join(', ')}`);
    const path = realpathSync(join(dir, name));
    libraries.set(name, path);
    pending.push(...readElf(path).needed);
  }
  const result = { interpreter: first.interpreter ? realpathSync(first.interpreter) : undefined, libraries: [...libraries.entries()].map(([name, path]) => ({ name, path })) };
  elfCache.set(program, result);
  return result;
}

function readElf(path: string): { interpreter?: string; needed: string[] } {
  const fd = openSync(path, 'r');
  try {
    const size = statSync(path).size;
    const header = Buffer.alloc(64);
    readSync(fd, header, 0, 64, 0);
    if (header.readUInt32BE(0) !== 0x7f454c46 || header[4] !== 2 || header[5] !== 1) throw new HostError(`${path}: not a 64-bit little-endian ELF file`);
    const phoff = Number(header.readBigUInt64LE(0x20));
    const phentsize = header.readUInt16LE(0x36);
    const phnum = header.readUInt16LE(0x38);
    const table = Buffer.alloc(phentsize * phnum);
    readSync(fd, table, 0, table.length, phoff);
    const loads: Array<{ vaddr: number; offset: number; filesz: number }> = [];
    let interpreter: string | undefined;
    let dynamic: { offset: number; size: number } | undefined;
    for (let i = 0; i < phnum; i++) {
      const at = i * phentsize;
      const type = table.readUInt32LE(at);
      const offset = Number(table.readBigUInt64LE(at + 8));
      const vaddr = Number(table.readBigUInt64LE(at + 16));
      const filesz = Number(table.readBigUInt64LE(at + 32));
      if (type === 1) loads.push({ vaddr, offset, filesz });
      if (type === 2) dynamic = { offset, size: filesz };
      if (type === 3) {
        const buf = Buffer.alloc(filesz);
        readSync(fd, buf, 0, filesz, offset);
        interpreter = buf.toString('utf8').replace(/\0.*$/s, '');
      }
    }
    if (!dynamic) return { interpreter, needed: [] };
    const dyn = Buffer.alloc(dynamic.size);
    readSync(fd, dyn, 0, dyn.length, dynamic.offset);
    const neededOffsets: number[] = [];
    let strtab = 0;
    for (let at = 0; at + 16 <= dyn.length; at += 16) {
      const tag = Number(dyn.readBigInt64LE(at));
      const value = Number(dyn.readBigUInt64LE(at + 8));
      if (tag === 0) break;
      if (tag === 1) neededOffsets.push(value);
      if (tag === 5) strtab = value;
    }
    const segment = loads.find((l) => strtab >= l.vaddr && strtab < l.vaddr + l.filesz);
    if (!segment) return { interpreter, needed: [] };
    const strtabOffset = strtab - segment.vaddr + segment.offset;
    const needed = neededOffsets.map((o) => {
      const buf = Buffer.alloc(256);
      readSync(fd, buf, 0, Math.min(256, size - strtabOffset - o), strtabOffset + o);
      return buf.toString('utf8', 0, buf.indexOf(0));
    });
    return { interpreter, needed };
  } finally {
    closeSync(fd);
  }
}

/** How the container ended. */
export interface ExitStatus {
  /** The command's exit status, or 128+N after death by signal N (as a shell reports it). */
  code: number;
  /** The container's cgroup killed it for using more memory than its limit. */
  oomKilled?: boolean;
}

/**
 * Runs the config to completion: spawns bwrap, places its first process in a cgroup with the
 * config's limits while it waits, lets it run, forwards SIGINT/SIGTERM/SIGHUP/SIGQUIT/SIGUSR1/
 * SIGUSR2 to it, and returns its exit status. The cgroup is removed afterwards.
 */
export async function runContainer(config: RuntimeConfig, options: RunOptions): Promise<ExitStatus> {
  const stagingDir = options.stagingDir ?? stagingDirFor(process.pid);
  const plan = planExecution(config, { ...options, stagingDir });
  if (plan.staged > 0) {
    mkdirSync(stagingDir, { mode: 0o700 });
    for (let i = 0; i < plan.staged; i++) mkdirSync(join(stagingDir, String(i)));
  }
  try {
    return await runPlanned(plan, options);
  } finally {
    if (plan.staged > 0) removeStagingDir(stagingDir, plan.staged);
  }
}

/** The staging dir of one ns-enter process (it runs one container). */
export function stagingDirFor(pid: number): string {
  return join(tmpdir(), `ns-enter-staging-${pid}`);
}

/**
 * The staged mounts lived in the container's private mount namespace and went with it; their
 * mount points are empty dirs here. rmdir, not a recursive remove: it can never delete content.
 */
function removeStagingDir(dir: string, count: number): void {
  for (const path of [...Array.from({ length: count }, (_, i) => join(dir, String(i))), dir]) {
    try {
      rmdirSync(path);
    } catch {
      // not made (the run failed first), or not empty: left for the user to see
    }
  }
}

async function runPlanned(plan: ExecutionPlan, options: RunOptions): Promise<ExitStatus> {
  options.debug?.(`exec: ${plan.argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ')}`);
  const limits = cgroupLimits(plan.resources);
  let cgroup: Cgroup | undefined;
  if (limits) {
    const { createCgroup } = await import('./cgroups.js');
    cgroup = await createCgroup(plan.cgroupsPath ?? `container-parts/${options.id}`, limits);
  }
  try {
    return await spawnAndWait(plan, cgroup, options);
  } finally {
    await cgroup?.remove();
  }
}

function cgroupLimits(resources: ExecutionPlan['resources']): ExecutionPlan['resources'] | undefined {
  const { memory, cpu, pids } = resources;
  if (!memory && !cpu && !pids) return undefined;
  return { memory, cpu, pids };
}

const FORWARDED_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];

function spawnAndWait(plan: ExecutionPlan, cgroup: Cgroup | undefined, options: RunOptions): Promise<ExitStatus> {
  return new Promise((resolvePromise, reject) => {
    const [program, ...args] = plan.argv as [string, ...string[]];
    // Node sets up fds 3-5 as socket pairs: bwrap writes JSON to 3 and 4 and waits to read from 5.
    const child = spawn(program, args, { stdio: [options.stdin ?? 'inherit', 'inherit', 'inherit', 'pipe', 'pipe', plan.blocks ? 'pipe' : 'ignore'] });
    const fds = child.stdio as unknown as Array<NodeJS.ReadableStream & NodeJS.WritableStream>;
    const info = fds[FD_INFO] as NodeJS.ReadableStream;
    const status = fds[FD_STATUS] as NodeJS.ReadableStream;
    const block = fds[FD_BLOCK] as NodeJS.WritableStream | null;
    let containerPid: number | undefined;
    let exitCode: number | undefined;
    let failure: Error | undefined;
    const forward = (signal: NodeJS.Signals) => {
      try {
        process.kill(containerPid ?? (child.pid as number), signal);
      } catch {
        // already gone
      }
    };
    for (const signal of FORWARDED_SIGNALS) process.on(signal, forward);
    let infoText = '';
    info.on('data', (chunk: Buffer) => {
      infoText += chunk.toString('utf8');
      if (containerPid !== undefined) return;
      const match = /"child-pid"\s*:\s*(\d+)/.exec(infoText);
      if (!match) return;
      containerPid = Number(match[1]);
      try {
        if (cgroup) cgroup.addProcess(containerPid);
        if (plan.oomScoreAdj !== undefined) writeFileSync(`/proc/${containerPid}/oom_score_adj`, String(plan.oomScoreAdj));
        options.onStart?.(containerPid);
        block?.end('1');
      } catch (err) {
        failure = err instanceof Error ? err : new Error(String(err));
        process.kill(containerPid, 'SIGKILL');
        block?.end();
      }
    });
    let statusText = '';
    status.on('data', (chunk: Buffer) => {
      statusText += chunk.toString('utf8');
      const match = /"exit-code"\s*:\s*(\d+)/.exec(statusText);
      if (match) exitCode = Number(match[1]);
    });
    block?.on('error', () => undefined);
    child.on('error', (err) => {
      for (const signal of FORWARDED_SIGNALS) process.off(signal, forward);
      reject(new HostError(`cannot start bwrap: ${err.message}`, { hint: 'apt-get install bubblewrap' }));
    });
    child.on('close', (code, signal) => {
      for (const signal of FORWARDED_SIGNALS) process.off(signal, forward);
      if (failure) return reject(failure instanceof ContainerPartsError ? failure : new HostError(`cannot set up the container: ${failure.message}`));
      const mountFailure = infoText.indexOf(MOUNT_FAILED);
      if (containerPid === undefined && mountFailure !== -1) {
        return reject(new HostError(`cannot mount ${infoText.slice(mountFailure + MOUNT_FAILED.length).trim().replace(/\s*\n\s*/g, '; ')}`));
      }
      if (containerPid === undefined) return reject(new HostError(`${plan.argv.includes('--user') ? 'the user namespace or bubblewrap' : 'bubblewrap'} could not set up the container (its reason is on the line above)`));
      const final = exitCode ?? (signal ? 128 + (signalNumber(signal) ?? 0) : (code ?? 1));
      resolvePromise({ code: final, oomKilled: cgroup?.oomKilled() });
    });
  });
}

function signalNumber(signal: NodeJS.Signals): number | undefined {
  const numbers: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGUSR1: 10, SIGSEGV: 11, SIGUSR2: 12, SIGPIPE: 13, SIGTERM: 15 };
  return numbers[signal];
}
