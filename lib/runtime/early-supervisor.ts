/**
 * create's supervisor, spawned before the command line is parsed: its node start and load
 * (~40 ms here) then overlap create's own instead of following it. It waits for its request on
 * REPORT_FD (supervisor-main.ts). The command is guessed from the raw argv (the first word that
 * is neither a flag nor the value of a global flag): a wrong guess costs time, never behaviour.
 * A supervisor nobody takes reads EOF when create ends, and exits; a create without one spawns
 * it itself.
 */
import type { ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { REPORT_FD, supervisorProgram } from './supervisor-path.js';

/** The global flags runc's callers put before the command with a value (podman: --root, --log, --log-format). */
const GLOBAL_VALUE_FLAGS = new Set(['--root', '--log', '--log-format']);

let early: Promise<ChildProcess | undefined> | undefined;

/** The command word of a runc command line, as far as it can be told without the parser. */
export function commandWord(argv: string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i] as string;
    if (!token.startsWith('-')) return token;
    if (GLOBAL_VALUE_FLAGS.has(token)) i++;
  }
  return undefined;
}

/** For `create`: the supervisor starts now (child_process loaded only then: the other commands do not need it). */
export function spawnEarlySupervisor(argv: string[]): void {
  if (commandWord(argv) !== 'create') return;
  early = import('node:child_process').then(
    ({ spawn }) => {
      const child = spawn(process.execPath, [supervisorProgram()], { detached: true, stdio: ['inherit', 'inherit', 'inherit', 'pipe'] });
      child.on('error', () => undefined);
      // Not a reason to stay: a create that fails before it takes the supervisor exits at once.
      child.unref();
      (child.stdio[REPORT_FD] as Socket | null)?.unref();
      return child;
    },
    () => undefined,
  );
}

/** The early supervisor, still waiting for its request, for create to use (once); undefined when there is none. */
export async function takeEarlySupervisor(): Promise<ChildProcess | undefined> {
  const child = await early;
  early = undefined;
  if (!child || child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return undefined;
  (child.stdio[REPORT_FD] as Socket).ref();
  return child;
}
