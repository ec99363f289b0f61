/** Signals as `kill` takes them: a number, or a name with or without SIG (KILL, SIGKILL, kill), as runc does. */
import { constants } from 'node:os';
import { UsageError } from '../core/errors.js';

/** The signal's number; a UsageError naming the argument for anything else. */
export function parseSignal(text: string): number {
  if (/^\d+$/.test(text)) {
    const number = Number(text);
    if (number <= 64) return number;
  } else {
    const name = text.toUpperCase().replace(/^SIG/, '');
    const number = (constants.signals as Record<string, number>)[`SIG${name}`];
    if (number !== undefined) return number;
    const realtime = /^RTMIN(?:\+(\d+))?$/.exec(name);
    if (realtime && 34 + Number(realtime[1] ?? 0) <= 64) return 34 + Number(realtime[1] ?? 0);
  }
  throw new UsageError(`${JSON.stringify(text)} is not a signal`, { hint: 'give a name (TERM, SIGKILL) or a number (0-64)' });
}
