/**
 * One blob into a registry's repository, as distribution-spec says: a HEAD says whether it is
 * there; a blob another repository of the registry has is mounted (`?mount=&from=`; a mount the
 * registry refuses opens an upload session all the same, so a wrong guess costs nothing); else an
 * upload session (POST) takes it in one PUT, or, when it is larger than a chunk (or the
 * registry refuses it whole, 413), in PATCH chunks of at least OCI-Chunk-Min-Length. After each
 * chunk the session's URL is recorded in the store, so that a push killed mid-blob asks the
 * session where it is (GET, Range) on the next run and sends only the rest. Every Location is
 * resolved against the request that got it. A failed chunk is resumed the same way.
 */
import { digestHex } from '../../core/digest.js';
import { AuthError, RegistryError } from '../../core/errors.js';
import type { HttpResponse, RequestBody } from './http.js';
import { discardBody } from './http.js';
import { describe, isNetworkFailure, RETRYABLE_STATUS, sleep } from './retry.js';
import type { Registry } from './registry.js';
import type { UploadRecords } from '../store/uploads.js';
import type { BlobCopyOptions, BlobOutcome, Image } from '../image.js';
import type { Descriptor } from '../model.js';

/** A chunk of a large blob (and the size up to which a blob goes in one PUT). */
export const DEFAULT_CHUNK_BYTES = 32 << 20;

export interface UploadTarget {
  registry: Registry;
  repository: string;
  /** The repository of the same registry to mount a blob from (where the store says it came from), if any. */
  mountFrom?: (digest: string) => Promise<string | undefined>;
  records?: UploadRecords;
  chunkBytes?: number;
  retries?: number;
  debug?: (message: string) => void;
}

interface Session {
  location: string;
  /** Bytes the registry has. */
  offset: number;
  /** The registry's OCI-Chunk-Min-Length, when it sent one. */
  minChunk?: number;
}

type Sent = Exclude<BlobOutcome, 'skipped'>;

/** Whether the repository has the blob (HEAD; a size that differs from the descriptor's is no). */
export async function blobExists(target: UploadTarget, digest: string, size?: number): Promise<boolean> {
  const res = await target.registry.request(target.repository, `blobs/${digest}`, { what: `blob ${digest}`, method: 'HEAD', accept: [404] });
  await discardBody(res);
  if (res.status !== 200) return false;
  const length = res.headers['content-length'];
  return length === undefined || size === undefined || Number(length) === size;
}

/** Uploads a blob the repository does not have; retries a broken try from where the registry is. */
export async function uploadBlob(target: UploadTarget, image: Image, blob: Descriptor, options: BlobCopyOptions): Promise<Sent> {
  const retries = target.retries ?? 4;
  const cursor = new BlobCursor(image, blob, options);
  for (let attempt = 0; ; attempt++) {
    try {
      const outcome = await uploadOnce(target, blob, cursor, options);
      await target.records?.remove(blob.digest);
      return outcome;
    } catch (err) {
      if (options.signal.aborted || attempt >= retries || !isWorthRetrying(err)) throw err;
      options.progress.note(`upload broke (${describe(err)}); retrying`);
      await sleep(250 * 2 ** attempt, options.signal);
    }
  }
}

async function uploadOnce(target: UploadTarget, blob: Descriptor, cursor: BlobCursor, options: BlobCopyOptions): Promise<Sent> {
  const resumed = await resumeSession(target, blob, options);
  if (resumed) {
    options.progress.note(`resuming the upload at byte ${resumed.offset} of ${blob.size}`);
    await sendChunks(target, blob, cursor, resumed);
    return 'resumed';
  }
  const started = await startSession(target, blob, options.signal);
  if (started === 'mounted') return 'mounted';
  // A blob larger than a chunk goes in chunks on the session just opened (a second POST would
  // leave this one behind in the registry, and cost a round trip).
  if (blob.size > chunkSize(target, started)) {
    await sendChunks(target, blob, cursor, started);
    return 'sent';
  }
  if (await putWhole(target, blob, cursor, started)) return 'sent';
  options.progress.note('the registry refused the blob in one request (413); sending it in chunks');
  await sendChunks(target, blob, cursor, (await startSession(target, blob, options.signal, false)) as Session);
  return 'sent';
}

/** The recorded session of an interrupted push, asked where it is; undefined when there is none to go on with. */
async function resumeSession(target: UploadTarget, blob: Descriptor, options: BlobCopyOptions): Promise<Session | undefined> {
  const record = await target.records?.read(blob.digest);
  if (!record) return undefined;
  const res = await target.registry.request(target.repository, record.location, { what: `upload of blob ${blob.digest}`, accept: [400, 404, 416], signal: options.signal, once: true }).catch(() => undefined);
  if (res) await discardBody(res);
  const range = /^(?:bytes=)?0-(\d+)$/.exec(res?.headers.range ?? '');
  if (!res || res.status !== 204 || !range) {
    options.progress.note('the registry no longer has the interrupted upload; sending the blob again');
    await target.records?.remove(blob.digest);
    return undefined;
  }
  // "0-0" is what distribution says of an empty upload as well as of a 1-byte one: start at 0 then.
  const offset = Number(range[1]) === 0 ? 0 : Number(range[1]) + 1;
  if (offset > blob.size) return undefined;
  return { location: locationOf(res, record.location), offset, minChunk: minChunkOf(res) };
}

/** POST: a mount when the blob may be in `mountFrom` (201), else a new session (202). */
async function startSession(target: UploadTarget, blob: Descriptor, signal: AbortSignal, mount = true): Promise<Session | 'mounted'> {
  const candidate = mount ? await target.mountFrom?.(blob.digest) : undefined;
  const from = candidate !== target.repository ? candidate : undefined;
  const query = from ? `?mount=${encodeURIComponent(blob.digest)}&from=${encodeURIComponent(from)}` : '';
  const res = await target.registry.request(target.repository, `blobs/uploads/${query}`, { what: `upload of blob ${blob.digest}`, method: 'POST', signal }).catch((err) => {
    // A token for this repository does not cover pulling from the other one: upload instead.
    if (from && err instanceof AuthError) return undefined;
    throw err;
  });
  if (!res) return startSession(target, blob, signal, false);
  await discardBody(res);
  if (res.status === 201 && from) {
    target.debug?.(`blob ${blob.digest} mounted from ${from}`);
    return 'mounted';
  }
  if (res.status !== 202 || !res.headers.location) throw new RegistryError(`${target.registry.registry}: upload of blob ${blob.digest}: HTTP ${res.status} without an upload location`, res.status);
  return { location: locationOf(res), offset: 0, minChunk: minChunkOf(res) };
}

/** The blob in the PUT that closes the session; false when the registry wants it in chunks (413). */
async function putWhole(target: UploadTarget, blob: Descriptor, cursor: BlobCursor, session: Session): Promise<boolean> {
  const res = await target.registry.request(target.repository, withDigest(session.location, blob.digest), {
    what: `blob ${blob.digest}`,
    method: 'PUT',
    headers: { 'Content-Type': 'application/octet-stream' },
    body: cursor.body(0, blob.size),
    accept: [413],
    signal: cursor.signal,
    once: true,
  });
  await discardBody(res);
  if (res.status === 413) return false;
  checkDigestHeader(target, res, blob);
  return true;
}

/** PATCH chunks from the session's offset, each recorded once accepted, then the closing PUT. */
async function sendChunks(target: UploadTarget, blob: Descriptor, cursor: BlobCursor, session: Session): Promise<void> {
  const chunk = chunkSize(target, session);
  let { location, offset } = session;
  await target.records?.write(blob.digest, { location, offset });
  while (offset < blob.size) {
    const end = Math.min(blob.size, offset + chunk);
    const res = await target.registry.request(target.repository, location, {
      what: `blob ${blob.digest} (bytes ${offset}-${end - 1})`,
      method: 'PATCH',
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${offset}-${end - 1}` },
      body: cursor.body(offset, end),
      signal: cursor.signal,
      once: true,
    });
    await discardBody(res);
    location = locationOf(res, location);
    offset = end;
    await target.records?.write(blob.digest, { location, offset });
  }
  const res = await target.registry.request(target.repository, withDigest(location, blob.digest), { what: `blob ${blob.digest}`, method: 'PUT', signal: cursor.signal, once: true });
  await discardBody(res);
  checkDigestHeader(target, res, blob);
}

function chunkSize(target: UploadTarget, session: Session): number {
  return Math.max(target.chunkBytes ?? DEFAULT_CHUNK_BYTES, session.minChunk ?? 0);
}

/** A Location header, relative or not, resolved against the request that got it. */
function locationOf(res: HttpResponse, fallback?: string): string {
  const location = res.headers.location;
  if (!location) {
    if (fallback) return fallback;
    throw new RegistryError(`${res.url.host}: the registry sent no Location for the upload`);
  }
  const url = new URL(location, res.url);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new RegistryError(`${res.url.host}: upload Location ${JSON.stringify(location.slice(0, 80))} is not an http(s) URL`);
  return url.href;
}

function minChunkOf(res: HttpResponse): number | undefined {
  const value = res.headers['oci-chunk-min-length'];
  return value && /^\d{1,12}$/.test(value) ? Number(value) : undefined;
}

function withDigest(location: string, digest: string): string {
  const url = new URL(location);
  url.searchParams.set('digest', digest);
  return url.href;
}

function checkDigestHeader(target: UploadTarget, res: HttpResponse, blob: Descriptor): void {
  const said = res.headers['docker-content-digest'];
  if (said && said !== blob.digest) throw new RegistryError(`${target.registry.registry}: blob ${blob.digest} was stored as ${said}`);
}

/** A 429 or 5xx, or a connection that broke (kept as the cause of the one-line error). */
function isWorthRetrying(err: unknown): boolean {
  if (err instanceof RegistryError && err.status !== undefined) return RETRYABLE_STATUS.has(err.status);
  const cause = err instanceof RegistryError ? err.cause : err;
  return cause !== undefined && isNetworkFailure(cause);
}

/**
 * The blob's bytes as request bodies, from any offset: one reading goes on from chunk to
 * chunk; a body that starts elsewhere (a retry, a resumed session) opens the blob again and
 * skips to its start. Progress counts what was sent, as of the last body's start.
 */
class BlobCursor {
  private iterator: AsyncIterator<Buffer> | undefined;
  private position = 0;
  private pending: Buffer | undefined;
  private reported = 0;

  constructor(private readonly image: Image, private readonly blob: Descriptor, private readonly options: BlobCopyOptions) {}

  get signal(): AbortSignal {
    return this.options.signal;
  }

  body(from: number, to: number): RequestBody {
    return { length: to - from, open: () => this.read(from, to) };
  }

  private async *read(from: number, to: number): AsyncGenerator<Buffer> {
    if (this.iterator === undefined || this.position !== from) await this.seek(from);
    this.options.progress.add(from - this.reported);
    this.reported = from;
    while (this.position < to) {
      const chunk = await this.next();
      const take = Math.min(chunk.length, to - this.position);
      if (take < chunk.length) this.pending = chunk.subarray(take);
      this.position += take;
      this.reported += take;
      this.options.progress.add(take);
      yield chunk.subarray(0, take);
    }
  }

  private async seek(offset: number): Promise<void> {
    await this.iterator?.return?.();
    this.iterator = (await this.image.openBlob(this.blob, this.options.signal))[Symbol.asyncIterator]();
    this.pending = undefined;
    this.position = 0;
    while (this.position < offset) {
      const chunk = await this.next();
      const take = Math.min(chunk.length, offset - this.position);
      if (take < chunk.length) this.pending = chunk.subarray(take);
      this.position += take;
    }
  }

  private async next(): Promise<Buffer> {
    if (this.pending) {
      const chunk = this.pending;
      this.pending = undefined;
      return chunk;
    }
    const step = await (this.iterator as AsyncIterator<Buffer>).next();
    if (step.done) throw new RegistryError(`blob ${digestHex(this.blob.digest).slice(0, 12)} ended at byte ${this.position} of ${this.blob.size}`);
    return step.value;
  }
}
