/**
 * exec: another process in a running container, as `runc exec` and `nsenter -t PID -a` run it.
 * Its process is the container's own (config.process, copied at create) with the command, env,
 * user, cwd and terminal given, or a process.json (--process). It joins the container's cgroup
 * (a shell writes itself into its cgroup.procs), then util-linux nsenter joins every namespace
 * of the container's first process (the user namespace first) and its root, and runs
 * ns-enter-exec there from the fd we hold (no host file is reached by path inside): the
 * rlimits, the cwd, a new pty in the container's devpts for -t (its master relayed to our
 * terminal by the helper's relay, as for ns-enter), the groups, gid, uid, capabilities and
 * no_new_privs, exactly as for the container's first process (lib/run/privileges.ts).
 * Not joined: the container's seccomp filter (bwrap loads it; the helper cannot).
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { resolve } from 'node:path';
import { writeFileAtomic } from '../core/atomic-write.js';
import { ContainerPartsError, UsageError } from '../core/errors.js';
import { findProgram } from '../core/host.js';
import { devptsGid } from '../run/bwrap-plan.js';
import { commandInCgroups, ownCgroupDirsOf } from '../run/cgroups.js';
import type { ProcessConfig } from '../run/config-checks.js';
import { resolveUser } from '../run/passwd.js';
import { helperCommand, helperPath } from '../run/privileges.js';
import type { RuntimeConfig } from '../run/runtime-spec.js';
import { configCopy, containerDir, currentStatus, readRecord } from './state.js';

export interface ExecRequest {
  root: string;
  id: string;
  /** The command (empty with a process file). */
  args: string[];
  tty: boolean;
  env: string[];
  /** UID[:GID], or USER[:GROUP] names of the container's /etc/passwd and /etc/group. */
  user?: string;
  cwd?: string;
  /** --process FILE: a process object as config.json's. */
  processFile?: string;
  detach: boolean;
  pidFile?: string;
  /** With -t: send the pty's master to this unix socket (podman's conmon), instead of relaying it to our terminal. */
  consoleSocket?: string;
}

/** The process to run in the container whose first process is `pid`: the container's own, changed as the flags say, or the process file's. */
export function execProcess(config: RuntimeConfig, request: ExecRequest, pid: number): ProcessConfig & { args: string[] } {
  let proc: ProcessConfig;
  if (request.processFile !== undefined) {
    if (request.args.length > 0) throw new UsageError('--process FILE names the command: give no command after the id');
    proc = readProcessFile(request.processFile);
  } else {
    if (request.args.length === 0) throw new UsageError('no command given: oci-runtime exec ID CMD [ARGS...], or --process FILE');
    const base = config.process as ProcessConfig;
    const user = userOf(request.user, base.user, `/proc/${pid}/root`);
    proc = { ...base, args: request.args, terminal: request.tty, env: [...(base.env ?? []), ...request.env], cwd: request.cwd ?? base.cwd, user, capabilities: capabilitiesFor(user.uid, base.capabilities) };
  }
  if (!proc.args?.length) throw new UsageError('process.args: missing (nothing to run)');
  if (!proc.cwd?.startsWith('/')) throw new UsageError(`process.cwd: ${JSON.stringify(proc.cwd)} is not an absolute path`);
  return { ...proc, args: proc.args };
}

function readProcessFile(file: string): ProcessConfig {
  try {
    const value = JSON.parse(readFileSync(file, 'utf8')) as ProcessConfig;
    if (typeof value !== 'object' || value === null || typeof value.user?.uid !== 'number' || typeof value.user?.gid !== 'number') throw new Error('process.user.uid and .gid must be numbers');
    return value;
  } catch (err) {
    throw new UsageError(`--process ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
}

/**
 * The container's capabilities for another user (-u): a uid other than 0 keeps after exec only
 * its ambient set (also inheritable and bounding), so that is its effective and permitted set
 * (what runc exec -u shows, too); the helper insists on the sets being what the kernel gives.
 */
function capabilitiesFor(uid: number, caps: ProcessConfig['capabilities']): ProcessConfig['capabilities'] {
  if (uid === 0 || !caps) return caps;
  const kept = (caps.ambient ?? []).filter((c) => (caps.inheritable ?? []).includes(c) && (caps.bounding ?? []).includes(c));
  return { ...caps, effective: kept, permitted: kept };
}

/** -u UID[:GID] as runc takes it (the config's groups go with the config's user only), or names, looked up in the container's /etc/passwd and /etc/group as ns-enter -u does. */
function userOf(flag: string | undefined, base: ProcessConfig['user'], root: string): ProcessConfig['user'] {
  if (flag === undefined) return base;
  const match = /^(\d+)(?::(\d+))?$/.exec(flag);
  if (match) return { uid: Number(match[1]), gid: Number(match[2] ?? 0) };
  const { uid, gid, additionalGids } = resolveUser(root, flag);
  return { uid, gid, ...(additionalGids.length > 0 ? { additionalGids } : {}) };
}

/** The argv that runs `proc` in the container whose first process is `pid`; `setgroups`: false where the container's user namespace denies it. */
function execArgv(pid: number, proc: ProcessConfig & { args: string[] }, config: RuntimeConfig): string[] {
  const setgroups = readOr(`/proc/${pid}/setgroups`, 'allow').trim() !== 'deny';
  const helper = helperCommand(proc, { setgroups, init: false, terminal: proc.terminal === true, terminalGid: devptsGid(config.mounts ?? []) });
  const enter = [findProgram('nsenter'), '--target', String(pid), '--all', '--root', '--wd', '--', ...helper];
  const cgroups = ownCgroupDirsOf(pid);
  return cgroups.length > 0 ? commandInCgroups(cgroups, enter) : enter;
}

function readOr(path: string, fallback: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return fallback;
  }
}

/** The environment of the process, from its NAME=VALUE list (nsenter and the helper pass it on as it is). */
function environmentOf(entries: string[]): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const entry of entries) {
    const eq = entry.indexOf('=');
    if (eq <= 0) throw new UsageError(`process.env: ${JSON.stringify(entry)} is not NAME=VALUE`);
    env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return env;
}

/** Runs the process in the container; its exit status (0 at once with --detach). Start-up errors are the helper's lines, without their prefix, in `messages`. */
export async function execInContainer(request: ExecRequest): Promise<{ code: number; messages: string[] }> {
  const record = readRecord(request.root, request.id);
  if (currentStatus(record) !== 'running') throw new ContainerPartsError(`cannot exec in a container that is not running (it is ${currentStatus(record)})`);
  const config = JSON.parse(readFileSync(configCopy(containerDir(request.root, request.id)), 'utf8')) as RuntimeConfig;
  const proc = execProcess(config, request, record.pid);
  const argv = execArgv(record.pid, proc, config);
  const helper = helperPath();
  const helperFd = openSync(helper, 'r');
  try {
    const relay = [helper, 'relay', ...(request.consoleSocket === undefined ? [] : ['--console-socket', resolve(request.consoleSocket)]), '--'];
    const [program, ...args] = proc.terminal ? [...relay, ...argv] : argv;
    // fd 6 is the helper (nsenter passes it on), 7 the process's stderr once it runs; until then fd 2 is a pipe to us
    // (detached: our stderr, as runc exec -d leaves the process our stdio; conmon reads it, and reaps the pid file's process).
    const child = spawn(program as string, args, { env: environmentOf(proc.env ?? []), detached: request.detach, stdio: ['inherit', 'inherit', request.detach ? 'inherit' : 'pipe', 'ignore', 'ignore', 'ignore', helperFd, proc.terminal ? 'ignore' : 2] });
    if (request.pidFile !== undefined && child.pid !== undefined) await writeFileAtomic(request.pidFile, String(child.pid));
    let said = '';
    child.stderr?.on('data', (chunk: Buffer) => (said = (said + chunk.toString('utf8')).slice(-4000)));
    if (request.detach) {
      child.unref();
      return { code: 0, messages: [] };
    }
    const code = await new Promise<number>((resolve) => child.on('close', (status, signal) => resolve(status ?? 128 + (signal ? constants.signals[signal] : 0))));
    const messages = said.split('\n').map((l) => l.trim()).filter(Boolean).map((l) => l.replace(/^ns-enter: /, ''));
    return { code, messages };
  } finally {
    closeSync(helperFd);
  }
}
