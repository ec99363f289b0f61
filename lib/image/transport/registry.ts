/**
 * A client for the OCI distribution API (../shared/specs/distribution-spec/spec.md): manifests
 * and blobs, with Basic and anonymous/credentialed Bearer token auth (tokens reused for the
 * repository, renewed on expiry), bounded retries with backoff and Retry-After, and blob
 * downloads that resume with a Range request instead of starting over. Nothing from the
 * registry is trusted: a digest is checked against the spec's grammar before it goes into a
 * URL, content fetched by digest is verified with the digest's algorithm, a manifest is read
 * up to a cap, and one AbortSignal (--timeout) bounds every request and wait.
 */
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BodyTooLarge, discardBody, HttpClient, readBody, type HttpClientOptions, type HttpRequest, type HttpResponse, type RequestBody } from './http.js';
import { errorDetail, statusError } from './registry-errors.js';
import { checkDigest, digestOf, quoted, verifyDigest } from '../../core/digest.js';
import { AuthError, DigestMismatchError, RegistryError, UnsupportedError, UsageError } from '../../core/errors.js';
import { formatBytes, type ItemProgress } from '../../core/progress.js';
import { MAX_MANIFEST_BYTES } from '../manifest.js';
import { isRepositoryName, isTag, registryEndpointHost } from '../reference.js';
import { parseChallenge, requestToken, USER_AGENT, type Challenge, type Credentials, type Token } from './auth.js';
import { describe, isConnectionRefused, isNetworkFailure, RETRYABLE_STATUS, retryAfterMs, sleep, wrapNetworkError } from './retry.js';
import type { BlobWriter } from '../store/blob-writer.js';

export interface RegistryOptions extends Pick<HttpClientOptions, 'secureContext'> {
  tlsVerify: boolean;
  /** Credentials for the registry; a function is called only when the registry asks for them. */
  credentials?: () => Promise<Credentials | undefined>;
  retries?: number;
  /** Base of the exponential backoff, in ms. */
  backoffMs?: number;
  /** Ends every request and wait of this client when it aborts (img-fetch --timeout), with its reason. */
  signal?: AbortSignal;
  /** Time limits of each response: to its head, and without data in its body (http.ts's defaults). */
  headersTimeoutMs?: number;
  idleTimeoutMs?: number;
  debug?: (message: string) => void;
  /** The token scope's actions (default `pull`; a push asks for `pull,push`). */
  actions?: string;
}

export interface FetchedManifest {
  mediaType: string;
  /** The sha256 digest of the body (what the store names it by), whatever digest it was fetched by. */
  digest: string;
  body: Buffer;
}

/** A manifest named by content: its digest (sha256 or sha512), and the size when a descriptor gives it. */
export interface ManifestDigest {
  digest: string;
  size?: number;
}

export interface BlobOptions {
  progress?: ItemProgress;
  /** Ends this download (with the client's signal, whichever aborts first). */
  signal?: AbortSignal;
}

export interface RequestOptions {
  what: string;
  method?: HttpRequest['method'];
  headers?: Record<string, string>;
  body?: RequestBody;
  signal?: AbortSignal;
  /** Statuses that are answers rather than errors (a HEAD's 404: the blob is not there). */
  accept?: number[];
  /** Not retried here (an upload's part: the caller resumes it from where the registry is). */
  once?: boolean;
}

/** One blob download: where it comes from, how messages name it, and what ends it. */
interface BlobTarget {
  repository: string;
  digest: string;
  what: string;
  signal?: AbortSignal;
}

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
    // Not a count (NaN, a list from a repeated flag) would make every retry budget endless.
    const retries = options.retries ?? 0;
    if (!Number.isSafeInteger(retries) || retries < 0) throw new UsageError(`--retries: want a whole number, 0 or more, got ${quoted(options.retries)}`);
    this.http = new HttpClient({ tlsVerify: options.tlsVerify, secureContext: options.secureContext, headersTimeoutMs: options.headersTimeoutMs, idleTimeoutMs: options.idleTimeoutMs });
  }

  get host(): string {
    return registryEndpointHost(this.registry);
  }

  /**
   * GET a manifest by tag, or by digest (a string with a colon, or an index entry's
   * descriptor). A digest is checked before the request and the content against it after,
   * with its algorithm; a descriptor's size too. At most MAX_MANIFEST_BYTES are read.
   */
  async manifest(repository: string, reference: string | ManifestDigest, accept: readonly string[]): Promise<FetchedManifest> {
    const pinned = typeof reference === 'string' ? (reference.includes(':') ? { digest: reference } : undefined) : reference;
    const name = pinned ? checkDigest(pinned.digest, `${this.registry}: manifest of ${repository}`) : (reference as string);
    if (!pinned && !isTag(name)) throw new UnsupportedError(`${this.registry}: ${quoted(name)} is neither a tag nor a digest`);
    const what = `manifest ${repository}${pinned ? '@' : ':'}${name}`;
    const tooLarge = (size?: number) => new UnsupportedError(`${this.registry}: ${what} is ${size === undefined ? '' : `${size} bytes, `}more than the ${formatBytes(MAX_MANIFEST_BYTES)} a manifest may have`);
    if (pinned?.size !== undefined && pinned.size > MAX_MANIFEST_BYTES) throw tooLarge(pinned.size);
    const res = await this.request(repository, `manifests/${name}`, { what, headers: { Accept: accept.join(', ') } });
    let body: Buffer;
    try {
      body = await readBody(res, MAX_MANIFEST_BYTES, what);
    } catch (err) {
      if (err instanceof BodyTooLarge) throw tooLarge(err.declared);
      throw wrapNetworkError(this.options.signal?.aborted ? this.options.signal.reason : err, `${this.registry}: ${what}`);
    }
    if (pinned) {
      verifyDigest(body, pinned.digest, `${this.registry}: ${what}`);
      if (pinned.size !== undefined && body.length !== pinned.size) throw new DigestMismatchError(`${this.registry}: ${what}: ${body.length} bytes, the index says ${pinned.size}`);
    }
    const mediaType = (res.headers['content-type'] ?? '').split(';')[0]?.trim() || guessMediaType(body);
    return { mediaType, digest: digestOf(body), body };
  }

  /**
   * Downloads a blob into `writer` (which verifies it before anything is kept). When the
   * connection breaks in the middle of the body, the next request asks for the rest with a
   * Range header and appends; a server that ignores Range (200) or refuses it (416) gets a
   * fresh start, and a 206 that starts elsewhere is an error. A complete response of the wrong
   * size is a size mismatch at once. The retry budget starts again whenever a try got further.
   */
  async blob(repository: string, digest: string, writer: BlobWriter, options: BlobOptions = {}): Promise<void> {
    const what = `blob ${checkDigest(digest, `${this.registry}: blob of ${repository}`)}`;
    const signal = anyOf(this.options.signal, options.signal);
    const target: BlobTarget = { repository, digest, what, signal };
    const retries = this.options.retries ?? 4;
    let furthest = 0;
    for (let breaks = 0; ; ) {
      const res = await this.blobResponse(target, writer, options.progress);
      if (!res) continue;
      try {
        await pipeline(res.body, blobSink(writer, options.progress), { signal });
        const size = writer.expected.size;
        if (size !== undefined && writer.written < size) {
          if (res.delimited) throw new DigestMismatchError(`${this.registry}: ${what}: the registry sent ${writer.written} bytes, the descriptor says ${size}`);
          throw new TransferBroken(`connection closed after ${writer.written} of ${size} bytes`);
        }
        return;
      } catch (err) {
        if (signal?.aborted) throw signal.reason;
        if (writer.written > furthest) [furthest, breaks] = [writer.written, 0];
        if (!isBrokenTransfer(err) || breaks >= retries) throw wrapNetworkError(err, `${this.registry}: ${what}`);
        options.progress?.note(`connection broke after ${writer.written} bytes (${describe(err)}); retrying`);
        this.options.debug?.(`${what}: ${describe(err)}; retrying`);
        await sleep(this.backoff(breaks++), signal);
      }
    }
  }

  /** One GET of a blob, from where `writer` is; undefined when it must be asked again from the start. */
  private async blobResponse(target: BlobTarget, writer: BlobWriter, progress?: ItemProgress): Promise<HttpResponse | undefined> {
    const from = writer.written;
    let res: HttpResponse;
    try {
      res = await this.request(target.repository, `blobs/${target.digest}`, { what: target.what, signal: target.signal, headers: from > 0 ? { Range: `bytes=${from}-` } : {} });
    } catch (err) {
      if (!(from > 0 && err instanceof RegistryError && err.status === 416)) throw err;
      progress?.note(`the registry refused the Range request (416); starting over`);
      await restart(writer, progress);
      return undefined;
    }
    if (res.status === 206) {
      const range = /^bytes (\d+)-\d+\/(?:\d+|\*)$/.exec(res.headers['content-range'] ?? '');
      if (!range || Number(range[1]) !== from) {
        await discardBody(res);
        throw new RegistryError(`${this.registry}: ${target.what}: asked for the bytes from ${from}, got ${quoted(res.headers['content-range'] ?? 'no Content-Range')}`, 206);
      }
      if (from > 0) progress?.note(`resuming at byte ${from}`);
    } else if (from > 0) {
      progress?.note(`the registry ignored the Range request; starting over`);
      await restart(writer, progress);
    }
    const length = res.headers['content-length'];
    const size = writer.expected.size;
    if (size !== undefined && length !== undefined && /^\d+$/.test(length) && writer.written + Number(length) !== size) {
      await discardBody(res);
      throw new DigestMismatchError(`${this.registry}: ${target.what}: the registry sends ${writer.written + Number(length)} bytes, the descriptor says ${size}`);
    }
    return res;
  }

  /**
   * One API request (`/v2/REPOSITORY/PATH`) with auth and retries. A 401 is answered once per
   * request with the scheme the registry names (also when it refuses a token we thought valid:
   * expired, revoked, clock skew); 404, a second 401, 403 and other 4xx are errors at once;
   * 408, 429 and the 5xx that mean "not now" are retried with backoff, or after as long as
   * Retry-After says. An error body is read only up to a small cap. `path` is under
   * /v2/REPOSITORY/, or a URL the registry gave (an upload's Location).
   */
  async request(repository: string, path: string, options: RequestOptions): Promise<HttpResponse> {
    if (!isRepositoryName(repository)) throw new UnsupportedError(`${this.registry}: invalid repository name ${quoted(repository)}`);
    const signal = anyOf(options.signal, this.options.signal);
    const retries = options.once ? 0 : (this.options.retries ?? 4);
    const method = options.method ?? 'GET';
    let authenticated = false;
    for (let attempt = 0; ; ) {
      let res: HttpResponse;
      try {
        const base = await this.baseUrl();
        // An upload's Location is a URL of its own; credentials go to the registry's origin only.
        const url = /^https?:/.test(path) ? path : `${base}/v2/${repository}/${path}`;
        const auth = new URL(url).origin === new URL(base).origin ? await this.authorization(repository) : {};
        const headers = { 'User-Agent': USER_AGENT, ...options.headers, ...auth };
        this.options.debug?.(`${method} ${url}`);
        res = await this.http.request(url, { method, headers, body: options.body, signal });
      } catch (err) {
        if (signal?.aborted) throw signal.reason;
        if (!isNetworkFailure(err) || attempt >= retries) throw wrapNetworkError(err, `${this.registry}: ${options.what}`);
        this.options.debug?.(`${options.what}: ${describe(err)}; retrying`);
        await sleep(this.backoff(attempt++), signal);
        continue;
      }
      if ((res.status >= 200 && res.status < 300) || options.accept?.includes(res.status)) return res;
      // A push's refusals say why in a distribution-spec error body; a pull's are discarded as before.
      const body = method === 'GET' || method === 'HEAD' ? await discardBody(res) : await readBody(res, 64 << 10, options.what).catch(() => undefined);
      if (res.status === 401 && !authenticated) {
        authenticated = true;
        this.tokens.delete(repository);
        await this.authenticate(repository, headerValue(res.headers['www-authenticate']));
        continue;
      }
      if (RETRYABLE_STATUS.has(res.status) && attempt < retries) {
        const wait = retryAfterMs(headerValue(res.headers['retry-after'])) ?? this.backoff(attempt);
        this.options.debug?.(`${options.what}: HTTP ${res.status}; retrying in ${wait} ms`);
        await sleep(wait, signal);
        attempt++;
        continue;
      }
      throw statusError({ registry: this.registry, status: res.status, what: options.what, auth: this.bearer ? 'bearer' : this.basic ? 'basic' : undefined, detail: detailOf(body) });
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

  private fetchToken(repository: string, challenge: Challenge): Promise<Token> {
    return requestToken({ http: this.http, registry: this.registry, repository, actions: this.options.actions, challenge, credentials: () => this.credentials(), signal: this.options.signal, debug: this.options.debug });
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
    if (!URL.canParse(challenge.params.realm)) throw new AuthError(`${this.registry}: the Bearer challenge's realm ${quoted(challenge.params.realm)} is not a URL`, 401);
    this.bearer = challenge;
    const token = this.fetchToken(repository, challenge);
    this.tokens.set(repository, token);
    await token;
  }

  /** https, or with --tls-verify=false whichever of https and http answers (as skopeo does for insecure registries). */
  private async baseUrl(): Promise<string> {
    this.scheme ??= this.probeScheme();
    return `${await this.scheme}://${this.host}`;
  }

  private async probeScheme(): Promise<'https' | 'http'> {
    if (this.options.tlsVerify) return 'https';
    try {
      await discardBody(await this.http.get(`https://${this.host}/v2/`, { 'User-Agent': USER_AGENT }, this.options.signal));
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

function detailOf(body: Buffer | void | undefined): string | undefined {
  return body ? errorDetail(body) : undefined;
}

function headerValue(value: string | string[] | undefined): string | null {
  return (Array.isArray(value) ? value[0] : value) ?? null;
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

/** A body that stopped coming: resume it. Our own errors (a digest mismatch, a full disk) are not. */
function isBrokenTransfer(err: unknown): boolean {
  return err instanceof TransferBroken || isNetworkFailure(err);
}

/** Throws away what a download has written, to start it again from byte 0. */
async function restart(writer: BlobWriter, progress?: ItemProgress): Promise<void> {
  progress?.add(-writer.written);
  await writer.restart();
}

/**
 * One signal that aborts when either does. AbortSignal.any puts no listener on its sources, so
 * the many requests of a pull do not pile listeners onto one signal (MaxListenersExceededWarning).
 */
function anyOf(...signals: Array<AbortSignal | undefined>): AbortSignal | undefined {
  const given = signals.filter((s): s is AbortSignal => s !== undefined);
  return given.length ? AbortSignal.any(given) : undefined;
}

