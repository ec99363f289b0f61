/**
 * Who holds a lock or a staging directory, recorded so that another process can tell whether
 * the holder is gone. A pid alone is not enough: it is reused, and a pid from another PID
 * namespace (a CI container sharing the store's volume) names a different process or none.
 * So the record also carries the PID namespace, the boot and the process's start time, and
 * the holder touches its record (a heartbeat) while it holds. A holder we cannot see (another
 * namespace, another boot of a shared disk) is alive until its heartbeat is stale.
 */
import { readFileSync, readlinkSync } from 'node:fs';
import { utimes } from 'node:fs/promises';

export interface HolderRecord {
  pid: number;
  /** The inode of the holder's PID namespace (`pid:[4026531836]`). */
  pidNamespace: string;
  bootId: string;
  /** Field 22 of /proc/PID/stat: clock ticks from boot to the process's start. */
  startTime: string;
}

/** How often a holder touches its record, and after how long without a touch it is taken for dead. */
export const HEARTBEAT_MS = 5_000;
export const STALE_HOLDER_MS = 60_000;

export type Liveness = 'alive' | 'dead' | 'unknown';

let self: HolderRecord | undefined;

export function currentHolder(): HolderRecord {
  self ??= { pid: process.pid, pidNamespace: readProc('/proc/self/ns/pid', true), bootId: readProc('/proc/sys/kernel/random/boot_id'), startTime: processStartTime('self') };
  return self;
}

/** Parses a record; anything else (empty, truncated, foreign) is undefined. */
export function parseHolder(text: string): HolderRecord | undefined {
  try {
    const value = JSON.parse(text) as HolderRecord;
    return Number.isInteger(value.pid) && value.pid > 0 && typeof value.pidNamespace === 'string' && typeof value.bootId === 'string' && typeof value.startTime === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}

/**
 * What we can tell about a holder from here. Same boot and namespace: its pid is alive and
 * started when the record says (else the pid was reused), or it is dead. Anything else is
 * unknown: the caller decides by the age of the heartbeat (isStale).
 */
export function holderLiveness(holder: HolderRecord): Liveness {
  const me = currentHolder();
  if (holder.bootId !== me.bootId || holder.pidNamespace !== me.pidNamespace || !holder.pidNamespace) return 'unknown';
  if (holder.pid === me.pid) return holder.startTime === me.startTime ? 'alive' : 'dead';
  if (!pidExists(holder.pid)) return 'dead';
  const started = processStartTime(holder.pid);
  return started && holder.startTime && started !== holder.startTime ? 'dead' : 'alive';
}

/** A pid in our own namespace, with nothing else known (names of the old format). */
export function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function isStale(mtimeMs: number, now = Date.now()): boolean {
  return now - mtimeMs > STALE_HOLDER_MS;
}

/** Touches `path` every HEARTBEAT_MS until stopped; the timer does not keep the process alive. */
export function startHeartbeat(path: string): { stop(): void } {
  const timer = setInterval(() => {
    const now = new Date();
    utimes(path, now, now).catch(() => undefined);
  }, HEARTBEAT_MS);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

/** Field 22 of /proc/PID/stat (clock ticks from boot to the start): '' when there is no such process. */
export function processStartTime(pid: number | 'self'): string {
  const stat = readProc(`/proc/${pid}/stat`);
  if (stat === '') return '';
  // The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '';
}

function readProc(path: string, link = false): string {
  try {
    return link ? readlinkSync(path) : readFileSync(path, 'utf8').trim();
  } catch {
    return '';
  }
}
