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
import type { ConnectionOptions, SecureContext, TLSSocket } from 'node:tls';
import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { createRequire } from 'node:module';
import { HttpProtocolError, ResponseParser } from './http-parser.js';

export { HttpProtocolError } from './http-parser.js';

/** Response header names in lower case; a repeated header keeps its first value. */
export type HttpHeaders = Record<string, string>;

export interface HttpResponse {
  status: number;
  headers: HttpHeaders;
  /** The body, read once: iterate it, pipe it, or `readBody`. */
  body: Readable;
  url: URL;
  /** The body's end is marked (Content-Length, chunked): when it ends, the server sent all it meant to. */
  delimited: boolean;
}

export interface HttpClientOptions {
  /** Verify TLS certificates (with false, no trust store is even loaded). */
  tlsVerify: boolean;
  /** The registry's own TLS context: its certs.d CAs beside the default roots, its client certificate. */
  secureContext?: SecureContext;
  /** Drop a connection that sends nothing for this long (default 60 s): a body that stops coming. */
  idleTimeoutMs?: number;
  /** Give up on a response whose head is not complete this long after the request (default 30 s): drip-fed headers. */
  headersTimeoutMs?: number;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;
/** An error or redirect body is read this far at most (for the connection's sake), then the connection is dropped. */
const DISCARD_LIMIT_BYTES = 64 << 10;
const SLAB_BYTES = 1 << 20;
/** A read gets at least this much room; a slab with less left is retired. */
const MIN_READ_BYTES = 64 << 10;

/** A request body: bytes, or a stream of a known length (a blob upload) opened when it is sent. */
export type RequestBody = Buffer | { length: number; open(): AsyncIterable<Buffer> };

/** A request other than a plain GET: HEAD, or POST/PUT/PATCH with a body (never redirected: a body is sent once). */
export interface HttpRequest {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  headers: Record<string, string>;
  body?: RequestBody;
  signal?: AbortSignal;
}

export class HttpClient {
  /** Keep-alive connections waiting for their next request, by origin. */
  private readonly idle = new Map<string, Connection[]>();

  constructor(private readonly options: HttpClientOptions) {}

  /** Any method; a GET follows redirects (`get`), the others are sent once, as they are. */
  async request(url: string | URL, request: HttpRequest): Promise<HttpResponse> {
    if (request.method === 'GET' && !request.body) return this.get(url, request.headers, request.signal);
    return this.send(new URL(url), request);
  }

  async get(url: string | URL, headers: Record<string, string>, signal?: AbortSignal): Promise<HttpResponse> {
    let target = new URL(url);
    let sent = headers;
    for (let redirects = 0; ; redirects++) {
      const res = await this.send(target, { method: 'GET', headers: sent, signal });
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

  private async send(url: URL, request: HttpRequest): Promise<HttpResponse> {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new HttpProtocolError(`unsupported URL scheme ${url.protocol}`);
    request.signal?.throwIfAborted();
    const head = formatRequest(url, request);
    const reused = this.idle.get(url.origin)?.pop();
    if (reused) {
      try {
        return await reused.exchange({ head, request }, url);
      } catch (err) {
        // The server may close an idle connection just as we reuse it: try once on a new one
        // (not when a body stream was opened already: it cannot be read twice).
        if (reused.answered || request.signal?.aborted || reused.bodyStarted) throw err;
      }
    }
    return (await this.connect(url)).exchange({ head, request }, url);
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
  /** Whether the current exchange opened its body stream. */
  bodyStarted = false;
  private readonly socket: net.Socket | TLSSocket;
  private slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
  private used = 0;
  private parser: ResponseParser | undefined;
  private closed = false;
  private closeListeners: Array<() => void> = [];

  constructor(url: URL, private readonly options: HttpClientOptions, private readonly released: (c: Connection) => void) {
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
        ...(options.secureContext ? { secureContext: options.secureContext } : {}),
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

  /** Sends one request and resolves with the response once its head is in (within headersTimeoutMs). */
  exchange({ head, request }: { head: string; request: HttpRequest }, url: URL): Promise<HttpResponse> {
    const signal = request.signal;
    if (this.closed) return Promise.reject(Object.assign(new Error('connection closed'), { code: 'ECONNRESET' }));
    if (signal?.aborted) return Promise.reject(signal.reason);
    this.answered = false;
    this.bodyStarted = false;
    this.socket.ref();
    return new Promise((resolve, reject) => {
      const onAbort = () => this.socket.destroy(signal?.reason as Error);
      const headersMs = this.options.headersTimeoutMs ?? 30_000;
      const headersLate = setTimeout(() => this.socket.destroy(Object.assign(new Error(`no response headers within ${headersMs / 1000} s`), { code: 'ETIMEDOUT' })), headersMs);
      const settled = () => {
        clearTimeout(headersLate);
        signal?.removeEventListener('abort', onAbort);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const parser = new ResponseParser(url, request.method === 'HEAD', {
        head: (res) => {
          clearTimeout(headersLate);
          resolve(res);
        },
        fail: (err) => {
          settled();
          reject(err);
        },
        resume: () => this.socket.resume(),
        done: (reusable) => {
          settled();
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
          settled();
          this.socket.destroy();
        },
      });
      this.parser = parser;
      this.socket.write(head);
      if (request.body) this.writeBody(request.body).catch((err: Error) => this.socket.destroy(err));
    });
  }

  /** A body after the head, with the socket's backpressure; a failed read of it drops the connection. */
  private async writeBody(body: RequestBody): Promise<void> {
    if (Buffer.isBuffer(body)) {
      if (body.length) this.socket.write(body);
      return;
    }
    this.bodyStarted = true;
    for await (const chunk of body.open()) {
      if (this.closed) return;
      if (!this.socket.write(chunk)) await new Promise<void>((resolve) => {
        const done = () => {
          this.socket.off('drain', done);
          this.socket.off('close', done);
          resolve();
        };
        this.socket.on('drain', done);
        this.socket.on('close', done);
      });
    }
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

function formatRequest(url: URL, { method, headers, body }: HttpRequest): string {
  const lines = [`${method} ${url.pathname}${url.search} HTTP/1.1`, `Host: ${url.host}`];
  if (body || method === 'PUT' || method === 'POST' || method === 'PATCH') lines.push(`Content-Length: ${body?.length ?? 0}`);
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
    throw new BodyTooLarge(`${what} is ${declared} bytes, more than the ${limit} bytes allowed`, declared);
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

/**
 * Drops a body we do not need: a short one is read so that the connection can be reused; one
 * longer than `limit` (an endless error page) is cut off, and its connection with it.
 */
export async function discardBody(res: HttpResponse, limit = DISCARD_LIMIT_BYTES): Promise<void> {
  if (Number(res.headers['content-length'] ?? 0) > limit) {
    res.body.destroy();
    return;
  }
  let seen = 0;
  res.body.on('data', (chunk: Buffer) => {
    seen += chunk.length;
    if (seen > limit) res.body.destroy();
  });
  // `finished` also settles for a body that already failed or closed (waiting for events would hang).
  await finished(res.body).catch(() => {});
}

/** A body over the limit; `declared` when its Content-Length said so before any byte was read. */
export class BodyTooLarge extends Error {
  constructor(message: string, readonly declared?: number) {
    super(message);
  }
}

