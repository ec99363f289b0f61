/**
 * Reading one HTTP/1.1 response from the bytes a connection receives: the head, then the body
 * as views of the received chunks (no copy), framed by Content-Length, chunked encoding or the
 * end of the connection. The connection (http.ts) feeds it and is told when the message ends.
 */
import { Readable } from 'node:stream';
import type { HttpHeaders, HttpResponse } from './http.js';

const MAX_HEAD_BYTES = 64 << 10;

export interface ParserEvents {
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
export class ResponseParser {
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

  /** `headOnly`: the answer to a HEAD request, whose body is empty whatever Content-Length says. */
  constructor(private readonly url: URL, private readonly headOnly: boolean, private readonly events: ParserEvents) {}

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
    this.framing = this.headOnly ? { kind: 'length', left: 0 } : framingOf(code, headers);
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
    this.events.head({ status: code, headers, body: this.body, url: this.url, delimited: this.framing.kind !== 'close' });
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


/** A response that is not HTTP/1.1 as we read it. */
export class HttpProtocolError extends Error {
  override name = 'HttpProtocolError';
}
