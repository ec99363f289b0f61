/**
 * The runtime's operations (runtime.md, Operations) as runc's commands carry them out: create
 * (claim the id, copy the config, start the supervisor and wait for its report), start, state,
 * kill, delete, and run (create + start, the supervisor in this process). Every error is one
 * line and exits 1, as runc's; a failed create leaves no state.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { writeFileAtomic } from '../core/atomic-write.js';
import { ContainerPartsError, HostError, UsageError } from '../core/errors.js';
import { holderLiveness } from '../core/holder.js';
import { readRuntimeConfig } from '../run/spec.js';
import type { ExitStatus } from '../run/namespaces.js';
import type { RuntimeConfig } from '../run/runtime-spec.js';
import { askSupervisor } from './control.js';
import { runPoststopHooks } from './hooks.js';
import { containerProcesses } from './processes.js';
import type { LogTarget } from './runtime-log.js';
import { REPORT_FD, supervisorProgram } from './supervisor-path.js';
import type { Report, SuperviseRequest } from './supervisor.js';
import { claimId, configCopy, containerDir, currentStatus, ociState, readRecord, removeContainerDir, type ContainerRecord } from './state.js';

export interface CreateOptions {
  root: string;
  id: string;
  /** The bundle dir: its config.json, unless `config` is given (then relative paths of the config are relative to it). */
  bundle: string;
  /** A config made already (ns-enter -d builds one from the image): validated by its maker. */
  config?: RuntimeConfig;
  pidFile?: string;
  /** --console-socket: the unix socket the pty's master of process.terminal is sent to. */
  consoleSocket?: string;
  log: LogTarget;
  /** The container's stdin, stdout and stderr: ours (the default), or /dev/null and ROOT/ID/container.log (detached). */
  stdio?: 'inherit' | 'log';
  /** ns-enter -d: what `list` shows of it, how the executor runs it, and --rm. */
  image?: string;
  origin?: ContainerRecord['origin'];
  removeWhenStopped?: boolean;
  executor?: SuperviseRequest['executor'];
  unmountAfter?: SuperviseRequest['unmountAfter'];
}

/** Bad input to a runtime command (a config, an id) is a failure (exit 1), as every runc error is. */
export function asFailure(err: unknown): never {
  if (err instanceof UsageError) throw new ContainerPartsError(err.userMessage, { cause: err });
  throw err;
}

/** Reads the bundle's config (validated), claims the id, and copies the config beside the state. */
async function prepare(options: CreateOptions): Promise<{ dir: string; config: RuntimeConfig }> {
  const bundle = resolve(options.bundle);
  let config: RuntimeConfig;
  try {
    config = options.config ?? readRuntimeConfig(`${bundle}/config.json`);
  } catch (err) {
    asFailure(err);
  }
  if (!config.process?.args?.length) throw new ContainerPartsError(`${bundle}/config.json: process.args: missing (nothing to run)`);
  const dir = await claimId(options.root, {
    id: options.id,
    pid: 0,
    pidStartTime: '',
    bundle,
    rootfs: resolve(bundle, config.root?.path ?? 'rootfs'),
    created: new Date().toISOString(),
    annotations: config.annotations,
    command: config.process.args,
    image: options.image,
    origin: options.origin ?? 'oci-runtime',
    removeWhenStopped: options.removeWhenStopped,
  });
  try {
    await writeFileAtomic(configCopy(dir), JSON.stringify(config));
  } catch (err) {
    removeContainerDir(options.root, options.id);
    throw err;
  }
  return { dir, config };
}

/**
 * create: returns the container's pid once it is set up and waits for `start`; a set-up error
 * is this command's, and leaves nothing. The supervisor gets our stdio: it is the container's.
 */
export async function createContainer(options: CreateOptions): Promise<number> {
  const { dir } = await prepare(options);
  const stdio = options.stdio === 'log' ? logStdio(dir) : (['inherit', 'inherit', 'inherit'] as const);
  const child = spawn(process.execPath, [supervisorProgram(), JSON.stringify(superviseRequest(options, true))], { detached: true, stdio: [...stdio, 'pipe'] });
  if (options.stdio === 'log') for (const fd of new Set(stdio as number[])) closeSync(fd);
  // One line, not the pipe's end: bwrap (the container's parent) inherits the supervisor's end of it.
  const report = await new Promise<Report & { fromSupervisor: boolean }>((resolveReport) => {
    let text = '';
    const channel = child.stdio[REPORT_FD] as NodeJS.ReadableStream;
    channel.on('data', (chunk: Buffer) => {
      text += chunk.toString('utf8');
      if (text.includes('\n')) resolveReport({ ...(JSON.parse(text.slice(0, text.indexOf('\n'))) as Report), fromSupervisor: true });
    });
    child.on('error', (err) => resolveReport({ created: false, error: `cannot start the supervisor: ${err.message}`, exitCode: 1, fromSupervisor: false }));
    child.on('exit', (code, signal) => resolveReport({ created: false, error: `the supervisor ended (${signal ?? code}) before the container was created`, exitCode: 1, fromSupervisor: false }));
  });
  (child.stdio[REPORT_FD] as unknown as { destroy(): void }).destroy();
  child.unref();
  if (report.created) return report.pid;
  // A supervisor that reported removed what it made; one that died left the claim, ours to remove.
  if (!report.fromSupervisor) removeContainerDir(options.root, options.id);
  throw new ContainerPartsError(report.error);
}

/** A detached container's stdio: no input, its output appended to container.log in its state dir. */
function logStdio(dir: string): [number, number, number] {
  const input = openSync('/dev/null', 'r');
  const output = openSync(join(dir, 'container.log'), 'a', 0o600);
  return [input, output, output];
}

function superviseRequest(options: CreateOptions, waitForStart: boolean): SuperviseRequest {
  const pidFileNames = waitForStart && underConmon() ? 'supervisor' : 'container';
  return { root: options.root, id: options.id, pidFile: options.pidFile && resolve(options.pidFile), pidFileNames, consoleSocket: options.consoleSocket && resolve(options.consoleSocket), log: options.log, waitForStart, executor: options.executor, unmountAfter: options.unmountAfter };
}

/** Whether podman's conmon runs us: it reaps the pid of the pid file as its child (see SuperviseRequest.pidFileNames). */
function underConmon(): boolean {
  try {
    return readFileSync(`/proc/${process.ppid}/comm`, 'utf8').trim() === 'conmon';
  } catch {
    return false;
  }
}

function readRecordOrUndefined(options: { root: string; id: string }): ContainerRecord | undefined {
  try {
    return readRecord(options.root, options.id);
  } catch {
    return undefined;
  }
}

/** start: the created container runs; returns after its poststart hooks. */
export async function startContainer(root: string, id: string): Promise<void> {
  const record = readRecord(root, id);
  const status = currentStatus(record);
  if (status === 'stopped') throw new ContainerPartsError('cannot start a container that has stopped');
  if (status === 'running') throw new ContainerPartsError('cannot start an already running container');
  if (status === 'creating') throw new ContainerPartsError(`container ${id} is still being created`);
  const reply = await askSupervisor(containerDir(root, id), { op: 'start' });
  if (!reply.ok) throw new ContainerPartsError(reply.error ?? 'the container could not be started');
}

/** kill: a signal to the container's first process, or with `all` to every process of it. */
export function killContainer(root: string, id: string, signal: number, all: boolean): void {
  const record = readRecord(root, id);
  const status = currentStatus(record);
  if (status !== 'created' && status !== 'running') throw new ContainerPartsError('container not running');
  for (const pid of all ? containerProcesses(record.pid) : [record.pid]) {
    try {
      process.kill(pid, signal);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw new HostError(`cannot send signal ${signal} to ${pid}: ${(err as NodeJS.ErrnoException).code}`);
    }
  }
}

/** delete: a stopped container's state goes (with --force a live one is killed first); then the poststop hooks. */
export async function deleteContainer(root: string, id: string, options: { force: boolean; warn: (message: string) => void }): Promise<void> {
  const record = readRecord(root, id);
  const status = currentStatus(record);
  if (status !== 'stopped' && !options.force) throw new ContainerPartsError(`cannot delete container ${id} that is not stopped: ${status}`);
  if (status === 'created' || status === 'running') killContainer(root, id, 9, true);
  await supervisorDone(root, id, record.holder);
  const config = readCopiedConfig(containerDir(root, id));
  removeContainerDir(root, id);
  if (config) await runPoststopHooks(config, { ...ociState(record), status: 'stopped', pid: 0 }, options.warn);
}

/**
 * The supervisor writes the end of the container last: the state is final once it says stopped,
 * or once the supervisor is gone (killed). 10 s at most. Its exit is not waited for: with its
 * parent (create) gone, it may stay a zombie until an init that reaps slowly gets to it.
 */
async function supervisorDone(root: string, id: string, holder: ContainerRecord['holder']): Promise<void> {
  for (let waited = 0; waited < 10_000; waited += 20) {
    if (readRecordOrUndefined({ root, id })?.status === 'stopped' || holderLiveness(holder) !== 'alive' || isZombie(holder.pid)) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Field 3 of /proc/PID/stat: Z, a process that has ended and waits to be reaped. */
function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

function readCopiedConfig(dir: string): RuntimeConfig | undefined {
  try {
    return readRuntimeConfig(configCopy(dir));
  } catch {
    return undefined;
  }
}

/** run without -d: create and start with this process as the supervisor; the container's exit status, and it is deleted. */
export async function runContainerHere(options: CreateOptions, warn: (message: string) => void): Promise<ExitStatus> {
  const { config } = await prepare(options);
  try {
    // Loaded only here: the executor is what run needs, and state, kill or delete do not.
    const { superviseContainer } = await import('./supervisor.js');
    return await superviseContainer(superviseRequest(options, false), () => undefined);
  } catch (err) {
    return asFailure(err);
  } finally {
    const record = readRecordOrUndefined(options);
    removeContainerDir(options.root, options.id);
    if (record) await runPoststopHooks(config, { ...ociState(record), status: 'stopped', pid: 0 }, warn);
  }
}

export function stateOf(root: string, id: string): ReturnType<typeof ociState> {
  return ociState(readRecord(root, id));
}
