/**
 * A runtime config as one command line: bubblewrap (the sandbox Flatpak uses) makes the
 * namespaces, the mounts and the pivot_root (detaching the old root), because node cannot
 * unshare(2) its own multithreaded process and has no mount(2) or pivot_root(2). Around it,
 * util-linux unshare makes a user namespace (rootless) and ns-enter-prelude a private mount
 * namespace for the mounts bwrap cannot make (mount-prelude.ts); ns-enter-exec after it
 * (privileges.ts) sets the limits and credentials.
 */
import { existsSync, statSync } from 'node:fs';
import { join, posix, resolve } from 'node:path';
import { UnsupportedError, UsageError } from '../core/errors.js';
import { findProgram } from '../core/host.js';
import { unshareCommand } from '../core/userns.js';
import { FD_BLOCK, FD_INFO, FD_SECCOMP, FD_START, FD_STATUS } from './bwrap-fds.js';
import { checkConfig, checkNamespaces, joinedNamespaces, userMappings, type LinuxConfig, type ProcessConfig } from './config-checks.js';
import { mountPrelude, overlayStep, type PreludeStep } from './mount-prelude.js';
import { maskPath, mountArgs, readOnlyPath, rootOverlayOf } from './mount-plan.js';
import { deviceBinds } from './host-devices.js';
import { helperCommand } from './privileges.js';
import type { RuntimeConfig } from './runtime-spec.js';
import { compiledSeccompFilter } from './seccomp-filter.js';
import { checkSysctls } from './sysctl.js';

export interface PlanOptions {
  /** A relative root.path is relative to the bundle dir. */
  bundleDir?: string;
  /** --init: an init as PID 1, forwarding signals to the command and reaping zombies (podman run --init). */
  init?: boolean;
  /** Whether the container's stdin is a terminal (process.terminal needs one). */
  stdinIsTerminal: boolean;
  /** The dir a root overlay's relative option names (ovl-mount's short links) are relative to. */
  overlayDir?: string;
  /**
   * An empty host dir (made and removed by runContainer) whose numbered subdirs are the mount
   * points of staged mounts: those bwrap cannot make with their flags (noexec), made first in a
   * private mount namespace and then bound in by bwrap, which keeps a bound mount's flags.
   */
  stagingDir?: string;
  /** The container's own cgroup dirs (cgroups.ts cgroupViews): shown at /sys/fs/cgroup, and bwrap waits for the container to join them. */
  cgroupViews?: Array<{ dir: string; name: string }>;
  /** The helper waits on FD_START before it does anything: the container is held after its set-up (oci-runtime create). */
  startGate?: boolean;
}

/** The plan for one run: the argv to spawn, and what has to happen between start and unblock. */
export interface ExecutionPlan {
  argv: string[];
  /** Values for the cgroup and /proc/PID/oom_score_adj (and the sysctls), applied while the container waits on --block-fd. */
  resources: NonNullable<LinuxConfig['resources']>;
  cgroupsPath?: string;
  oomScoreAdj?: number;
  /** Whether the command gets a new pty (process.terminal), whose master the relay copies to and from the user's terminal. */
  terminal: boolean;
  /** Whether bwrap waits on --block-fd for the cgroup and oom_score_adj to be set. */
  blocks: boolean;
  /** How many subdirs of stagingDir the prelude mounts on (0: none). */
  staged: number;
  /** Whether bwrap makes a cgroup namespace (the container must be in its cgroup before). */
  cgroupNamespace: boolean;
  /** linux.seccomp compiled (a cached file), which bwrap reads from FD_SECCOMP. */
  seccompFilter?: string;
  /** linux.sysctl as [/proc/sys path, value], written in the container's namespaces while it waits; and whether that needs its user namespace. */
  sysctls: Array<[string, string]>;
  userNamespace: boolean;
  /** Whether the helper waits on FD_START (PlanOptions.startGate). */
  startGate: boolean;
}

/**
 * Translates a runtime config into a bwrap command line (pure apart from looking at the host
 * paths it binds). Throws UnsupportedError naming the first field it cannot carry out.
 */
export function planExecution(config: RuntimeConfig, options: PlanOptions): ExecutionPlan {
  const { proc, linux } = checkConfig(config, options);
  const resources = linux.resources ?? {};
  const bwrap = findProgram('bwrap');
  // --block-fd only when something must happen before the command runs (a cgroup, oom_score_adj).
  const namespaces = checkNamespaces(linux);
  const sysctls = checkSysctls(linux.sysctl ?? {}, namespaces);
  const mustWait = options.cgroupViews !== undefined || cgroupLimits(resources) !== undefined || proc.oomScoreAdj !== undefined || sysctls.length > 0;
  const args: string[] = ['--die-with-parent', '--info-fd', String(FD_INFO), '--json-status-fd', String(FD_STATUS), ...(mustWait ? ['--block-fd', String(FD_BLOCK)] : [])];
  const mapped = namespaces.has('user') ? userMappings(linux) : undefined;
  const joined = joinedNamespaces(linux);
  args.push(...namespaceArgs(new Set([...namespaces].filter((type) => !joined.some(([t]) => t === type))), config.hostname));
  const root = rootPath(config, options.bundleDir);
  const staged: PreludeStep[] = [];
  args.push(...filesystemArgs(config, { root, staged, stagingDir: options.stagingDir, cgroupViews: options.cgroupViews }));
  if (config.root?.readonly) args.push('--remount-ro', '/');
  args.push(...processArgs(proc, namespaces));
  // Loaded by bwrap just before it execs the helper, which then only sets ids, capabilities and limits (all allowed by a profile) and execs.
  const seccompFilter = linux.seccomp ? compiledSeccompFilter(linux.seccomp) : undefined;
  if (seccompFilter) args.push('--seccomp', String(FD_SECCOMP));

  // A user namespace is made around bwrap by util-linux unshare (bwrap 0.8 maps only one id),
  // and the mounts bwrap cannot make (an overlay, noexec) by the prelude; bwrap then runs as
  // that namespace's root and makes the rest as it does for real root.
  const rootOverlay = rootOverlayOf(config.mounts ?? []);
  const steps = [...(rootOverlay ? [overlayStep(rootOverlay, root, options.overlayDir)] : []), ...staged];
  const outer = mapped ? unshareCommand(mapped.uidMappings, mapped.gidMappings, { mount: true }) : undefined;
  const prelude = steps.length > 0 ? mountPrelude(steps, outer === undefined) : [];
  const command = helperCommand(proc, { startFd: options.startGate ? FD_START : undefined, setgroups: outer?.setgroups ?? true, init: options.init === true, terminal: proc.terminal === true, terminalGid: devptsGid(config.mounts ?? []) });
  const argv = [...joinCommand(joined), ...(outer?.argv ?? []), ...prelude, bwrap, ...args, '--', ...command];
  return { argv, resources, cgroupsPath: linux.cgroupsPath, oomScoreAdj: proc.oomScoreAdj, terminal: proc.terminal === true, blocks: mustWait, staged: staged.length, cgroupNamespace: namespaces.has('cgroup'), seccompFilter, sysctls, userNamespace: mapped !== undefined, startGate: options.startGate === true };
}

const NSENTER_FLAGS: Record<string, string> = { network: '--net', ipc: '--ipc', uts: '--uts' };

/** nsenter joining the namespaces the config names by path (podman's /run/netns/…), before anything else; bwrap then shares them. */
function joinCommand(joined: Array<[string, string]>): string[] {
  if (joined.length === 0) return [];
  return [findProgram('nsenter'), ...joined.map(([type, path]) => `${NSENTER_FLAGS[type]}=${path}`), '--'];
}

/** bwrap mounts its own devpts (no gid=): the helper gives a new pty the group the config's devpts mount names. */
export function devptsGid(mounts: NonNullable<RuntimeConfig['mounts']>): number | undefined {
  const option = mounts.find((m) => m.type === 'devpts')?.options?.find((o) => /^gid=\d+$/.test(o));
  return option === undefined ? undefined : Number(option.slice(4));
}

/** The limits a cgroup carries out, or undefined when the config sets none. */
export function cgroupLimits(resources: ExecutionPlan['resources']): ExecutionPlan['resources'] | undefined {
  const { memory, cpu, pids } = resources;
  if (!memory && !cpu && !pids) return undefined;
  return { memory, cpu, pids };
}

const UNSHARE_FLAGS: Record<string, string> = { pid: '--unshare-pid', network: '--unshare-net', ipc: '--unshare-ipc', uts: '--unshare-uts', cgroup: '--unshare-cgroup' };

/** bwrap's flag for each namespace but mount and user (made around it), and the hostname. */
function namespaceArgs(namespaces: Set<string>, hostname: string | undefined): string[] {
  const args: string[] = [];
  for (const type of namespaces) {
    if (type === 'mount' || type === 'user') continue;
    const flag = UNSHARE_FLAGS[type];
    if (!flag) throw new UnsupportedError(`linux.namespaces: ${type} is not supported by ns-enter yet`);
    args.push(flag);
  }
  if (hostname !== undefined && hostname !== '') {
    if (!namespaces.has('uts')) throw new UnsupportedError('hostname: needs a uts namespace');
    args.push('--hostname', hostname);
  }
  return args;
}

function rootPath(config: RuntimeConfig, bundleDir: string | undefined): string {
  const path = config.root?.path;
  if (!path) throw new UnsupportedError('root.path: missing');
  const root = resolve(bundleDir ?? process.cwd(), path);
  if (!existsSync(root) || !statSync(root).isDirectory()) throw new UsageError(`root.path: ${root} is not a directory`);
  return root;
}

/** The root, then the config's mounts in order, then masked and read-only paths (runc's order); staged mounts are added to `staged`. */
function filesystemArgs(config: RuntimeConfig, context: { root: string; staged: PreludeStep[]; stagingDir?: string; cgroupViews?: PlanOptions['cgroupViews'] }): string[] {
  const { root, staged } = context;
  const stage = (step: (at: string) => PreludeStep): string => {
    const at = join(context.stagingDir ?? '/nonexistent', String(staged.length));
    staged.push(step(at));
    return at;
  };
  const mounts = config.mounts ?? [];
  // The helper runs as /proc/self/fd/N (privileges.ts): the container's own /proc must be there.
  if (!mounts.some((m) => m.type === 'proc' && posix.normalize(m.destination) === '/proc')) throw new UnsupportedError('mounts: ns-enter needs a proc mount at /proc (runc spec has one)');
  const args = ['--bind', root, '/', ...mountArgs(mounts, { root, stage, cgroupViews: context.cgroupViews })];
  // After the mounts (bwrap's --dev is among them): the host's nodes, bound over the new /dev.
  args.push(...deviceBinds(config.linux?.devices ?? []));
  for (const path of config.linux?.maskedPaths ?? []) args.push(...maskPath(path));
  for (const path of config.linux?.readonlyPaths ?? []) args.push(...readOnlyPath(path));
  return args;
}

/**
 * The environment, a new session (with a terminal the helper makes the new pty its controlling
 * terminal: the user's terminal never is), and PID 1. The helper changes to process.cwd.
 */
function processArgs(proc: ProcessConfig, namespaces: Set<string>): string[] {
  const args = ['--clearenv'];
  for (const entry of proc.env ?? []) {
    const eq = entry.indexOf('=');
    if (eq <= 0) throw new UnsupportedError(`process.env: ${JSON.stringify(entry)} is not NAME=VALUE`);
    args.push('--setenv', entry.slice(0, eq), entry.slice(eq + 1));
  }
  if (!proc.cwd || !proc.cwd.startsWith('/')) throw new UnsupportedError('process.cwd: must be an absolute path');
  // bwrap would otherwise change to the host's working directory when the container has that path.
  args.push('--chdir', '/', '--new-session');
  if (namespaces.has('pid')) args.push('--as-pid-1');
  return args;
}
