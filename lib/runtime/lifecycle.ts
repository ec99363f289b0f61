/**
 * The runtime's operations on a container that exists (runtime.md, Operations) as runc's
 * commands carry them out: start, state, kill, delete (create and run: create.ts). Each is a
 * command of its own, so each loads only this: no executor, no schema. Every error is one line
 * and exits 1, as runc's.
 */
import { readFileSync, watch } from 'node:fs';
import { ContainerPartsError, HostError } from '../core/errors.js';
import { holderLiveness } from '../core/holder.js';
import type { RuntimeConfig } from '../run/runtime-spec.js';
import { askSupervisor } from './control.js';
import { containerProcesses } from './processes.js';
import { configCopy, containerDir, currentStatus, findRecord, ociState, readRecord, removeContainerDir, type ContainerRecord } from './state.js';

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
  const poststop = config?.hooks?.poststop;
  if (!config || !Array.isArray(poststop) || poststop.length === 0) return;
  // Loaded only for poststop hooks: they spawn, and a delete without any need not load child_process.
  const { runPoststopHooks } = await import('./hooks.js');
  await runPoststopHooks(config, { ...ociState(record), status: 'stopped', pid: 0 }, options.warn);
}

/** Whether the supervisor is through: the record says stopped (it writes the end of the container last), or it is gone (killed). */
function supervisorGone(root: string, id: string, holder: ContainerRecord['holder']): boolean {
  return findRecord(root, id)?.status === 'stopped' || holderLiveness(holder) !== 'alive' || isZombie(holder.pid);
}

/**
 * Waits until supervisorGone, 10 s at most: woken by the record's rename (inotify), and every
 * 100 ms for a supervisor killed without a word. Its exit is not waited for: with its parent
 * (create) gone, it may stay a zombie until an init that reaps slowly gets to it.
 */
async function supervisorDone(root: string, id: string, holder: ContainerRecord['holder']): Promise<void> {
  const dir = containerDir(root, id);
  await new Promise<void>((resolveDone) => {
    const finish = () => {
      watcher?.close();
      clearInterval(poll);
      clearTimeout(limit);
      resolveDone();
    };
    const check = () => supervisorGone(root, id, holder) && finish();
    let watcher: ReturnType<typeof watch> | undefined;
    try {
      watcher = watch(dir, check);
      watcher.on('error', () => undefined);
    } catch {
      // the dir is gone: so is the record, the check says so
    }
    const poll = setInterval(check, 100);
    const limit = setTimeout(finish, 10_000);
    check();
  });
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

/** The config create copied (validated then, or built by ns-enter): read as it is, without loading the schema again. */
function readCopiedConfig(dir: string): RuntimeConfig | undefined {
  try {
    return JSON.parse(readFileSync(configCopy(dir), 'utf8')) as RuntimeConfig;
  } catch {
    return undefined;
  }
}

export function stateOf(root: string, id: string): ReturnType<typeof ociState> {
  return ociState(readRecord(root, id));
}
