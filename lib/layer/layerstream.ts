/**
 * The uncompressed bytes of layer blobs, made on a worker thread: reading the blob, gunzip (or
 * `zstd -dc`) and the diff_id's sha256 all run there, beside the main thread, which spends
 * its time in the file system calls of applying the entries.
 *
 * Why a thread: node's zlib inflates each chunk on the libuv pool, but schedules the next one
 * only when the main thread is back in its event loop, and the applier's synchronous calls
 * keep it away for the length of a chunk's entries. Decompression then waits for the applier
 * and the applier for decompression. On the worker, decompression runs ahead (up to WINDOW
 * chunks), so the two overlap, as `tar xzf` overlaps with the gzip process it starts.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream';
import { isMainThread, parentPort, Worker, workerData, type MessagePort } from 'node:worker_threads';
import { createGunzip } from 'node:zlib';
import { HostError, UnsupportedError } from '../core/errors.js';
import type { Compression } from './tarstream.js';

/** Chunks (of up to 1 MiB) a stream may have made and not yet handed over. */
const WINDOW = 4;
const CHUNK_BYTES = 1 << 20;
const WORKER_ROLE = 'container-parts layer streams';

type ToWorker = { op: 'open'; id: number; path: string; compression: Compression } | { op: 'credit'; id: number } | { op: 'cancel'; id: number };
type FromWorker = { id: number; chunk: ArrayBuffer } | { id: number; digest: string } | { id: number; error: { code?: string; message: string } };

/** One worker thread for the layers of an unpack, opened one after the other. */
export class LayerStreams {
  private worker: Worker | undefined;
  private readonly streams = new Map<number, LayerStream>();
  private nextId = 0;

  /** The uncompressed chunks of the blob at `path`; `digest` names it in error messages. */
  open(path: string, compression: Compression, digest: string): LayerStream {
    const worker = this.start();
    const id = this.nextId++;
    const stream = new LayerStream(digest, (message) => worker.postMessage(message satisfies ToWorker), id);
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
    const worker = new Worker(new URL(import.meta.url), { workerData: WORKER_ROLE });
    worker.on('message', (message: FromWorker) => this.streams.get(message.id)?.receive(message));
    worker.on('error', (err) => {
      for (const stream of this.streams.values()) stream.receive({ id: -1, error: { message: `layer decompression thread failed: ${err.message}` } });
    });
    this.worker = worker;
    return worker;
  }
}

/** A layer's uncompressed chunks, in order; after the last, `digest()` is the sha256 of them all (the diff_id). */
export class LayerStream implements AsyncIterator<Buffer> {
  private readonly queue: Buffer[] = [];
  private result: { digest: string } | { error: Error } | undefined;
  private wake: (() => void) | undefined;
  onBytes?: (n: number) => void;

  constructor(private readonly blobDigest: string, private readonly post: (message: ToWorker) => void, private readonly id: number) {}

  async next(): Promise<IteratorResult<Buffer>> {
    while (this.queue.length === 0 && !this.result) await new Promise<void>((resolve) => (this.wake = resolve));
    const chunk = this.queue.shift();
    if (chunk) {
      this.post({ op: 'credit', id: this.id });
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
    if ('chunk' in message) this.queue.push(Buffer.from(message.chunk));
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

/** The worker: makes each opened stream's chunks, WINDOW ahead of what the main thread has taken. */
function serve(port: MessagePort): void {
  const credit = new Map<number, { inFlight: number; resume?: () => void; cancelled: boolean }>();
  port.on('message', (message: ToWorker) => {
    if (message.op === 'open') {
      credit.set(message.id, { inFlight: 0, cancelled: false });
      void produce(port, message, credit);
      return;
    }
    const state = credit.get(message.id);
    if (!state) return;
    if (message.op === 'credit') state.inFlight--;
    else state.cancelled = true;
    state.resume?.();
    state.resume = undefined;
  });
}

async function produce(port: MessagePort, open: Extract<ToWorker, { op: 'open' }>, credit: Map<number, { inFlight: number; resume?: () => void; cancelled: boolean }>): Promise<void> {
  const state = credit.get(open.id) as { inFlight: number; resume?: () => void; cancelled: boolean };
  const hash = createHash('sha256');
  try {
    for await (const chunk of uncompressed(open.path, open.compression)) {
      hash.update(chunk);
      // A copy of its own to hand over: zlib's chunks are views of buffers it goes on writing into.
      const copy = new Uint8Array(chunk.length);
      copy.set(chunk);
      port.postMessage({ id: open.id, chunk: copy.buffer } satisfies FromWorker, [copy.buffer]);
      state.inFlight++;
      while (state.inFlight >= WINDOW && !state.cancelled) await new Promise<void>((resolve) => (state.resume = resolve));
      if (state.cancelled) return;
    }
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
    const gunzip = createGunzip({ chunkSize: CHUNK_BYTES });
    pipeline(createReadStream(path, { highWaterMark: CHUNK_BYTES }), gunzip, () => undefined);
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
