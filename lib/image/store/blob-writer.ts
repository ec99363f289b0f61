/**
 * Where a blob is being written: hashed as it grows, committed under its digest only when
 * whole and verified. Writes go through a stream in the background (coalescing chunks), with
 * an early writeback so the final fsync finds little left to do. A write error (a full disk)
 * fails the writer at once and every later call with it, as one line naming the file.
 */
import { closeSync, createWriteStream, fdatasync, fsync, openSync, type WriteStream } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import { createHash, type Hash } from 'node:crypto';
import { finished } from 'node:stream/promises';
import { DigestMismatchError } from '../../core/errors.js';
import { asWriteError } from './errors.js';

/**
 * Dirty bytes of a blob after which its writeback is started (an fdatasync in the background)
 * rather than left to the final fsync: the disk writes while the network is still sending, and
 * the commit's fsync finds little left to do (about 20 ms less per 100 MB pull here).
 */
const WRITEBACK_BYTES = 16 << 20;

/** fsync(2) as a promise (node:util's promisify would load node:util at every command's start). */
const fsyncFd = (fd: number) => new Promise<void>((resolve, reject) => fsync(fd, (err) => (err ? reject(err) : resolve())));

export interface ExpectedBlob {
  digest: string;
  size?: number;
}

export class BlobWriter {
  private hash: Hash = createHash('sha256');
  private file: { fd: number; stream: WriteStream } | undefined;
  private failure: unknown;
  /** The background fdatasync, and how many bytes were written when it was started. */
  private writeback: Promise<void> | undefined;
  private writebackAt = 0;
  written = 0;

  constructor(readonly expected: ExpectedBlob, readonly tempPath: string, private readonly finalPath: string) {}

  async write(chunk: Buffer): Promise<void> {
    if (!this.append(chunk)) await this.drain();
  }

  /**
   * Hashes and queues a chunk without waiting (the hot path of a download: no promise per
   * chunk). False means the file is behind: wait for drain() before the next chunk.
   */
  append(chunk: Buffer): boolean {
    if (this.failure) throw this.failure;
    if (this.expected.size !== undefined && this.written + chunk.length > this.expected.size) {
      throw new DigestMismatchError(`blob ${this.expected.digest}: more than the expected ${this.expected.size} bytes`);
    }
    const file = (this.file ??= this.openFile());
    this.hash.update(chunk);
    this.written += chunk.length;
    const flowing = file.stream.write(chunk);
    if (!this.writeback && this.written - this.writebackAt >= WRITEBACK_BYTES) {
      this.writebackAt = this.written;
      this.writeback = new Promise((resolve) => fdatasync(file.fd, () => resolve()));
      void this.writeback.then(() => (this.writeback = undefined));
    }
    return flowing;
  }

  /** Waits until the file has caught up; a write that failed meanwhile fails here. */
  async drain(): Promise<void> {
    const stream = this.file?.stream;
    if (this.failure) throw this.failure;
    // 'error' too: a stream that fails while we wait emits no 'drain' (and, not autoDestroy, no 'close').
    if (stream?.writableNeedDrain) {
      await new Promise<void>((resolve) => {
        const done = () => {
          stream.off('drain', done).off('error', done);
          resolve();
        };
        stream.on('drain', done).on('error', done);
      });
    }
    if (this.failure) throw this.failure;
  }

  /** Start over (the server ignored a Range request). */
  async restart(): Promise<void> {
    await this.closeFile(false);
    this.hash = createHash('sha256');
    this.written = 0;
    this.writebackAt = 0;
  }

  /** Verifies size and digest, syncs the file and moves the blob into place; on a mismatch nothing is left. */
  async commit(): Promise<void> {
    try {
      await this.closeFile(true);
      if (this.failure) throw this.failure;
      this.verify();
      if (this.written === 0) await writeFile(this.tempPath, '').catch((err) => Promise.reject(asWriteError(err, this.tempPath)));
      await rename(this.tempPath, this.finalPath).catch((err) => Promise.reject(asWriteError(err, this.finalPath)));
    } catch (err) {
      await this.abort();
      throw err;
    }
  }

  async abort(): Promise<void> {
    await this.closeFile(false).catch(() => undefined);
    await rm(this.tempPath, { force: true });
  }

  /** commit's size and digest check, without committing: a wrong blob is found while another source can still be asked. */
  verify(): void {
    if (this.expected.size !== undefined && this.written !== this.expected.size) {
      throw new DigestMismatchError(`blob ${this.expected.digest}: got ${this.written} bytes, expected ${this.expected.size}`);
    }
    const actual = `sha256:${this.hash.copy().digest('hex')}`;
    if (actual !== this.expected.digest) throw new DigestMismatchError(`blob ${this.expected.digest}: content has digest ${actual}`);
  }

  /** Our own fd under the stream (it does not close it), so the background fdatasync has one to use. */
  private openFile(): { fd: number; stream: WriteStream } {
    let fd: number;
    try {
      fd = openSync(this.tempPath, this.written === 0 ? 'w' : 'a');
    } catch (err) {
      throw (this.failure = asWriteError(err, this.tempPath));
    }
    const stream = createWriteStream('', { fd, autoClose: false, highWaterMark: 1 << 20 });
    stream.on('error', (err) => (this.failure ??= asWriteError(err, this.tempPath)));
    return { fd, stream };
  }

  /**
   * Ends the stream and closes our fd, syncing it first when the blob is to be kept (one fsync
   * on the fd we have, no reopen). finished() settles at once on a stream that already failed.
   */
  private async closeFile(sync: boolean): Promise<void> {
    const file = this.file;
    if (!file) return;
    this.file = undefined;
    if (!file.stream.destroyed) file.stream.end();
    await finished(file.stream).catch(() => undefined);
    try {
      // The fd outlives any fdatasync on it: a closed fd number can be reused by another file at once.
      await this.writeback;
      if (sync && !this.failure) await fsyncFd(file.fd).catch((err) => (this.failure ??= asWriteError(err, this.tempPath)));
    } finally {
      closeSync(file.fd);
    }
  }
}
