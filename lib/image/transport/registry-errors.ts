/**
 * What a registry's refusal says, as one line: the status, and for a push the error body the
 * distribution spec defines (`{"errors":[{"code":"DENIED","message":"…"}]}`), its codes and
 * messages quoted as the registry sent them (cut short, control characters dropped).
 */
import { AuthError, NotFoundError, RegistryError, type ContainerPartsError } from '../../core/errors.js';

export interface StatusErrorContext {
  registry: string;
  status: number;
  what: string;
  /** How we authenticated, for the hint of a second 401. */
  auth: 'bearer' | 'basic' | undefined;
  /** The registry's codes and messages (`DENIED: requested access to the resource is denied`). */
  detail?: string;
}

export function statusError({ registry, status, what, auth, detail }: StatusErrorContext): ContainerPartsError {
  const said = detail ? ` (${detail})` : '';
  switch (status) {
    case 404:
      return new NotFoundError(`${registry}: ${what} not found${said}`);
    case 401:
      return new AuthError(`${registry}: authentication required for ${what}${said}`, status, {
        hint: auth === 'bearer' ? 'the registry refused the token from its token service' : auth === 'basic' ? 'the credentials were refused' : 'give --creds USER:PASS or log in with podman/skopeo login',
      });
    case 403:
      return new AuthError(`${registry}: access to ${what} denied${said}`, status);
    case 429:
      return new RegistryError(`${registry}: too many requests for ${what} (still 429 after retries)${said}`, status);
    default:
      return new RegistryError(`${registry}: ${what}: HTTP ${status}${status >= 500 ? ' (server error, still failing after retries)' : ''}${said}`, status);
  }
}

/** Error codes with their messages from a distribution-spec error body; undefined when it is not one. */
export function errorDetail(body: Buffer): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  const errors = (parsed as { errors?: unknown })?.errors;
  if (!Array.isArray(errors)) return undefined;
  const parts = errors
    .filter((e): e is { code?: unknown; message?: unknown } => typeof e === 'object' && e !== null)
    .map((e) => [clean(e.code), clean(e.message)].filter(Boolean).join(': '))
    .filter(Boolean);
  return parts.length ? parts.slice(0, 3).join('; ') : undefined;
}

function clean(value: unknown): string {
  if (typeof value !== 'string') return '';
  const text = value.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}
