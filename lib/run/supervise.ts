/**
 * Supervising one bwrap: spawns it (with a terminal, under the helper's relay, which holds the
 * user's terminal on the host and copies to and from the container's new pty), places its
 * first process in a cgroup (and sets its oom_score_adj) while bwrap waits on the block fd,
 * lets it run, forwards SIGINT/SIGTERM/SIGHUP/SIGQUIT/SIGUSR1/SIGUSR2 to it, and says how it
 * ended. Until the helper execs the command, fd 2 is a pipe to us: what bwrap, unshare or the
 * helper say while the container starts becomes one line of ns-enter's, not a line of theirs.
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { ContainerPartsError, HostError } from '../core/errors.js';
import { FD_BLOCK, FD_INFO, FD_SECCOMP, FD_START, FD_STATUS, FD_STDERR, MOUNT_FAILED } from './bwrap-fds.js';
import type { ExecutionPlan } from './bwrap-plan.js';
import { commandInCgroups, type Cgroup } from './cgroups.js';
import { interrupted } from './interruption.js';
import { applySysctls } from './sysctl.js';

/** How the container ended. */
export interface ExitStatus {
  /** The command's exit status, or 128+N after death by signal N (as a shell reports it). */
  code: number;
  /** The container's cgroup killed it for using more memory than its limit. */
  oomKilled?: boolean;
  /** What the start-up said after the container existed (the helper's "ns-enter: " lines, e.g. a command not found), without the prefix. */
  messages: string[];
}

export interface Supervision {
  plan: ExecutionPlan;
  cgroup?: Cgroup;
  /** The container's stdin, when it is not ours. */
  stdin?: number;
  /** ns-enter-exec, open: bwrap runs it as /proc/self/fd/FD_HELPER. */
  helper: { path: string; fd: number };
  /** The compiled seccomp filter, open, when the plan has one: bwrap reads it from FD_SECCOMP. */
  seccompFd?: number;
  /** Called with the container's first process (host pid) once it exists. */
  onStart?: (pid: number) => void;
  /** The signal that came during start-up (interruption.ts), if one did. */
  interrupted?: () => NodeJS.Signals | undefined;
  /**
   * With a plan whose helper waits on FD_START: awaited once the helper says the container is set
   * up, before it may run (oci-runtime's create/start split: hooks, then `start`). A rejection
   * kills it. A container that ends before (a command not found) is the run's outcome, unheld.
   */
  hold?: (pid: number) => Promise<void>;
  /** With a terminal: send the pty's master to this unix socket (runc's --console-socket), instead of relaying it to ours. */
  consoleSocket?: string;
}

/** What bwrap has said so far on its info and status fds. */
interface Progress {
  infoText: string;
  /** fd 2 of bwrap until the helper execs the command. */
  startupText: string;
  statusText: string;
  containerPid?: number;
  exitCode?: number;
  failure?: Error;
}

const FORWARDED_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];

export function spawnAndWait(run: Supervision): Promise<ExitStatus> {
  return new Promise((resolvePromise, reject) => {
    const child = spawnBwrap(run);
    const fds = child.stdio as unknown as Array<NodeJS.ReadableStream & NodeJS.WritableStream>;
    const block = fds[FD_BLOCK] as NodeJS.WritableStream | null;
    const gate = (fds[FD_START] as NodeJS.WritableStream | undefined) ?? null;
    gate?.on('error', () => undefined);
    const progress: Progress = { infoText: '', startupText: '', statusText: '' };
    (fds[2] as NodeJS.ReadableStream).on('data', (chunk: Buffer) => (progress.startupText += chunk.toString('utf8')));
    const forward = (signal: NodeJS.Signals) => {
      // A blocking bwrap reports its container and waits: started() stops it then. Killed now, it
      // can die between its clone(2) and the child's PR_SET_PDEATHSIG, and the child, orphaned,
      // would wait on the block fd for ever, holding our pipes open.
      if (progress.containerPid === undefined && run.plan.blocks) return;
      try {
        process.kill(progress.containerPid ?? (child.pid as number), signal);
      } catch {
        // already gone
      }
    };
    for (const signal of FORWARDED_SIGNALS) process.on(signal, forward);
    (fds[FD_INFO] as NodeJS.ReadableStream).on('data', (chunk: Buffer) => {
      progress.infoText += chunk.toString('utf8');
      if (progress.containerPid !== undefined) return;
      const match = /"child-pid"\s*:\s*(\d+)/.exec(progress.infoText);
      if (match) started(Number(match[1]), { run, progress, block, gate });
    });
    (fds[FD_STATUS] as NodeJS.ReadableStream).on('data', (chunk: Buffer) => {
      progress.statusText += chunk.toString('utf8');
      const match = /"exit-code"\s*:\s*(\d+)/.exec(progress.statusText);
      if (match) progress.exitCode = Number(match[1]);
    });
    block?.on('error', () => undefined);
    child.on('error', (err) => {
      for (const signal of FORWARDED_SIGNALS) process.off(signal, forward);
      reject(new HostError(`cannot start bwrap: ${err.message}`, { hint: 'apt-get install bubblewrap' }));
    });
    child.on('close', (code, signal) => {
      for (const signal of FORWARDED_SIGNALS) process.off(signal, forward);
      const result = outcome(progress, run, { code, signal });
      if (result instanceof Error) reject(result);
      else resolvePromise(result);
    });
  });
}

/**
 * With a cgroup namespace, bwrap joins the cgroup before it clones the container (a shell
 * writes itself into each cgroup.procs, then execs it): the namespace is made at clone(2) and
 * is rooted at the cgroup its maker is in, so inside, the container's cgroup is the root.
 */
function joinCgroupFirst(run: Supervision): string[] {
  if (!run.cgroup || !run.plan.cgroupNamespace) return run.plan.argv;
  return commandInCgroups(run.cgroup.paths, run.plan.argv);
}

/**
 * Node sets up fds 3-5 as socket pairs: bwrap writes JSON to 3 and 4 and waits to read from 5;
 * 6 is the helper, 7 our stderr (the container's, once it runs), 9 the seccomp filter. With a terminal the relay
 * runs bwrap, with /dev/null as its stdin and stdout and a console socket on FD_CONSOLE.
 */
function spawnBwrap(run: Supervision) {
  const { plan, helper } = run;
  const argv = joinCgroupFirst(run);
  const relay = [helper.path, 'relay', ...(run.consoleSocket === undefined ? [] : ['--console-socket', run.consoleSocket]), '--'];
  const [program, ...args] = plan.terminal ? [...relay, ...argv] : (argv as [string, ...string[]]);
  const stdio = [run.stdin ?? 'inherit', 'inherit', 'pipe', 'pipe', 'pipe', plan.blocks ? 'pipe' : 'ignore', helper.fd, plan.terminal ? 'ignore' : 2] as const;
  if (stdio.length !== FD_STDERR + 1) throw new Error('the fd layout of bwrap-fds.ts changed');
  // FD_CONSOLE (8) stays free for the relay's console socket.
  const seccomp = run.seccompFd === undefined ? [] : (['ignore', run.seccompFd] as const);
  if (seccomp.length > 0 && stdio.length + 1 !== FD_SECCOMP) throw new Error('the fd layout of bwrap-fds.ts changed');
  const fds: Array<(typeof stdio)[number] | number | 'pipe'> = [...stdio, ...seccomp];
  if (plan.startGate) {
    while (fds.length < FD_START) fds.push('ignore');
    fds.push('pipe');
    if (fds.length !== FD_START + 1) throw new Error('the fd layout of bwrap-fds.ts changed');
  }
  return spawn(program as string, args, { stdio: fds });
}

type Gates = { progress: Progress; block: NodeJS.WritableStream | null; gate: NodeJS.WritableStream | null };

/** The container exists and waits on the block fd: its cgroup and oom_score_adj, then it may run (past the start gate once held). */
function started(pid: number, { run, progress, block, gate }: { run: Supervision } & Gates): void {
  progress.containerPid = pid;
  const signal = run.interrupted?.();
  if (signal) {
    stopStarting(pid, interrupted(signal, 'while the container was starting'), { progress, block, gate });
    return;
  }
  try {
    // bwrap itself (the container's parent) goes back where it came from: only the container's processes count in its cgroup.
    if (run.cgroup && run.plan.cgroupNamespace) run.cgroup.release(parentOf(pid));
    else if (run.cgroup) run.cgroup.addProcess(pid);
    if (run.plan.oomScoreAdj !== undefined) writeFileSync(`/proc/${pid}/oom_score_adj`, String(run.plan.oomScoreAdj));
    if (run.plan.sysctls.length > 0) applySysctls(pid, run.plan.sysctls, run.plan.userNamespace);
    run.onStart?.(pid);
    block?.end('1');
  } catch (err) {
    stopStarting(pid, err, { progress, block, gate });
    return;
  }
  if (!run.hold || !gate) return;
  const hold = run.hold;
  // The helper says (one byte on the gate) when all is set up but the exec: held from then on.
  (gate as unknown as NodeJS.ReadableStream).once('data', () => hold(pid).then(() => gate.end('1'), (err: unknown) => stopStarting(pid, err, { progress, block, gate })));
}

/** What made the start-up fail is the run's outcome; the waiting container is killed. */
function stopStarting(pid: number, err: unknown, { progress, block, gate }: Gates): void {
  progress.failure = err instanceof Error ? err : new Error(String(err));
  // The container may be gone already (what failed may have been its end): ESRCH is no second error.
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone
  }
  block?.end();
  gate?.end();
}

/** A process's parent, from /proc/PID/stat (field 4, after the command name in parentheses). */
function parentOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

/** How the run ended, from bwrap's status fd, else its own exit; or the error that stopped it. */
function outcome(progress: Progress, run: Supervision, exit: { code: number | null; signal: NodeJS.Signals | null }): ExitStatus | Error {
  const { failure, infoText, containerPid } = progress;
  if (failure) return failure instanceof ContainerPartsError ? failure : new HostError(`cannot set up the container: ${failure.message}`);
  const mountFailure = infoText.indexOf(MOUNT_FAILED);
  if (containerPid === undefined && mountFailure !== -1) {
    return new HostError(`cannot mount ${oneLine(infoText.slice(mountFailure + MOUNT_FAILED.length))}`);
  }
  const said = progress.startupText.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  const signal = run.interrupted?.();
  if (containerPid === undefined && signal) return interrupted(signal, 'while the container was starting');
  if (containerPid === undefined) {
    const who = run.plan.argv.includes('--user') ? 'the user namespace or bubblewrap' : 'bubblewrap';
    return new HostError(`${who} could not set up the container${said.length > 0 ? `: ${said.join('; ')}` : ''}`);
  }
  const code = progress.exitCode ?? (exit.signal ? 128 + (signalNumber(exit.signal) ?? 0) : (exit.code ?? 1));
  return { code, oomKilled: run.cgroup?.oomKilled(), messages: said.map((l) => l.replace(/^ns-enter: /, '')) };
}

function oneLine(text: string): string {
  return text.trim().replace(/\s*\n\s*/g, '; ');
}

function signalNumber(signal: NodeJS.Signals): number | undefined {
  const numbers: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGUSR1: 10, SIGSEGV: 11, SIGUSR2: 12, SIGPIPE: 13, SIGTERM: 15 };
  return numbers[signal];
}
