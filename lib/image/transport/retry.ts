/**
 * What is worth another try when talking to a registry, how long to wait before it, and how a
 * failure of the network reads as one line. Our own errors (a digest mismatch, a full disk, a
 * refused document) are never retried.
 */
import { ContainerPartsError, RegistryError } from '../../core/errors.js';

/** 408, 429 and the server errors that mean "not now" (501 and 505 mean "never"). */
export const RETRYABLE_STATUS = new Set([408, 429, 500, 502, 503, 504]);

const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ECONNABORTED', 'EHOSTUNREACH', 'ENETUNREACH', 'ERR_STREAM_PREMATURE_CLOSE', 'UND_ERR_SOCKET']);

/** Retry-After (seconds or an HTTP date) in ms, at most 30 s. */
export function retryAfterMs(header: string | null): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(header) - Date.now();
  if (!Number.isFinite(ms) || ms < 0) return undefined;
  return Math.min(ms, 30_000);
}

/** A request that did not get an answer, or a body that stopped coming: worth another try. */
export function isNetworkFailure(err: unknown): boolean {
  if (err instanceof ContainerPartsError) return false;
  const code = (err as { code?: string }).code ?? '';
  return NETWORK_CODES.has(code) || /premature close|socket hang up|aborted/i.test(describe(err));
}

export function isConnectionRefused(err: unknown): boolean {
  return (err as { code?: string }).code === 'ECONNREFUSED';
}

export function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function wrapNetworkError(err: unknown, where: string): ContainerPartsError {
  if (err instanceof ContainerPartsError) return err;
  const code = (err as { code?: string }).code;
  if (code === 'ECONNREFUSED') return new RegistryError(`${where}: connection refused (is the registry running?)`, undefined, { cause: err });
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return new RegistryError(`${where}: host not found`);
  if (code && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code)) {
    const host = where.split(': ')[0];
    return new RegistryError(`${where}: TLS certificate not trusted (${code})`, undefined, { hint: `its CA goes in /etc/containers/certs.d/${host}/ca.crt (or --cert-dir DIR); --tls-verify=false skips the check` });
  }
  if (/wrong version number|EPROTO/i.test(describe(err))) {
    return new RegistryError(`${where}: the registry does not speak HTTPS`, undefined, { hint: 'maybe --tls-verify=false will help?' });
  }
  return new RegistryError(`${where}: ${describe(err).split('\n')[0]}`, undefined, { cause: err });
}

/** Waits `ms`, or rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
