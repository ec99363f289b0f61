/**
 * GET over HTTP/1.1, for the registry client: our own small client on node's sockets rather
 * than node:http, because blob downloads are the hot path of img-fetch and node:http hands a
 * body over in fresh 64 KiB buffers (one read, one allocation and one stream event each). Here
 * the socket reads straight into 1 MiB slabs (`onread`), and body chunks are views of them:
 * no copy, few reads. Responses are framed by Content-Length, chunked encoding or the end of
 * the connection; idle keep-alive connections are reused per origin. Redirects are followed
 * without carrying credentials to another origin (registries send blobs to object storage),
 * and a connection that goes quiet is dropped.
 */
import net from 'node:net';
import type { ConnectionOptions, TLSSocket } from 'node:tls';
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { createRequire } from 'node:module';

/** Response header names in lower case; a repeated header keeps its first value. */
export type HttpHeaders = Record<string, string>;

export interface HttpResponse {
  status: number;
  headers: HttpHeaders;
  /** The body, read once: iterate it, pipe it, or `readBody`. */
  body: Readable;
  url: URL;
}

export interface HttpClientOptions {
  /** Verify TLS certificates (with false, no trust store is even loaded). */
  tlsVerify: boolean;
  /** Drop a connection that sends nothing for this long. */
  idleTimeoutMs?: number;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;
const MAX_HEAD_BYTES = 64 << 10;
const SLAB_BYTES = 1 << 20;
/** A read gets at least this much room; a slab with less left is retired. */
const MIN_READ_BYTES = 64 << 10;

export class HttpClient {
  /** Keep-alive connections waiting for their next request, by origin. */
  private readonly idle = new Map<string, Connection[]>();

  constructor(private readonly options: HttpClientOptions) {}

  async get(url: string | URL, headers: Record<string, string>, signal?: AbortSignal): Promise<HttpResponse> {
    let target = new URL(url);
    let sent = headers;
    for (let redirects = 0; ; redirects++) {
      const res = await this.send(target, sent, signal);
      const location = res.headers.location;
      if (!REDIRECTS.has(res.status) || !location || redirects >= MAX_REDIRECTS) return res;
      await discardBody(res);
      const next = new URL(location, target);
      if (next.origin !== target.origin) {
        // Credentials are for the registry, not for wherever it sends us.
        const { Authorization: _dropped, ...rest } = sent;
        sent = rest;
      }
      target = next;
    }
  }

  private async send(url: URL, headers: Record<string, string>, signal?: AbortSignal): Promise<HttpResponse> {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new HttpProtocolError(`unsupported URL scheme ${url.protocol}`);
    signal?.throwIfAborted();
    const request = formatRequest(url, headers);
    const reused = this.idle.get(url.origin)?.pop();
    if (reused) {
      try {
        return await reused.exchange(request, url, signal);
      } catch (err) {
        // The server may close an idle connection just as we reuse it: try once on a new one.
        if (reused.answered || signal?.aborted) throw err;
      }
    }
    return (await this.connect(url)).exchange(request, url, signal);
  }

  private async connect(url: URL): Promise<Connection> {
    const connection = new Connection(url, this.options, (c) => this.release(url.origin, c));
    await connection.ready;
    return connection;
  }

  private release(origin: string, connection: Connection): void {
    const list = this.idle.get(origin) ?? [];
    list.push(connection);
    this.idle.set(origin, list);
    connection.onClose(() => {
      const at = list.indexOf(connection);
      if (at >= 0) list.splice(at, 1);
    });
  }

  close(): void {
    for (const list of this.idle.values()) for (const connection of list.splice(0)) connection.destroy();
  }
}

/** An HTTP/1.1 connection: one exchange at a time, reading into slabs. */
class Connection {
  readonly ready: Promise<void>;
  /** Whether any byte of a response came back on the current exchange. */
  answered = false;
  private readonly socket: net.Socket | TLSSocket;
  private slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
  private used = 0;
  private parser: ResponseParser | undefined;
  private closed = false;
  private closeListeners: Array<() => void> = [];

  constructor(url: URL, options: HttpClientOptions, private readonly released: (c: Connection) => void) {
    const secure = url.protocol === 'https:';
    const port = Number(url.port || (secure ? 443 : 80));
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    const onread = { buffer: () => this.nextReadBuffer(), callback: (n: number, buf: Uint8Array) => this.received(n, buf) };
    if (secure) {
      const tls = createRequire(import.meta.url)('node:tls') as typeof import('node:tls');
      // tls.connect takes `onread` as net.connect does (node's docs); @types/node 20 omits it.
      const tlsOptions: ConnectionOptions & { onread: typeof onread } = {
        host,
        port,
        onread,
        ...(net.isIP(host) ? {} : { servername: host }),
        // `ca: []` with verification off: node then skips parsing its ~140 root certificates.
        ...(options.tlsVerify ? {} : { rejectUnauthorized: false, ca: [] }),
      };
      this.socket = tls.connect(tlsOptions);
    } else {
      this.socket = net.connect({ host, port, onread });
    }
    this.socket.setNoDelay(true);
    const idle = options.idleTimeoutMs ?? 60_000;
    this.socket.setTimeout(idle, () => this.socket.destroy(Object.assign(new Error(`no data for ${idle / 1000} s`), { code: 'ETIMEDOUT' })));
    this.ready = new Promise((resolve, reject) => {
      this.socket.once(secure ? 'secureConnect' : 'connect', () => resolve());
      this.socket.once('error', reject);
    });
    this.socket.on('error', (err) => this.parser?.fail(err));
    this.socket.on('end', () => this.parser?.connectionEnded());
    this.socket.on('close', () => {
      this.closed = true;
      this.parser?.connectionEnded();
      for (const listener of this.closeListeners.splice(0)) listener();
    });
  }

  /** Sends one request and resolves with the response once its head is in. */
  exchange(request: string, url: URL, signal?: AbortSignal): Promise<HttpResponse> {
    if (this.closed) return Promise.reject(Object.assign(new Error('connection closed'), { code: 'ECONNRESET' }));
    if (signal?.aborted) return Promise.reject(signal.reason);
    this.answered = false;
    this.socket.ref();
    return new Promise((resolve, reject) => {
      const onAbort = () => this.socket.destroy(signal?.reason as Error);
      signal?.addEventListener('abort', onAbort, { once: true });
      const parser = new ResponseParser(url, {
        head: resolve,
        fail: reject,
        resume: () => this.socket.resume(),
        done: (reusable) => {
          signal?.removeEventListener('abort', onAbort);
          this.parser = undefined;
          if (reusable && !this.closed) {
            // An idle connection must not keep the process alive.
            this.socket.unref();
            this.released(this);
          } else {
            this.socket.destroy();
          }
        },
        destroyed: () => {
          signal?.removeEventListener('abort', onAbort);
          this.socket.destroy();
        },
      });
      this.parser = parser;
      this.socket.write(request);
    });
  }

  onClose(listener: () => void): void {
    if (this.closed) listener();
    else this.closeListeners.push(listener);
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Where the next read goes: the free end of the current slab, or a new slab. */
  private nextReadBuffer(): Buffer {
    if (SLAB_BYTES - this.used < MIN_READ_BYTES) {
      this.slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
      this.used = 0;
    }
    return this.slab.subarray(this.used);
  }

  /** Returns false to pause reading while the body's reader is behind. */
  private received(n: number, buf: Uint8Array): boolean {
    const chunk = (buf as Buffer).subarray(0, n);
    this.used += n;
    this.answered = true;
    if (!this.parser) {
      // Bytes nobody asked for: the connection is out of step; never reuse it.
      this.socket.destroy();
      return false;
    }
    return this.parser.feed(chunk);
  }
}

interface ParserEvents {
  head(res: HttpResponse): void;
  fail(err: Error): void;
  /** The body's reader wants more. */
  resume(): void;
  /** The message is complete; `reusable` when the connection may carry another. */
  done(reusable: boolean): void;
  /** The body's reader gave up before the end. */
  destroyed(): void;
}

type BodyFraming = { kind: 'length'; left: number } | { kind: 'chunked' } | { kind: 'close' };

/** Reads one response: the head, then the body as views of the received chunks. */
class ResponseParser {
  private head: Buffer[] = [];
  private headBytes = 0;
  private body: Readable | undefined;
  private framing: BodyFraming | undefined;
  private keepAlive = true;
  /** Chunked encoding: bytes left of the current chunk, or the line being read (size or trailer). */
  private chunkLeft = 0;
  private chunkState: 'size' | 'data' | 'data-end' | 'trailer' = 'size';
  private line = '';
  private finished = false;
  bodyBytes = 0;

  constructor(private readonly url: URL, private readonly events: ParserEvents) {}

  feed(chunk: Buffer): boolean {
    try {
      return this.body ? this.feedBody(chunk) : this.feedHead(chunk);
    } catch (err) {
      this.fail(err as Error);
      this.events.destroyed();
      return false;
    }
  }

  fail(err: Error): void {
    if (this.finished) return;
    this.finished = true;
    if (this.body) this.body.destroy(err);
    else this.events.fail(err);
  }

  private feedHead(chunk: Buffer): boolean {
    this.head.push(chunk);
    this.headBytes += chunk.length;
    const all = this.head.length === 1 ? chunk : Buffer.concat(this.head);
    const end = all.indexOf('\r\n\r\n');
    if (end < 0) {
      if (this.headBytes > MAX_HEAD_BYTES) throw new HttpProtocolError(`response headers larger than ${MAX_HEAD_BYTES} bytes`);
      this.head = [all];
      return true;
    }
    const lines = all.subarray(0, end).toString('latin1').split('\r\n');
    const status = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(lines[0] as string);
    if (!status) throw new HttpProtocolError(`not an HTTP/1.1 response: ${JSON.stringify((lines[0] as string).slice(0, 60))}`);
    const code = Number(status[1]);
    const rest = all.subarray(end + 4);
    this.head = [];
    this.headBytes = 0;
    if (code >= 100 && code < 200) return rest.length ? this.feedHead(rest) : true; // 100 Continue and friends
    const headers: HttpHeaders = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      if (colon <= 0) throw new HttpProtocolError(`malformed response header ${JSON.stringify(line.slice(0, 60))}`);
      const name = line.slice(0, colon).trim().toLowerCase();
      headers[name] ??= line.slice(colon + 1).trim();
    }
    this.keepAlive = !/\bclose\b/i.test(headers.connection ?? '') && (lines[0] as string).startsWith('HTTP/1.1');
    this.framing = framingOf(code, headers);
    this.body = new Readable({
      highWaterMark: 4 << 20,
      read: () => this.events.resume(),
      destroy: (err, callback) => {
        if (!this.finished) {
          this.finished = true;
          this.events.destroyed();
        }
        callback(err);
      },
    });
    // A body can fail before its reader listens (an error in the bytes that came with the head, a
    // reset while the caller is busy): keep the error for the reader rather than crash the process.
    this.body.on('error', () => {});
    this.events.head({ status: code, headers, body: this.body, url: this.url });
    if (this.framing.kind === 'length' && this.framing.left === 0) {
      // Bytes after an empty message: the connection is out of step; never reuse it.
      if (rest.length) this.keepAlive = false;
      return this.complete();
    }
    return rest.length ? this.feedBody(rest) : true;
  }

  private feedBody(chunk: Buffer): boolean {
    const framing = this.framing as BodyFraming;
    if (framing.kind === 'close') return this.push(chunk);
    if (framing.kind === 'length') {
      if (chunk.length > framing.left) {
        // More than the message: the connection is out of step; never reuse it.
        this.keepAlive = false;
        chunk = chunk.subarray(0, framing.left);
      }
      framing.left -= chunk.length;
      const more = this.push(chunk);
      return framing.left === 0 ? this.complete() : more;
    }
    return this.feedChunked(chunk);
  }

  private feedChunked(chunk: Buffer): boolean {
    let more = true;
    let at = 0;
    while (at < chunk.length) {
      if (this.chunkState === 'data') {
        const take = Math.min(this.chunkLeft, chunk.length - at);
        more = this.push(chunk.subarray(at, at + take));
        at += take;
        this.chunkLeft -= take;
        if (this.chunkLeft === 0) this.chunkState = 'data-end';
        continue;
      }
      const newline = chunk.indexOf(10, at);
      const piece = chunk.subarray(at, newline < 0 ? chunk.length : newline + 1).toString('latin1');
      at += piece.length;
      this.line += piece;
      if (this.line.length > 4096) throw new HttpProtocolError('malformed chunked encoding');
      if (newline < 0) break;
      const line = this.line.replace(/\r?\n$/, '');
      this.line = '';
      if (this.chunkState === 'data-end') {
        if (line !== '') throw new HttpProtocolError('malformed chunked encoding');
        this.chunkState = 'size';
      } else if (this.chunkState === 'size') {
        const size = /^([0-9a-fA-F]{1,12})[ \t]*(?:;.*)?$/.exec(line.trim());
        if (!size) throw new HttpProtocolError('malformed chunked encoding');
        this.chunkLeft = parseInt(size[1] as string, 16);
        this.chunkState = this.chunkLeft === 0 ? 'trailer' : 'data';
      } else if (line === '') {
        // The end of the trailer, and of the message.
        if (at < chunk.length) this.keepAlive = false;
        return this.complete();
      }
    }
    return more;
  }

  private push(chunk: Buffer): boolean {
    if (chunk.length === 0) return true;
    this.bodyBytes += chunk.length;
    return (this.body as Readable).push(chunk);
  }

  private complete(): boolean {
    this.finished = true;
    (this.body as Readable).push(null);
    this.events.done(this.keepAlive);
    return true;
  }

  /** The connection ended: the end of a body read to the connection's end, else a break. */
  connectionEnded(): void {
    if (this.finished) return;
    if (this.framing?.kind === 'close') {
      this.keepAlive = false;
      this.complete();
      return;
    }
    const detail = this.bodyBytes > 0 ? `after ${this.bodyBytes} bytes of the body` : 'before the response ended';
    this.fail(Object.assign(new Error(`connection closed ${detail}`), { code: 'ECONNRESET' }));
  }
}

function framingOf(status: number, headers: HttpHeaders): BodyFraming {
  if (status === 204 || status === 304) return { kind: 'length', left: 0 };
  if (/\bchunked\b/i.test(headers['transfer-encoding'] ?? '')) return { kind: 'chunked' };
  const length = headers['content-length'];
  if (length !== undefined) {
    if (!/^\d{1,15}$/.test(length)) throw new HttpProtocolError(`malformed Content-Length ${JSON.stringify(length.slice(0, 30))}`);
    return { kind: 'length', left: Number(length) };
  }
  return { kind: 'close' };
}

function formatRequest(url: URL, headers: Record<string, string>): string {
  const lines = [`GET ${url.pathname}${url.search} HTTP/1.1`, `Host: ${url.host}`];
  for (const [name, value] of Object.entries(headers)) {
    // A value from elsewhere (a token service's token) must not smuggle in a header of its own.
    if (/[\r\n]/.test(name) || /[\r\n]/.test(value)) throw new HttpProtocolError(`header ${JSON.stringify(name)} contains a line break`);
    lines.push(`${name}: ${value}`);
  }
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/** The whole body, refusing one larger than `limit` bytes. */
export async function readBody(res: HttpResponse, limit: number, what: string): Promise<Buffer> {
  const declared = Number(res.headers['content-length'] ?? 0);
  if (declared > limit) {
    res.body.destroy();
    throw new BodyTooLarge(`${what} is ${declared} bytes, more than the ${limit} allowed`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      res.body.destroy();
      throw new BodyTooLarge(`${what} is more than the ${limit} bytes allowed`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Reads and drops a body we do not need, so the connection can be reused. */
export async function discardBody(res: HttpResponse): Promise<void> {
  res.body.resume();
  // `finished` also settles for a body that already failed or closed (waiting for events would hang).
  await finished(res.body).catch(() => {});
}

export class BodyTooLarge extends Error {}

/** A response that is not HTTP/1.1 as we read it. */
export class HttpProtocolError extends Error {
  override name = 'HttpProtocolError';
}
