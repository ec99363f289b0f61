/**
 * A time limit for a whole command (img-fetch --timeout, like skopeo's --command-timeout):
 * a duration as Go writes one (`90s`, `5m`, `1h30m`, `500ms`; a bare number is seconds) and an
 * AbortSignal that aborts with the one-line error when it runs out.
 */
import { ContainerPartsError, UsageError } from './errors.js';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** `1h30m` → 5400000; `flag` names the option in the error. */
export function parseDuration(text: string, flag: string): number {
  const bare = /^\d+(?:\.\d+)?$/.test(text) ? Number(text) * 1000 : undefined;
  let ms = bare ?? 0;
  if (bare === undefined) {
    const parts = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h))+$/.test(text) ? text.match(/\d+(?:\.\d+)?(?:ms|s|m|h)/g) ?? [] : [];
    if (parts.length === 0) throw new UsageError(`${flag}: want a duration like 90s, 5m or 1h30m, got "${text.slice(0, 40)}"`);
    for (const part of parts) {
      const [, value, unit] = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(part) as RegExpExecArray;
      ms += Number(value) * (UNIT_MS[unit as string] as number);
    }
  }
  if (!(ms > 0) || ms > 2 ** 31 - 1) throw new UsageError(`${flag}: want a duration between 1ms and 24 days, got "${text.slice(0, 40)}"`);
  return Math.round(ms);
}

/** `--timeout TEXT` as a signal for the whole command, or none when the flag is not given. */
export function commandDeadline(text: string | undefined, flag = '--timeout'): AbortSignal | undefined {
  return text === undefined ? undefined : deadline(parseDuration(text, flag), flag);
}

/** Aborts after `ms` with "timed out after …": the timer does not keep the process alive. */
export function deadline(ms: number, flag: string): AbortSignal {
  const controller = new AbortController();
  const shown = ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
  setTimeout(() => controller.abort(new ContainerPartsError(`timed out after ${shown} (${flag})`)), ms).unref();
  return controller.signal;
}
