/**
 * The uncompressed bytes of layer blobs, made on a worker thread: reading the blob, gunzip (or
 * `zstd -dc`) and the diff_id's sha256 all run there, beside the main thread, which spends
 * its time in the file system calls of applying the entries.
 *
 * Why a thread: node's zlib inflates each chunk on the libuv pool, but schedules the next one
 * only when the main thread is back in its event loop, and the applier's synchronous calls
 * keep it away for the length of a chunk's entries. Decompression then waits for the applier
 * and the applier for decompression. On the worker, decompression runs ahead (up to WINDOW_BYTES
 * bytes), so the two overlap, as `tar xzf` overlaps with the gzip process it starts.
 *
 * Memory is bounded by DECOMPRESSED bytes: the window counts uncompressed bytes handed over
 * and not yet taken, and gzip input is fed in small pieces, because zlib inflates a whole
 * input chunk before it looks at backpressure (64 KiB of a file of zeros is 64 MiB). The
 * hand-offs are batched into chunks of 1 MiB, however small zlib's pieces are, and each
 * chunk's memory goes back to the worker with the credit for it, to be filled again: the
 * main thread allocates little, so it collects garbage rarely, and chunks it merely dropped
 * stayed allocated (a 1 GiB layer of zeros reached 184-311 MB RSS that way).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream';
import { isMainThread, parentPort, Worker, workerData, type MessagePort } from 'node:worker_threads';
import { createGunzip } from 'node:zlib';
import { HostError, UnsupportedError } from '../core/errors.js';
import type { Compression } from './tarstream.js';
import { distPath } from '../core/paths.js';

/** Uncompressed bytes a stream may have handed over and the main thread not yet taken. */
const WINDOW_BYTES = 4 << 20;
/** The size of a hand-off (a batch of what zlib made). */
const CHUNK_BYTES = 1 << 20;
/** Compressed bytes fed to zlib at a time: at most ~1032x this comes out of one write (deflate's limit). */
const GZIP_INPUT_BYTES = 16 << 10;
const WORKER_ROLE = 'container-parts layer streams';

type ToWorker = { op: 'open'; id: number; path: string; compression: Compression } | { op: 'credit'; id: number; bytes: number; buffer: ArrayBuffer } | { op: 'cancel'; id: number };
type FromWorker = { id: number; chunk: ArrayBuffer; length: number } | { id: number; digest: string } | { id: number; error: { code?: string; message: string } };

/** One worker thread for the layers of an unpack, opened one after the other. */
export class LayerStreams {
  private worker: Worker | undefined;
  private readonly streams = new Map<number, LayerStream>();
  private nextId = 0;

  /** The uncompressed chunks of the blob at `path`; `digest` names it in error messages. */
  open(path: string, compression: Compression, digest: string): LayerStream {
    const worker = this.start();
    const id = this.nextId++;
    const stream = new LayerStream(digest, (message, transfer) => worker.postMessage(message satisfies ToWorker, transfer), id);
    this.streams.set(id, stream);
    worker.postMessage({ op: 'open', id, path, compression } satisfies ToWorker);
    return stream;
  }

  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    await worker?.terminate();
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    // This module as tsc wrote it (dist/lib/layer/), also from a bundle in dist/bin/: loading the
    // bundle's chunk would run what else it holds (a command's main) in the worker.
    const worker = new Worker(distPath(import.meta.url, 'lib', 'layer', 'layerstream.js'), { workerData: WORKER_ROLE });
    worker.on('message', (message: FromWorker) => this.streams.get(message.id)?.receive(message));
    worker.on('error', (err) => {
      for (const stream of this.streams.values()) stream.receive({ id: -1, error: { message: `layer decompression thread failed: ${err.message}` } });
    });
    this.worker = worker;
    return worker;
  }
}

/**
 * A layer's uncompressed chunks, in order; after the last, `digest()` is the sha256 of them all
 * (the diff_id). A chunk is valid until the next call of `next()`, which hands its memory back.
 */
export class LayerStream implements AsyncIterator<Buffer> {
  private readonly queue: Buffer[] = [];
  private current: Buffer | undefined;
  private result: { digest: string } | { error: Error } | undefined;
  private wake: (() => void) | undefined;
  onBytes?: (n: number) => void;

  constructor(private readonly blobDigest: string, private readonly post: (message: ToWorker, transfer?: ArrayBuffer[]) => void, private readonly id: number) {}

  async next(): Promise<IteratorResult<Buffer>> {
    const done = this.current;
    this.current = undefined;
    if (done) this.post({ op: 'credit', id: this.id, bytes: done.length, buffer: done.buffer as ArrayBuffer }, [done.buffer as ArrayBuffer]);
    while (this.queue.length === 0 && !this.result) await new Promise<void>((resolve) => (this.wake = resolve));
    const chunk = this.queue.shift();
    if (chunk) {
      this.current = chunk;
      this.onBytes?.(chunk.length);
      return { value: chunk, done: false };
    }
    if (this.result && 'error' in this.result) throw this.result.error;
    return { value: undefined, done: true };
  }

  /** Reads what the tar reader left (end blocks, padding) and returns the digest of everything. */
  async digest(): Promise<string> {
    while (!(await this.next()).done);
    return (this.result as { digest: string }).digest;
  }

  /** Stops the worker's work on this stream (after a failure). */
  close(): void {
    if (!this.result) this.post({ op: 'cancel', id: this.id });
    this.result ??= { error: new Error('closed') };
  }

  receive(message: FromWorker): void {
    if ('chunk' in message) this.queue.push(Buffer.from(message.chunk, 0, message.length));
    else if ('digest' in message) this.result ??= { digest: message.digest };
    else this.result ??= { error: this.describe(message.error) };
    this.wake?.();
    this.wake = undefined;
  }

  /** The worker reports facts (an error code, a message); the typed error is made here. */
  private describe(error: { code?: string; message: string }): Error {
    if (error.code?.startsWith('Z_')) return new UnsupportedError(`layer ${this.blobDigest}: not valid gzip data (${error.message})`);
    if (error.code === 'ZSTD_FAILED') return new UnsupportedError(`layer ${this.blobDigest}: zstd could not decompress it (${error.message})`);
    if (error.code === 'ZSTD_MISSING') return new HostError(`cannot run zstd to decompress layer ${this.blobDigest}: ${error.message}`, { hint: 'apt-get install zstd' });
    return Object.assign(new Error(`layer ${this.blobDigest}: ${error.message}`), { code: error.code });
  }
}

/** The worker: makes each opened stream's chunks, up to WINDOW_BYTES ahead of what the main thread has taken. */
function serve(port: MessagePort): void {
  const credit = new Map<number, Credit>();
  /** Chunk buffers the main thread gave back, to be filled again. */
  const spare: ArrayBuffer[] = [];
  port.on('message', (message: ToWorker) => {
    if (message.op === 'open') {
      credit.set(message.id, { inFlight: 0, cancelled: false });
      void produce(port, message, { credit, spare });
      return;
    }
    const state = credit.get(message.id);
    if (message.op === 'credit' && spare.length < WINDOW_BYTES / CHUNK_BYTES + 2) spare.push(message.buffer);
    if (!state) return;
    if (message.op === 'credit') state.inFlight -= message.bytes;
    else state.cancelled = true;
    state.resume?.();
    state.resume = undefined;
  });
}

type Credit = { inFlight: number; resume?: () => void; cancelled: boolean };

async function produce(port: MessagePort, open: Extract<ToWorker, { op: 'open' }>, pools: { credit: Map<number, Credit>; spare: ArrayBuffer[] }): Promise<void> {
  const { credit, spare } = pools;
  const state = credit.get(open.id) as Credit;
  const hash = createHash('sha256');
  const fresh = () => new Uint8Array(spare.pop() ?? new ArrayBuffer(CHUNK_BYTES));
  const send = async (batch: Uint8Array, length: number) => {
    const buffer = batch.buffer as ArrayBuffer;
    port.postMessage({ id: open.id, chunk: buffer, length } satisfies FromWorker, [buffer]);
    state.inFlight += length;
    while (state.inFlight >= WINDOW_BYTES && !state.cancelled) await new Promise<void>((resolve) => (state.resume = resolve));
  };
  try {
    // Batches of their own to hand over: zlib's chunks are views of buffers it goes on writing into.
    let batch = fresh();
    let filled = 0;
    for await (const chunk of uncompressed(open.path, open.compression)) {
      hash.update(chunk);
      for (let used = 0; used < chunk.length; ) {
        const n = Math.min(chunk.length - used, CHUNK_BYTES - filled);
        batch.set(chunk.subarray(used, used + n), filled);
        filled += n;
        used += n;
        if (filled < CHUNK_BYTES) continue;
        await send(batch, filled);
        if (state.cancelled) return;
        batch = fresh();
        filled = 0;
      }
    }
    if (filled > 0) await send(batch, filled);
    port.postMessage({ id: open.id, digest: `sha256:${hash.digest('hex')}` } satisfies FromWorker);
  } catch (err) {
    const { code, message } = err as NodeJS.ErrnoException;
    port.postMessage({ id: open.id, error: { code, message: String(message).split('\n')[0] as string } } satisfies FromWorker);
  } finally {
    credit.delete(open.id);
  }
}

/** A blob's uncompressed chunks: read in 1 MiB pieces, gunzipped by node's zlib or piped through `zstd -dc`. */
async function* uncompressed(path: string, compression: Compression): AsyncGenerator<Buffer> {
  if (compression === 'none') {
    yield* createReadStream(path, { highWaterMark: CHUNK_BYTES }) as AsyncIterable<Buffer>;
    return;
  }
  if (compression === 'gzip') {
    const gunzip = createGunzip({ chunkSize: 64 << 10 });
    pipeline(createReadStream(path, { highWaterMark: GZIP_INPUT_BYTES }), gunzip, () => undefined);
    try {
      yield* gunzip as AsyncIterable<Buffer>;
    } finally {
      gunzip.destroy();
    }
    return;
  }
  // Node 20 has no zstd: the zstd program decompresses, one process per layer.
  const child = spawn('zstd', ['-dc', '--no-progress', '--', path], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolveExit, reject) => {
    child.on('error', (err) => reject(Object.assign(new Error((err as NodeJS.ErrnoException).code ?? err.message), { code: 'ZSTD_MISSING' })));
    child.on('close', (code) => resolveExit(code));
  });
  exited.catch(() => undefined);
  try {
    yield* child.stdout as AsyncIterable<Buffer>;
    const code = await exited;
    if (code !== 0) throw Object.assign(new Error(stderr.trim().split('\n').pop() ?? `exit ${code}`), { code: 'ZSTD_FAILED' });
  } finally {
    if (child.exitCode === null) child.kill();
  }
}

if (!isMainThread && workerData === WORKER_ROLE && parentPort) serve(parentPort);
