/**
 * A client for the OCI distribution API (../shared/specs/distribution-spec/spec.md): manifests
 * and blobs, with Basic and anonymous/credentialed Bearer token auth (tokens reused for the
 * repository, renewed on expiry), bounded retries with backoff and Retry-After, and blob
 * downloads that resume with a Range request instead of starting over.
 */
import http from 'node:http';
import https from 'node:https';
import fetch, { type RequestInit, type Response } from 'node-fetch';
import { digestOf } from './digest.js';
import { AuthError, ContainerPartsError, DigestMismatchError, NotFoundError, RegistryError } from './errors.js';
import { registryEndpointHost } from './reference.js';
import type { Credentials } from './auth.js';
import type { BlobWriter } from './store.js';

export interface RegistryOptions {
  tlsVerify: boolean;
  /** Credentials for the registry; a function is called only when the registry asks for them. */
  credentials?: () => Promise<Credentials | undefined>;
  retries?: number;
  /** Base of the exponential backoff, in ms. */
  backoffMs?: number;
  debug?: (message: string) => void;
}

export interface FetchedManifest {
  mediaType: string;
  digest: string;
  body: Buffer;
}

interface Token {
  value: string;
  expiresAt: number;
}

const USER_AGENT = 'container-parts';
const RETRYABLE_STATUS = new Set([408, 429, 500, 502, 503, 504]);

export class Registry {
  private scheme: 'https' | 'http' | undefined;
  private readonly tokens = new Map<string, Token>();
  private basic: string | undefined;
  private credentialsLookup: Promise<Credentials | undefined> | undefined;
  private readonly httpsAgent: https.Agent;
  private readonly httpAgent = new http.Agent({ keepAlive: true, maxSockets: 16 });

  constructor(readonly registry: string, private readonly options: RegistryOptions) {
    this.httpsAgent = new https.Agent({ keepAlive: true, maxSockets: 16, rejectUnauthorized: options.tlsVerify });
  }

  get host(): string {
    return registryEndpointHost(this.registry);
  }

  /** GET a manifest by tag or digest; a digest reference is checked against the content. */
  async manifest(repository: string, reference: string, accept: readonly string[]): Promise<FetchedManifest> {
    const res = await this.request(repository, `/v2/${repository}/manifests/${reference}`, { headers: { Accept: accept.join(', ') } }, `manifest ${repository}:${reference}`);
    const body = Buffer.from(await res.arrayBuffer());
    const digest = digestOf(body);
    if (reference.startsWith('sha256:') && digest !== reference) {
      throw new DigestMismatchError(`manifest ${this.registry}/${repository}@${reference}: content has digest ${digest}`);
    }
    const mediaType = (res.headers.get('content-type') ?? '').split(';')[0]?.trim() || guessMediaType(body);
    return { mediaType, digest, body };
  }

  /** Downloads a blob into `writer`, resuming from where a broken download stopped. */
  async blob(repository: string, digest: string, writer: BlobWriter, onBytes?: (n: number) => void): Promise<void> {
    const retries = this.options.retries ?? 4;
    for (let attempt = 0; ; attempt++) {
      const resumeFrom = writer.written;
      const headers: Record<string, string> = resumeFrom > 0 ? { Range: `bytes=${resumeFrom}-` } : {};
      try {
        const res = await this.request(repository, `/v2/${repository}/blobs/${digest}`, { headers }, `blob ${digest}`);
        if (resumeFrom > 0 && res.status !== 206) {
          this.options.debug?.(`blob ${digest}: the server ignored the Range request; starting over`);
          onBytes?.(-writer.written);
          await writer.restart();
        } else if (resumeFrom > 0) {
          this.options.debug?.(`blob ${digest}: resuming at byte ${resumeFrom}`);
        }
        for await (const chunk of res.body as AsyncIterable<Buffer>) {
          await writer.write(chunk);
          onBytes?.(chunk.length);
        }
        if (writer.expected.size !== undefined && writer.written < writer.expected.size) {
          throw new RegistryError(`blob ${digest}: connection closed after ${writer.written} of ${writer.expected.size} bytes`);
        }
        return;
      } catch (err) {
        if (!isTransient(err) || attempt >= retries) throw wrapNetworkError(err, `${this.registry}: blob ${digest}`);
        this.options.debug?.(`blob ${digest}: ${describe(err)}; retrying`);
        await sleep(this.backoff(attempt));
      }
    }
  }

  /**
   * One API request with auth and retries. 401 is answered once with the scheme the registry
   * names; 404, 401 after auth, and other 4xx are errors at once; 429 and 5xx are retried.
   */
  private async request(repository: string, path: string, init: RequestInit, what: string): Promise<Response> {
    const retries = this.options.retries ?? 4;
    let authTried = false;
    for (let attempt = 0; ; ) {
      let res: Response;
      try {
        const url = `${await this.baseUrl()}${path}`;
        const headers = { 'User-Agent': USER_AGENT, ...(init.headers as Record<string, string>), ...this.authorization(repository) };
        this.options.debug?.(`GET ${url}`);
        res = await fetch(url, { ...init, headers, agent: this.agentFor });
      } catch (err) {
        if (!isTransient(err) || attempt >= retries) throw wrapNetworkError(err, `${this.registry}: ${what}`);
        await sleep(this.backoff(attempt++));
        continue;
      }
      if (res.ok) return res;
      await res.arrayBuffer().catch(() => undefined);
      if (res.status === 401 && !authTried) {
        authTried = true;
        await this.authenticate(repository, res.headers.get('www-authenticate'));
        continue;
      }
      if (res.status === 401 && this.tokenExpired(repository)) {
        this.tokens.delete(repository);
        authTried = false;
        continue;
      }
      if (RETRYABLE_STATUS.has(res.status) && attempt < retries) {
        await sleep(retryAfterMs(res.headers.get('retry-after')) ?? this.backoff(attempt));
        attempt++;
        continue;
      }
      throw this.statusError(res.status, what);
    }
  }

  private statusError(status: number, what: string): ContainerPartsError {
    const where = `${this.registry}`;
    switch (status) {
      case 404:
        return new NotFoundError(`${what} not found in ${where}`);
      case 401:
        return new AuthError(`${where}: authentication required for ${what}`, status, {
          hint: this.basic || this.hasToken() ? 'the credentials were refused' : 'give --creds USER:PASS or log in with podman/skopeo login',
        });
      case 403:
        return new AuthError(`${where}: access to ${what} denied`, status);
      case 429:
        return new RegistryError(`${where}: too many requests for ${what} (still 429 after retries)`, status);
      default:
        return new RegistryError(`${where}: ${what}: HTTP ${status}${status >= 500 ? ' (server error, still failing after retries)' : ''}`, status);
    }
  }

  private authorization(repository: string): Record<string, string> {
    const token = this.tokens.get(repository);
    if (token && token.expiresAt > Date.now()) return { Authorization: `Bearer ${token.value}` };
    if (this.basic) return { Authorization: `Basic ${this.basic}` };
    return {};
  }

  private hasToken(): boolean {
    return this.tokens.size > 0;
  }

  private tokenExpired(repository: string): boolean {
    const token = this.tokens.get(repository);
    return token !== undefined && token.expiresAt <= Date.now() + 1000;
  }

  private async credentials(): Promise<Credentials | undefined> {
    this.credentialsLookup ??= this.options.credentials?.() ?? Promise.resolve(undefined);
    return this.credentialsLookup;
  }

  private async authenticate(repository: string, header: string | null): Promise<void> {
    const challenge = parseChallenge(header ?? '');
    if (!challenge) throw new AuthError(`${this.registry}: the registry asked for authentication without a usable WWW-Authenticate header`, 401);
    const creds = await this.credentials();
    if (challenge.scheme === 'basic') {
      if (!creds) throw new AuthError(`${this.registry}: authentication required`, 401, { hint: 'give --creds USER:PASS or log in with podman/skopeo login' });
      this.basic = Buffer.from(`${creds.username}:${creds.password}`).toString('base64');
      return;
    }
    const realm = challenge.params.realm;
    if (!realm) throw new AuthError(`${this.registry}: Bearer challenge without a realm`, 401);
    const url = new URL(realm);
    if (challenge.params.service) url.searchParams.set('service', challenge.params.service);
    url.searchParams.set('scope', challenge.params.scope ?? `repository:${repository}:pull`);
    const headers: Record<string, string> = { 'User-Agent': USER_AGENT };
    if (creds) headers.Authorization = `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
    this.options.debug?.(`token from ${url.origin}${url.pathname}`);
    let res: Response;
    try {
      res = await fetch(url.toString(), { headers, agent: (u: URL) => (u.protocol === 'http:' ? this.httpAgent : this.httpsAgent) });
    } catch (err) {
      throw wrapNetworkError(err, `${this.registry}: token service ${url.origin}`);
    }
    if (res.status === 401 || res.status === 403) {
      throw new AuthError(`${this.registry}: the token service refused ${creds ? 'the credentials' : 'anonymous access'} for ${repository}`, res.status, creds ? {} : { hint: 'give --creds USER:PASS' });
    }
    if (!res.ok) throw new AuthError(`${this.registry}: token service ${url.origin} answered HTTP ${res.status}`, res.status);
    const reply = (await res.json().catch(() => ({}))) as { token?: string; access_token?: string; expires_in?: number };
    const value = reply.token ?? reply.access_token;
    if (!value) throw new AuthError(`${this.registry}: token service ${url.origin} sent no token`, res.status);
    // The spec's default lifetime is 60 s; renew a little early.
    const lifetime = Math.max(reply.expires_in ?? 60, 10) * 1000;
    this.tokens.set(repository, { value, expiresAt: Date.now() + lifetime - 5000 });
  }

  private readonly agentFor = (url: URL): http.Agent => (url.protocol === 'http:' ? this.httpAgent : this.httpsAgent);

  /** https, or with --tls-verify=false whichever of https and http answers (as skopeo does for insecure registries). */
  private async baseUrl(): Promise<string> {
    if (this.scheme) return `${this.scheme}://${this.host}`;
    if (this.options.tlsVerify) {
      this.scheme = 'https';
    } else {
      try {
        await fetch(`https://${this.host}/v2/`, { agent: this.httpsAgent, headers: { 'User-Agent': USER_AGENT } });
        this.scheme = 'https';
      } catch (err) {
        if (isConnectionRefused(err)) throw wrapNetworkError(err, this.registry);
        this.options.debug?.(`${this.host}: no TLS (${describe(err)}); using http`);
        this.scheme = 'http';
      }
    }
    return `${this.scheme}://${this.host}`;
  }

  private backoff(attempt: number): number {
    return (this.options.backoffMs ?? 250) * 2 ** attempt;
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}

interface Challenge {
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

export function retryAfterMs(header: string | null): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(header) - Date.now();
  if (!Number.isFinite(ms) || ms < 0) return undefined;
  return Math.min(ms, 30_000);
}

function guessMediaType(body: Buffer): string {
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { mediaType?: string; schemaVersion?: number; manifests?: unknown };
    if (parsed.mediaType) return parsed.mediaType;
    if (parsed.schemaVersion === 1) return 'application/vnd.docker.distribution.manifest.v1+json';
    return parsed.manifests ? 'application/vnd.oci.image.index.v1+json' : 'application/vnd.oci.image.manifest.v1+json';
  } catch {
    return 'application/octet-stream';
  }
}

const TRANSIENT_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE', 'UND_ERR_SOCKET']);

function isTransient(err: unknown): boolean {
  if (err instanceof DigestMismatchError) return false;
  if (err instanceof RegistryError) return err.status === undefined || RETRYABLE_STATUS.has(err.status);
  if (err instanceof ContainerPartsError) return false;
  const code = (err as { code?: string }).code ?? '';
  const type = (err as { type?: string }).type;
  return TRANSIENT_CODES.has(code) || type === 'system' || /premature close|socket hang up|aborted/i.test(describe(err));
}

function isConnectionRefused(err: unknown): boolean {
  return (err as { code?: string }).code === 'ECONNREFUSED';
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function wrapNetworkError(err: unknown, where: string): ContainerPartsError {
  if (err instanceof ContainerPartsError) return err;
  const code = (err as { code?: string }).code;
  if (code === 'ECONNREFUSED') return new RegistryError(`${where}: connection refused (is the registry running?)`);
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return new RegistryError(`${where}: host not found`);
  if (code && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code)) {
    return new RegistryError(`${where}: TLS certificate not trusted (${code})`, undefined, { hint: 'maybe --tls-verify=false will help?' });
  }
  if (/wrong version number|EPROTO/i.test(describe(err))) {
    return new RegistryError(`${where}: the registry does not speak HTTPS`, undefined, { hint: 'maybe --tls-verify=false will help?' });
  }
  return new RegistryError(`${where}: ${describe(err).split('\n')[0]}`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
