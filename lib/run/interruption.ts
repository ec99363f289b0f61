/**
 * Signals that reach ns-enter while a container starts. Without a handler node would die at
 * once and leave the run's cgroup, staging dir and name record behind; with one, the run
 * notes the signal, stops at its next step, removes what it made and exits 128+N. Once the
 * container runs, supervise.ts forwards the signals to it instead.
 */
import { InterruptedError } from '../core/errors.js';

export const STOP_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];

export interface Interruption {
  /** The first signal that came, if one did. */
  readonly signal: NodeJS.Signals | undefined;
  /** Throws InterruptedError if a signal came (call between the steps of start-up). */
  check(step: string): void;
  dispose(): void;
}

export function watchInterruptions(): Interruption {
  let received: NodeJS.Signals | undefined;
  const note = (signal: NodeJS.Signals) => {
    received ??= signal;
  };
  for (const signal of STOP_SIGNALS) process.on(signal, note);
  return {
    get signal() {
      return received;
    },
    check(step: string) {
      if (received) throw interrupted(received, step);
    },
    dispose() {
      for (const signal of STOP_SIGNALS) process.off(signal, note);
    },
  };
}

/** The one line for a run stopped by `signal` at `step`: what was made is removed. */
export function interrupted(signal: NodeJS.Signals, step: string): InterruptedError {
  return new InterruptedError(signal, `stopped by ${signal} ${step}; nothing was left behind`);
}
