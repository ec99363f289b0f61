/**
 * A client for the OCI distribution API (../shared/specs/distribution-spec/spec.md): manifests
 * and blobs, with Basic and anonymous/credentialed Bearer token auth (tokens reused for the
 * repository, renewed on expiry), bounded retries with backoff and Retry-After, and blob
 * downloads that resume with a Range request instead of starting over.
 */
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BodyTooLarge, discardBody, HttpClient, readBody, type HttpResponse } from './http.js';
import { digestOf } from '../../core/digest.js';
import { AuthError, ContainerPartsError, DigestMismatchError, NotFoundError, RegistryError, UnsupportedError } from '../../core/errors.js';
import type { ItemProgress } from '../../core/progress.js';
import { registryEndpointHost } from '../reference.js';
import type { Credentials } from './auth.js';
import type { BlobWriter } from '../store/blob-writer.js';

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
  /** When to stop using it: a little before the lifetime the issuer stated. */
  renewAt: number;
}

const USER_AGENT = 'container-parts';
const RETRYABLE_STATUS = new Set([408, 429, 500, 502, 503, 504]);
/** Manifests are small; a bigger one is refused rather than read into memory (containerd's limit). */
const MAX_MANIFEST_BYTES = 4 << 20;

export class Registry {
  private scheme: Promise<'https' | 'http'> | undefined;
  /** Bearer tokens by repository, reused until they are due for renewal. */
  private readonly tokens = new Map<string, Promise<Token>>();
  /** The registry's Bearer challenge (realm, service), kept to renew tokens without a 401 first. */
  private bearer: Challenge | undefined;
  private basic: string | undefined;
  private credentialsLookup: Promise<Credentials | undefined> | undefined;
  private readonly http: HttpClient;

  constructor(readonly registry: string, private readonly options: RegistryOptions) {
    this.http = new HttpClient({ tlsVerify: options.tlsVerify });
  }

  get host(): string {
    return registryEndpointHost(this.registry);
  }

  /** GET a manifest by tag or digest; a digest reference is checked against the content. */
  async manifest(repository: string, reference: string, accept: readonly string[]): Promise<FetchedManifest> {
    const what = `manifest ${repository}${reference.startsWith('sha256:') ? '@' : ':'}${reference}`;
    const res = await this.request(repository, `/v2/${repository}/manifests/${reference}`, { Accept: accept.join(', ') }, what);
    let body: Buffer;
    try {
      body = await readBody(res, MAX_MANIFEST_BYTES, what);
    } catch (err) {
      if (err instanceof BodyTooLarge) throw new UnsupportedError(`${this.registry}: ${err.message}`);
      throw wrapNetworkError(err, `${this.registry}: ${what}`);
    }
    const digest = digestOf(body);
    if (reference.startsWith('sha256:') && digest !== reference) {
      throw new DigestMismatchError(`${this.registry}: ${what}: content has digest ${digest}`);
    }
    const mediaType = (res.headers['content-type'] ?? '').split(';')[0]?.trim() || guessMediaType(body);
    return { mediaType, digest, body };
  }

  /**
   * Downloads a blob into `writer`. When the connection breaks in the middle of the body, the
   * next request asks for the rest with a Range header (the spec's registries honour it) and
   * appends, instead of starting over; a server that ignores Range gets a fresh start.
   */
  async blob(repository: string, digest: string, writer: BlobWriter, progress?: ItemProgress, signal?: AbortSignal): Promise<void> {
    const retries = this.options.retries ?? 4;
    const what = `blob ${digest}`;
    for (let breaks = 0; ; ) {
      const resumeFrom = writer.written;
      const headers: Record<string, string> = resumeFrom > 0 ? { Range: `bytes=${resumeFrom}-` } : {};
      const res = await this.request(repository, `/v2/${repository}/blobs/${digest}`, headers, what, signal);
      if (resumeFrom > 0 && res.status !== 206) {
        progress?.note(`the registry ignored the Range request; starting over`);
        progress?.add(-writer.written);
        await writer.restart();
      } else if (resumeFrom > 0) {
        progress?.note(`resuming at byte ${resumeFrom}`);
      }
      try {
        await pipeline(res.body, blobSink(writer, progress), { signal });
        if (writer.expected.size !== undefined && writer.written < writer.expected.size) {
          throw new TransferBroken(`connection closed after ${writer.written} of ${writer.expected.size} bytes`);
        }
        return;
      } catch (err) {
        if (signal?.aborted) throw err;
        if (!isBrokenTransfer(err) || breaks >= retries) throw wrapNetworkError(err, `${this.registry}: ${what}`);
        progress?.note(`connection broke after ${writer.written} bytes (${describe(err)}); retrying`);
        this.options.debug?.(`${what}: ${describe(err)}; retrying`);
        await sleep(this.backoff(breaks++));
      }
    }
  }

  /**
   * One API request with auth and retries. A 401 is answered once per request with the scheme
   * the registry names (also when it refuses a token we thought valid: expired, revoked, clock
   * skew); 404, a second 401, 403 and other 4xx are errors at once; 429 and 5xx are retried
   * with backoff, or after as long as Retry-After says.
   */
  private async request(repository: string, path: string, extraHeaders: Record<string, string>, what: string, signal?: AbortSignal): Promise<HttpResponse> {
    const retries = this.options.retries ?? 4;
    let authenticated = false;
    for (let attempt = 0; ; ) {
      let res: HttpResponse;
      try {
        const url = `${await this.baseUrl()}${path}`;
        const headers = { 'User-Agent': USER_AGENT, ...extraHeaders, ...(await this.authorization(repository)) };
        this.options.debug?.(`GET ${url}`);
        res = await this.http.get(url, headers, signal);
      } catch (err) {
        if (signal?.aborted || !isNetworkFailure(err) || attempt >= retries) throw wrapNetworkError(err, `${this.registry}: ${what}`);
        this.options.debug?.(`${what}: ${describe(err)}; retrying`);
        await sleep(this.backoff(attempt++));
        continue;
      }
      if (res.status >= 200 && res.status < 300) return res;
      await discardBody(res);
      if (res.status === 401 && !authenticated) {
        authenticated = true;
        this.tokens.delete(repository);
        await this.authenticate(repository, headerValue(res.headers['www-authenticate']));
        continue;
      }
      if (RETRYABLE_STATUS.has(res.status) && attempt < retries) {
        const wait = retryAfterMs(headerValue(res.headers['retry-after'])) ?? this.backoff(attempt);
        this.options.debug?.(`${what}: HTTP ${res.status}; retrying in ${wait} ms`);
        await sleep(wait);
        attempt++;
        continue;
      }
      throw this.statusError(res.status, what);
    }
  }

  private statusError(status: number, what: string): ContainerPartsError {
    const where = this.registry;
    switch (status) {
      case 404:
        return new NotFoundError(`${where}: ${what} not found`);
      case 401:
        return new AuthError(`${where}: authentication required for ${what}`, status, {
          hint: this.bearer ? 'the registry refused the token from its token service' : this.basic ? 'the credentials were refused' : 'give --creds USER:PASS or log in with podman/skopeo login',
        });
      case 403:
        return new AuthError(`${where}: access to ${what} denied`, status);
      case 429:
        return new RegistryError(`${where}: too many requests for ${what} (still 429 after retries)`, status);
      default:
        return new RegistryError(`${where}: ${what}: HTTP ${status}${status >= 500 ? ' (server error, still failing after retries)' : ''}`, status);
    }
  }

  /** The Authorization header: a Bearer token for the repository (renewed when due), or Basic. */
  private async authorization(repository: string): Promise<Record<string, string>> {
    if (this.bearer) {
      const cached = this.tokens.get(repository);
      let token = cached && (await cached.catch(() => undefined));
      if (!token || token.renewAt <= Date.now()) {
        // Concurrent requests share one renewal: whoever finds the old token first replaces it.
        if (this.tokens.get(repository) === cached) this.tokens.set(repository, this.fetchToken(repository, this.bearer));
        token = await (this.tokens.get(repository) as Promise<Token>);
      }
      return { Authorization: `Bearer ${token.value}` };
    }
    if (this.basic) return { Authorization: `Basic ${this.basic}` };
    return {};
  }

  private async credentials(): Promise<Credentials | undefined> {
    this.credentialsLookup ??= this.options.credentials?.() ?? Promise.resolve(undefined);
    return this.credentialsLookup;
  }

  private async authenticate(repository: string, header: string | null): Promise<void> {
    const challenge = parseChallenge(header ?? '');
    if (!challenge) throw new AuthError(`${this.registry}: the registry asked for authentication without a usable WWW-Authenticate header`, 401);
    if (challenge.scheme === 'basic') {
      const creds = await this.credentials();
      if (!creds) throw new AuthError(`${this.registry}: authentication required`, 401, { hint: 'give --creds USER:PASS or log in with podman/skopeo login' });
      this.basic = Buffer.from(`${creds.username}:${creds.password}`).toString('base64');
      return;
    }
    if (!challenge.params.realm) throw new AuthError(`${this.registry}: Bearer challenge without a realm`, 401);
    this.bearer = challenge;
    const token = this.fetchToken(repository, challenge);
    this.tokens.set(repository, token);
    await token;
  }

  /** Asks the token service named in the challenge for a pull token (distribution's token spec). */
  private async fetchToken(repository: string, challenge: Challenge): Promise<Token> {
    const url = new URL(challenge.params.realm as string);
    if (challenge.params.service) url.searchParams.set('service', challenge.params.service);
    url.searchParams.set('scope', `repository:${repository}:pull`);
    const creds = await this.credentials();
    const headers: Record<string, string> = { 'User-Agent': USER_AGENT };
    if (creds) headers.Authorization = `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
    this.options.debug?.(`token for ${repository} from ${url.origin}${url.pathname}`);
    let res: HttpResponse;
    let body: Buffer;
    try {
      res = await this.http.get(url, headers);
      body = await readBody(res, 1 << 20, `token service ${url.origin}`);
    } catch (err) {
      throw wrapNetworkError(err, `${this.registry}: token service ${url.origin}`);
    }
    if (res.status === 401 || res.status === 403) {
      throw new AuthError(
        `${this.registry}: the token service refused ${creds ? `the credentials of ${creds.username}` : 'anonymous access'} for ${repository}`,
        res.status,
        creds ? {} : { hint: 'give --creds USER:PASS or log in with podman/skopeo login' },
      );
    }
    if (res.status !== 200) throw new AuthError(`${this.registry}: token service ${url.origin} answered HTTP ${res.status}`, res.status);
    const reply = parseJson(body) as { token?: string; access_token?: string; expires_in?: number };
    const value = reply.token ?? reply.access_token;
    if (!value) throw new AuthError(`${this.registry}: token service ${url.origin} sent no token`, res.status);
    // The spec's default lifetime is 60 s. Renew before the end, by 5 s or a quarter of a short lifetime.
    const lifetime = (reply.expires_in && reply.expires_in > 0 ? reply.expires_in : 60) * 1000;
    return { value, renewAt: Date.now() + lifetime - Math.min(5000, lifetime / 4) };
  }

  /** https, or with --tls-verify=false whichever of https and http answers (as skopeo does for insecure registries). */
  private async baseUrl(): Promise<string> {
    this.scheme ??= this.probeScheme();
    return `${await this.scheme}://${this.host}`;
  }

  private async probeScheme(): Promise<'https' | 'http'> {
    if (this.options.tlsVerify) return 'https';
    try {
      await discardBody(await this.http.get(`https://${this.host}/v2/`, { 'User-Agent': USER_AGENT }));
      return 'https';
    } catch (err) {
      if (isConnectionRefused(err)) {
        this.scheme = undefined;
        throw err;
      }
      this.options.debug?.(`${this.host}: no TLS (${describe(err)}); using http`);
      return 'http';
    }
  }

  private backoff(attempt: number): number {
    return (this.options.backoffMs ?? 250) * 2 ** attempt;
  }

  close(): void {
    this.http.close();
  }
}

function headerValue(value: string | string[] | undefined): string | null {
  return (Array.isArray(value) ? value[0] : value) ?? null;
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return {};
  }
}

/** A Writable in front of a BlobWriter: a callback per chunk rather than a promise (downloads are the hot path). */
function blobSink(writer: BlobWriter, progress?: ItemProgress): Writable {
  return new Writable({
    highWaterMark: 1 << 20,
    write(chunk: Buffer, _encoding, callback) {
      try {
        progress?.add(chunk.length);
        if (writer.append(chunk)) callback();
        else writer.drain().then(() => callback(), callback);
      } catch (err) {
        callback(err as Error);
      }
    },
  });
}

/** The body of a response ended before its end. */
class TransferBroken extends Error {}

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

const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ECONNABORTED', 'EHOSTUNREACH', 'ENETUNREACH', 'ERR_STREAM_PREMATURE_CLOSE', 'UND_ERR_SOCKET']);

/** A request that did not get an answer: worth another try. */
function isNetworkFailure(err: unknown): boolean {
  if (err instanceof ContainerPartsError) return false;
  const code = (err as { code?: string }).code ?? '';
  return NETWORK_CODES.has(code) || /premature close|socket hang up|aborted/i.test(describe(err));
}

/** A body that stopped coming: resume it. Our own errors (a digest mismatch, a full disk) are not. */
function isBrokenTransfer(err: unknown): boolean {
  return err instanceof TransferBroken || isNetworkFailure(err);
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
