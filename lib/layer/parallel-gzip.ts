/**
 * gzip in parallel members, as pigz and pgzip write it: the stream is cut at fixed offsets into
 * pieces of MEMBER_BYTES, each compressed on its own in libuv's thread pool, and the members are
 * written in order. A gzip stream may be several members one after another (RFC 1952 2.2), and
 * every reader (Go's compress/gzip, zlib, python, umoci, containers/image) reads them as one.
 * The output depends only on the input (cuts at fixed offsets, zlib's header has no time or
 * name), so the same layer is the same blob: a commit stays reproducible.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { promisify } from 'node:util';
import { constants, gzip } from 'node:zlib';

const gzipAsync = promisify(gzip);
/** Large enough that cutting the dictionary at each member costs well under 1 % of the size. */
const MEMBER_BYTES = 1 << 20;
/** Members compressed at once: libuv's pool has 4 threads; more would only queue. */
const IN_FLIGHT = 4;

export function parallelGzip(level = constants.Z_BEST_SPEED): Transform {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const inFlight: Array<Promise<Buffer>> = [];
  const start = (piece: Buffer) => {
    const member = gzipAsync(piece, { level });
    member.catch(() => undefined);
    inFlight.push(member);
  };
  const cut = (): Buffer => {
    const all = Buffer.concat(pending, pendingBytes);
    const piece = all.subarray(0, MEMBER_BYTES);
    pending = all.length > MEMBER_BYTES ? [all.subarray(MEMBER_BYTES)] : [];
    pendingBytes = all.length - piece.length;
    return piece;
  };
  return new Transform({
    async transform(chunk: Buffer, _encoding, done: TransformCallback) {
      try {
        pending.push(chunk);
        pendingBytes += chunk.length;
        while (pendingBytes >= MEMBER_BYTES) {
          start(cut());
          // Backpressure: at most IN_FLIGHT members wait; the oldest is written when it is done.
          if (inFlight.length >= IN_FLIGHT) this.push(await (inFlight.shift() as Promise<Buffer>));
        }
        done();
      } catch (err) {
        done(err as Error);
      }
    },
    async flush(done: TransformCallback) {
      try {
        if (pendingBytes > 0 || inFlight.length === 0) start(cut());
        while (inFlight.length) this.push(await (inFlight.shift() as Promise<Buffer>));
        done();
      } catch (err) {
        done(err as Error);
      }
    },
  });
}
