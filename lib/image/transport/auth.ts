/**
 * Registry credentials, looked up the way skopeo and podman do: --creds, then
 * $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json, $DOCKER_CONFIG/config.json or
 * ~/.docker/config.json; in each, `credHelpers` for the registry, `auths` entries (base64
 * user:password, most specific key first), then `credsStore`. And the auth the registry asks
 * for: its WWW-Authenticate challenge, and a Bearer token from its token service.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { AuthError, UsageError } from '../../core/errors.js';
import { readBody, type HttpClient, type HttpResponse } from './http.js';
import { wrapNetworkError } from './retry.js';

export interface Credentials {
  username: string;
  password: string;
}

interface AuthFile {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
}

export function parseCredsFlag(value: string): Credentials {
  const colon = value.indexOf(':');
  if (colon <= 0) throw new UsageError('--creds: want USERNAME:PASSWORD');
  return { username: value.slice(0, colon), password: value.slice(colon + 1) };
}

/** The auth files to read, in order. */
export function authFilePaths(env: NodeJS.ProcessEnv): string[] {
  const home = env.HOME || homedir();
  const paths: string[] = [];
  if (env.REGISTRY_AUTH_FILE) paths.push(env.REGISTRY_AUTH_FILE);
  if (env.XDG_RUNTIME_DIR) paths.push(join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json'));
  paths.push(join(env.DOCKER_CONFIG || join(home, '.docker'), 'config.json'));
  return paths;
}

/** Credentials for `registry` (and `repository`, for per-namespace entries), or undefined for anonymous. */
export async function lookupCredentials(registry: string, repository: string, env: NodeJS.ProcessEnv = process.env): Promise<Credentials | undefined> {
  for (const path of authFilePaths(env)) {
    const file = await readAuthFile(path);
    if (!file) continue;
    const helper = file.credHelpers?.[registry] ?? file.credHelpers?.[dockerHubKey(registry)];
    if (helper) return credentialHelperGet(helper, registry, env);
    const entry = matchAuthEntry(file, registry, repository);
    if (entry) return entry;
    if (file.credsStore) {
      // As for credHelpers: "credentials not found" is anonymous, a failing helper is an error.
      const fromStore = await credentialHelperGet(file.credsStore, registry, env);
      if (fromStore) return fromStore;
    }
  }
  return undefined;
}

function dockerHubKey(registry: string): string {
  return registry === 'docker.io' ? 'https://index.docker.io/v1/' : registry;
}

function matchAuthEntry(file: AuthFile, registry: string, repository: string): Credentials | undefined {
  const auths = file.auths ?? {};
  // containers-auth.json allows registry/namespace keys: the longest match wins.
  const parts = repository.split('/');
  const candidates: string[] = [];
  for (let i = parts.length; i >= 1; i--) candidates.push(`${registry}/${parts.slice(0, i).join('/')}`);
  candidates.push(registry, `https://${registry}`, `http://${registry}`, dockerHubKey(registry), `${dockerHubKey(registry)}`.replace(/\/v1\/$/, ''));
  for (const key of candidates) {
    const entry = auths[key];
    if (!entry) continue;
    if (entry.auth) {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon > 0) return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
    }
    if (entry.username && entry.password) return { username: entry.username, password: entry.password };
  }
  return undefined;
}

async function readAuthFile(path: string): Promise<AuthFile | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
  try {
    return JSON.parse(text) as AuthFile;
  } catch {
    throw new AuthError(`${path}: not valid JSON`);
  }
}

/** Runs `docker-credential-NAME get`, the credential helper protocol. */
function credentialHelperGet(name: string, registry: string, env: NodeJS.ProcessEnv): Promise<Credentials | undefined> {
  const program = `docker-credential-${name}`;
  return new Promise((resolve, reject) => {
    const child = execFile(program, ['get'], { env, timeout: 30_000 }, (err, stdout) => {
      if (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return reject(new AuthError(`credential helper ${program} is not installed`));
        if (/credentials not found/i.test(stdout)) return resolve(undefined);
        return reject(new AuthError(`credential helper ${program} failed for ${registry}`));
      }
      try {
        const reply = JSON.parse(stdout) as { Username?: string; Secret?: string };
        if (!reply.Secret) return resolve(undefined);
        resolve({ username: reply.Username ?? '<token>', password: reply.Secret });
      } catch {
        reject(new AuthError(`credential helper ${program} printed something that is not JSON`));
      }
    });
    child.stdin?.end(registry === 'docker.io' ? 'https://index.docker.io/v1/' : registry);
  });
}

/** A WWW-Authenticate challenge: the scheme and its parameters (realm, service, scope). */
export interface Challenge {
  scheme: 'basic' | 'bearer';
  params: Record<string, string>;
}

/** `Bearer realm="https://auth",service="reg",scope="repository:x:pull"` → scheme and params. */
export function parseChallenge(header: string): Challenge | undefined {
  const match = /^\s*(Basic|Bearer)\b\s*(.*)$/i.exec(header);
  if (!match) return undefined;
  const params: Record<string, string> = {};
  const paramPattern = /([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g;
  for (const m of (match[2] ?? '').matchAll(paramPattern)) params[(m[1] as string).toLowerCase()] = (m[2] ?? m[3] ?? '').replace(/\\(.)/g, '$1');
  return { scheme: (match[1] as string).toLowerCase() as 'basic' | 'bearer', params };
}

export const USER_AGENT = 'container-parts';

/** A Bearer token, and when to stop using it: a little before the lifetime the issuer stated. */
export interface Token {
  value: string;
  renewAt: number;
}

export interface TokenRequest {
  http: HttpClient;
  /** The registry, as named in messages. */
  registry: string;
  repository: string;
  /** `pull` unless said (a push: `pull,push`). */
  actions?: string;
  challenge: Challenge;
  credentials: () => Promise<Credentials | undefined>;
  signal?: AbortSignal;
  debug?: (message: string) => void;
}

/** Asks the token service named in the challenge for a token (distribution's token spec): pull, or pull and push. */
export async function requestToken(request: TokenRequest): Promise<Token> {
  const { repository, challenge } = request;
  const url = new URL(challenge.params.realm as string);
  if (challenge.params.service) url.searchParams.set('service', challenge.params.service);
  url.searchParams.set('scope', `repository:${repository}:${request.actions ?? 'pull'}`);
  const creds = await request.credentials();
  const headers: Record<string, string> = { 'User-Agent': USER_AGENT };
  if (creds) headers.Authorization = `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
  request.debug?.(`token for ${repository} from ${url.origin}${url.pathname}`);
  let res: HttpResponse;
  let body: Buffer;
  try {
    res = await request.http.get(url, headers, request.signal);
    body = await readBody(res, 1 << 20, `token service ${url.origin}`);
  } catch (err) {
    throw wrapNetworkError(err, `${request.registry}: token service ${url.origin}`);
  }
  if (res.status === 401 || res.status === 403) {
    throw new AuthError(
      `${request.registry}: the token service refused ${creds ? `the credentials of ${creds.username}` : 'anonymous access'} for ${repository}`,
      res.status,
      creds ? {} : { hint: 'give --creds USER:PASS or log in with podman/skopeo login' },
    );
  }
  if (res.status !== 200) throw new AuthError(`${request.registry}: token service ${url.origin} answered HTTP ${res.status}`, res.status);
  const reply = parseJson(body) as { token?: string; access_token?: string; expires_in?: number };
  const value = reply.token ?? reply.access_token;
  if (!value) throw new AuthError(`${request.registry}: token service ${url.origin} sent no token`, res.status);
  // The spec's default lifetime is 60 s. Renew before the end, by 5 s or a quarter of a short lifetime.
  const lifetime = (reply.expires_in && reply.expires_in > 0 ? reply.expires_in : 60) * 1000;
  return { value, renewAt: Date.now() + lifetime - Math.min(5000, lifetime / 4) };
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return {};
  }
}
