/**
 * create and run (runtime.md, Operations). create spawns the supervisor at once; it claims the
 * id, copies the config and sets the container up while this process only waits for its report
 * (so create loads neither the schema nor the executor). `run` without -d is create + start with
 * this process as the supervisor. Every error is one line and exits 1; a failed create leaves no state.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { join, resolve } from 'node:path';
import { ContainerPartsError } from '../core/errors.js';
import type { ExitStatus } from '../run/namespaces.js';
import { takeEarlySupervisor } from './early-supervisor.js';
import { asFailure } from './failure.js';
import { runPoststopHooks } from './hooks.js';
import { claimContainer, type ClaimRequest } from './claim.js';
import type { LogTarget } from './runtime-log.js';
import { REPORT_FD, supervisorProgram } from './supervisor-path.js';
import type { Report, SuperviseRequest } from './supervisor.js';
import { findRecord, ociState, removeContainerDir } from './state.js';

export interface CreateOptions extends ClaimRequest {
  root: string;
  id: string;
  pidFile?: string;
  /** --console-socket: the unix socket the pty's master of process.terminal is sent to. */
  consoleSocket?: string;
  log: LogTarget;
  /** The container's stdin, stdout and stderr: ours (the default), or /dev/null and ROOT/ID/container.log (detached). */
  stdio?: 'inherit' | 'log';
  /** ns-enter -d: how the executor runs it, and --rm. */
  executor?: SuperviseRequest['executor'];
  unmountAfter?: SuperviseRequest['unmountAfter'];
}

/**
 * create: returns the container's pid once it is set up and waits for `start`; a set-up error
 * is this command's, and leaves nothing. The supervisor gets our stdio: it is the container's.
 */
export async function createContainer(options: CreateOptions): Promise<number> {
  const request = superviseRequest(options, true);
  // A detached container's output goes to a file in its dir: claimed here, to open it. Else the supervisor claims it.
  const claimed = options.stdio === 'log' ? await claimContainer(request) : undefined;
  const early = claimed ? undefined : await takeEarlySupervisor();
  let child: ChildProcess;
  if (early) {
    child = early;
    (child.stdio[REPORT_FD] as Socket).write(`${JSON.stringify(request)}\n`);
  } else {
    const stdio = claimed ? logStdio(claimed.dir) : (['inherit', 'inherit', 'inherit'] as const);
    child = spawn(process.execPath, [supervisorProgram(), JSON.stringify({ ...request, claim: claimed ? undefined : request.claim })], { detached: true, stdio: [...stdio, 'pipe'] });
    if (claimed) for (const fd of new Set(stdio as number[])) closeSync(fd);
  }
  const report = await reportOf(child);
  child.unref();
  if (report.created) return report.pid;
  // A supervisor that reported removed what it made; one that died may have left its claim (never another create's): ours to remove.
  if (!report.fromSupervisor && (claimed || findRecord(options.root, options.id)?.holder.pid === child.pid)) removeContainerDir(options.root, options.id);
  throw new ContainerPartsError(report.error);
}

/** The supervisor's one line on REPORT_FD (not the pipe's end: bwrap, the container's parent, inherits the supervisor's end of it), or how it ended without one. */
async function reportOf(child: ChildProcess): Promise<Report & { fromSupervisor: boolean }> {
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
  return report;
}

/** A detached container's stdio: no input, its output appended to container.log in its state dir. */
function logStdio(dir: string): [number, number, number] {
  const input = openSync('/dev/null', 'r');
  const output = openSync(join(dir, 'container.log'), 'a', 0o600);
  return [input, output, output];
}

function superviseRequest(options: CreateOptions, waitForStart: boolean): SuperviseRequest {
  const pidFileNames = waitForStart && underConmon() ? 'supervisor' : 'container';
  const claim: ClaimRequest = { bundle: resolve(options.bundle), config: options.config, image: options.image, origin: options.origin, removeWhenStopped: options.removeWhenStopped };
  return { root: options.root, id: options.id, claim, pidFile: options.pidFile && resolve(options.pidFile), pidFileNames, consoleSocket: options.consoleSocket && resolve(options.consoleSocket), log: options.log, waitForStart, executor: options.executor, unmountAfter: options.unmountAfter };
}

/** Whether podman's conmon runs us: it reaps the pid of the pid file as its child (see SuperviseRequest.pidFileNames). */
function underConmon(): boolean {
  try {
    return readFileSync(`/proc/${process.ppid}/comm`, 'utf8').trim() === 'conmon';
  } catch {
    return false;
  }
}

/** run without -d: create and start with this process as the supervisor; the container's exit status, and it is deleted. */
export async function runContainerHere(options: CreateOptions, warn: (message: string) => void): Promise<ExitStatus> {
  const request = superviseRequest(options, false);
  // Loaded only here (the executor is what run needs, and state, kill or delete do not), while the claim writes.
  const supervisor = import('./supervisor.js');
  supervisor.catch(() => undefined);
  const { config } = await claimContainer(request);
  try {
    const { superviseContainer } = await supervisor;
    return await superviseContainer(request, () => undefined);
  } catch (err) {
    return asFailure(err);
  } finally {
    const record = findRecord(options.root, options.id);
    removeContainerDir(options.root, options.id);
    if (record) await runPoststopHooks(config, { ...ociState(record), status: 'stopped', pid: 0 }, warn);
  }
}
