/**
 * The blob writer at the edges mutation testing found unchecked: a restart starts the file
 * over, an empty blob, sizes and digests that do not match (one line each), writes into a
 * place that is gone, abort with nothing written, no fd left open, and the fsync of the file
 * before its rename into place (seen by strace: a crash after the rename must not leave a
 * named blob whose bytes never reached the disk).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs, { existsSync, readdirSync, readFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { digestOf } from '../../../lib/core/digest.js';
import { DigestMismatchError } from '../../../lib/core/errors.js';
import { BlobWriter } from '../../../lib/image/store/blob-writer.js';
import { StoreWriteError } from '../../../lib/image/store/errors.js';
import { cleanUpAtExit, REPO, withTempDir } from '../../helpers/paths.js';

const withTemp = (fn: (dir: string) => Promise<void>) => withTempDir('cp-blob-writer-', fn);

const writer = (dir: string, data: Buffer | string, size?: number) =>
  new BlobWriter({ digest: digestOf(Buffer.from(data)), ...(size === undefined ? {} : { size }) }, join(dir, 'blob.part'), join(dir, 'blob'));

test('a restart starts the file over: only what follows it is the blob', () =>
  withTemp(async (dir) => {
    const w = writer(dir, 'second');
    await w.write(Buffer.from('first, then the server ignored Range'));
    await w.restart();
    assert.equal(w.written, 0);
    await w.write(Buffer.from('second'));
    await w.commit();
    assert.equal(readFileSync(join(dir, 'blob'), 'utf8'), 'second');
    assert.ok(!existsSync(join(dir, 'blob.part')));
  }));

test('an empty blob is committed as an empty file', () =>
  withTemp(async (dir) => {
    await writer(dir, '', 0).commit();
    assert.equal(readFileSync(join(dir, 'blob'), 'utf8'), '');
  }));

test('sizes: too many bytes are refused at once, too few at commit; no size given, the digest decides alone', () =>
  withTemp(async (dir) => {
    const digest = digestOf(Buffer.from('abc'));
    const long = writer(dir, 'abc', 3);
    assert.throws(() => long.append(Buffer.from('abcd')), (e: unknown) => e instanceof DigestMismatchError && e.message === `blob ${digest}: more than the expected 3 bytes`);
    await long.abort();
    const short = writer(dir, 'abc', 3);
    await short.write(Buffer.from('ab'));
    await assert.rejects(short.commit(), (e: unknown) => e instanceof DigestMismatchError && e.message === `blob ${digest}: got 2 bytes, expected 3`);
    assert.deepEqual(readdirSync(dir), [], 'nothing left');
    const unsized = writer(dir, 'abc');
    await unsized.write(Buffer.from('abc'));
    await unsized.commit();
    const wrong = writer(dir, 'abc');
    await wrong.write(Buffer.from('abd'));
    await assert.rejects(wrong.commit(), (e: unknown) => e instanceof DigestMismatchError && e.message === `blob ${digest}: content has digest ${digestOf(Buffer.from('abd'))}`);
    assert.deepEqual(readdirSync(dir), ['blob']);
  }));

test('a place that is gone is a write error naming the file; abort with nothing written is fine', () =>
  withTemp(async (dir) => {
    const gone = new BlobWriter({ digest: digestOf(Buffer.from('x')) }, join(dir, 'no/blob.part'), join(dir, 'blob'));
    assert.throws(() => gone.append(Buffer.from('x')), (e: unknown) => e instanceof StoreWriteError && e.message.startsWith(`cannot write ${join(dir, 'no/blob.part')}`));
    assert.throws(() => gone.append(Buffer.from('x')), StoreWriteError, 'and every later call');
    const noFinal = new BlobWriter({ digest: digestOf(Buffer.from('x')) }, join(dir, 'blob.part'), join(dir, 'no/blob'));
    await noFinal.write(Buffer.from('x'));
    // (The line names the rename's source, as node's error does.)
    await assert.rejects(noFinal.commit(), (e: unknown) => e instanceof StoreWriteError && e.message === `cannot write ${join(dir, 'blob.part')}: no such file or directory`);
    assert.ok(!existsSync(join(dir, 'blob.part')));
    await writer(dir, 'y').abort();
  }));

test('a large blob written without waiting is whole at commit, and no fd stays open', () =>
  withTemp(async (dir) => {
    const data = Buffer.alloc(20 << 20);
    for (let i = 0; i < data.length; i += 4096) data[i] = i & 0xff;
    const fds = readdirSync('/proc/self/fd').length;
    const w = writer(dir, data, data.length);
    for (let i = 0; i < data.length; i += 64 << 10) if (!w.append(data.subarray(i, i + (64 << 10)))) await w.drain();
    await w.commit();
    assert.equal(readdirSync('/proc/self/fd').length, fds);
    assert.ok(readFileSync(join(dir, 'blob')).equals(data));
  }));

test('commit fsyncs the file before renaming it into place (strace)', () =>
  withTemp(async (dir) => {
    const script = `
      const { BlobWriter } = await import(${JSON.stringify(join(REPO, 'dist/lib/image/store/blob-writer.js'))});
      const { digestOf } = await import(${JSON.stringify(join(REPO, 'dist/lib/core/digest.js'))});
      const w = new BlobWriter({ digest: digestOf(Buffer.from('durable')) }, ${JSON.stringify(join(dir, 'blob.part'))}, ${JSON.stringify(join(dir, 'blob'))});
      await w.write(Buffer.from('durable'));
      await w.commit();`;
    execFileSync('strace', ['-f', '-e', 'trace=fsync,fdatasync,rename,renameat,renameat2', '-o', join(dir, 'trace'), 'node', '--input-type=module', '-e', script], { stdio: 'ignore', timeout: 60_000 });
    const lines = readFileSync(join(dir, 'trace'), 'utf8').split('\n');
    const rename = lines.findIndex((l) => /rename.*blob\.part/.test(l));
    assert.ok(rename > 0, lines.join('\n'));
    assert.ok(lines.slice(0, rename).some((l) => /\b(fsync|fdatasync)\(\d+\)\s+= 0/.test(l)), `an fsync before the rename:\n${lines.join('\n')}`);
  }));

test('a full disk fails the writer at once and every later call, in one line naming the file, and leaves no file', () =>
  withTemp(async (dir) => {
    const disk = join(dir, 'disk');
    execFileSync('mkdir', [disk]);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', disk]);
    const cancelUnmount = cleanUpAtExit(() => execFileSync('umount', ['-l', disk]));
    try {
      const data = Buffer.alloc(4 << 20, 1);
      const w = new BlobWriter({ digest: digestOf(data), size: data.length }, join(disk, 'blob.part'), join(disk, 'blob'));
      const full = (e: unknown) => e instanceof StoreWriteError && e.message === `cannot write ${join(disk, 'blob.part')}: no space left on device`;
      let failed: unknown;
      try {
        for (let i = 0; i < data.length; i += 64 << 10) await w.write(data.subarray(i, i + (64 << 10)));
        await w.drain();
      } catch (err) {
        failed = err;
      }
      if (failed === undefined) await assert.rejects(w.commit(), full);
      else {
        assert.ok(full(failed), String(failed));
        assert.throws(() => w.append(Buffer.from('x')), full);
        await assert.rejects(w.drain(), full);
        await assert.rejects(w.commit(), full);
      }
      assert.deepEqual(readdirSync(disk), [], 'nothing left');
    } finally {
      cancelUnmount();
      execFileSync('umount', ['-l', disk]);
    }
  }));

/**
 * Replaces a node:fs function for one test: blob-writer imports it by name, and those bindings
 * follow node:fs once syncBuiltinESMExports() is called (how an fsync error or the writeback's
 * calls are seen in this process, without a device that fails).
 */
function replaceFs<K extends 'fsync' | 'fdatasync'>(t: TestContext, name: K, fake: (typeof fs)[K]): void {
  const real = fs[name];
  fs[name] = fake;
  syncBuiltinESMExports();
  t.after(() => {
    fs[name] = real;
    syncBuiltinESMExports();
  });
}

const MiB = 1 << 20;

test('the writeback: an fdatasync of the file after each 16 MiB written, one at a time, none before', (t) =>
  withTemp(async (dir) => {
    const calls: number[] = [];
    let release: (() => void) | undefined;
    const w = writer(dir, Buffer.alloc(0));
    // Each ends at once (a disk that keeps up), but the third, held until the test lets it end.
    replaceFs(t, 'fdatasync', ((_fd: number, callback: (err: NodeJS.ErrnoException | null) => void) => {
      calls.push(w.written / MiB);
      if (calls.length === 3) release = () => callback(null);
      else callback(null);
    }) as typeof fs.fdatasync);
    const chunk = Buffer.alloc(MiB, 7);
    const writeMiB = async (count: number) => {
      for (let i = 0; i < count; i++) {
        await w.write(chunk);
        await new Promise((resolve) => setImmediate(resolve));
      }
    };
    await writeMiB(15);
    assert.deepEqual(calls, [], 'nothing before 16 MiB');
    await writeMiB(1);
    assert.deepEqual(calls, [16], 'at 16 MiB');
    await writeMiB(15);
    assert.deepEqual(calls, [16], 'not before 16 MiB more');
    await writeMiB(1);
    assert.deepEqual(calls, [16, 32], 'and 16 MiB after the last one');
    await writeMiB(36);
    assert.deepEqual(calls, [16, 32, 48], 'not while one is running');
    release?.();
    await new Promise((resolve) => setImmediate(resolve));
    await writeMiB(1);
    assert.deepEqual(calls, [16, 32, 48, 69], 'the next one once it has ended');
    await w.abort();
  }));

test('a blob of exactly 16 MiB starts a writeback at its last byte', (t) =>
  withTemp(async (dir) => {
    let calls = 0;
    replaceFs(t, 'fdatasync', ((_fd: number, callback: () => void) => {
      calls++;
      callback();
    }) as typeof fs.fdatasync);
    const data = Buffer.alloc(16 * MiB, 3);
    const w = writer(dir, data, data.length);
    await w.write(data);
    await w.commit();
    assert.equal(calls, 1);
  }));

test('only commit syncs: a restart and an abort throw the bytes away without an fsync', (t) =>
  withTemp(async (dir) => {
    let syncs = 0;
    const realSync = fs.fsync;
    replaceFs(t, 'fsync', ((fd: number, callback: (err: NodeJS.ErrnoException | null) => void) => {
      syncs++;
      realSync(fd, callback);
    }) as typeof fs.fsync);
    const w = writer(dir, 'kept');
    await w.write(Buffer.from('thrown away'));
    await w.restart();
    assert.equal(syncs, 0, 'restart');
    const dropped = writer(dir, 'dropped');
    await dropped.write(Buffer.from('dropped'));
    await dropped.abort();
    assert.equal(syncs, 0, 'abort');
    await w.write(Buffer.from('kept'));
    await w.commit();
    assert.equal(syncs, 1, 'commit');
  }));

test('an fsync that fails (EIO) fails the commit in one line naming the file, and nothing is kept', (t) =>
  withTemp(async (dir) => {
    replaceFs(t, 'fsync', ((_fd: number, callback: (err: NodeJS.ErrnoException | null) => void) => {
      callback(Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO', errno: -5, syscall: 'fsync' }));
    }) as typeof fs.fsync);
    const w = writer(dir, 'lost');
    await w.write(Buffer.from('lost'));
    await assert.rejects(w.commit(), (e: unknown) => e instanceof StoreWriteError && e.message === `cannot write ${join(dir, 'blob.part')}: input/output error`);
    assert.deepEqual(readdirSync(dir), []);
  }));

test('drain: at once when nothing is behind; with many waits, no listener is left on the file (no MaxListeners warning)', () =>
  withTemp(async (dir) => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      const data = Buffer.alloc(24 * MiB, 5);
      const w = writer(dir, data, data.length);
      await w.drain();
      assert.equal(w.append(Buffer.alloc(0)), true);
      await w.drain();
      for (let i = 0; i < data.length; i += MiB) {
        assert.equal(w.append(data.subarray(i, i + MiB)), false, 'a chunk of the stream\'s size fills it');
        await w.drain();
      }
      await w.commit();
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(warnings.map((e) => e.name), []);
      assert.ok(readFileSync(join(dir, 'blob')).equals(data));
    } finally {
      process.off('warning', onWarning);
    }
  }));

/** A tmpfs of `options` at DIR/disk for the test; unmounted at its end (and at exit). */
async function withDisk(dir: string, options: string, fn: (disk: string) => Promise<void>): Promise<void> {
  const disk = join(dir, 'disk');
  execFileSync('mkdir', [disk]);
  execFileSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', disk]);
  const cancelUnmount = cleanUpAtExit(() => execFileSync('umount', ['-l', disk]));
  try {
    await fn(disk);
  } finally {
    cancelUnmount();
    execFileSync('umount', ['-l', disk]);
  }
}

test('a full disk: the write of a chunk the file cannot take fails itself, and so does a drain waiting for it', () =>
  withTemp((dir) =>
    withDisk(dir, 'size=256k', async (disk) => {
      const data = Buffer.alloc(2 * MiB, 1);
      const full = (e: unknown) => e instanceof StoreWriteError && e.message === `cannot write ${join(disk, 'blob.part')}: no space left on device`;
      const w = new BlobWriter({ digest: digestOf(data) }, join(disk, 'blob.part'), join(disk, 'blob'));
      await assert.rejects(w.write(data), full);
      await w.abort();
      const appended = new BlobWriter({ digest: digestOf(data) }, join(disk, 'blob.part'), join(disk, 'blob'));
      assert.equal(appended.append(data), false);
      await assert.rejects(appended.drain(), full);
      await appended.abort();
      assert.deepEqual(readdirSync(disk), []);
    })));

test('a read-only store: one line saying so, for an empty blob as for any other', () =>
  withTemp((dir) =>
    withDisk(dir, 'ro,size=64k', async (disk) => {
      const readOnly = (e: unknown) => e instanceof StoreWriteError && e.message === `cannot write ${join(disk, 'blob.part')}: read-only file system`;
      await assert.rejects(new BlobWriter({ digest: digestOf(Buffer.alloc(0)), size: 0 }, join(disk, 'blob.part'), join(disk, 'blob')).commit(), readOnly);
      assert.throws(() => new BlobWriter({ digest: digestOf(Buffer.from('x')) }, join(disk, 'blob.part'), join(disk, 'blob')).append(Buffer.from('x')), readOnly);
    })));

test('a store out of inodes: an empty blob fails with that, not with the rename that follows', () =>
  withTemp((dir) =>
    withDisk(dir, 'size=64k,nr_inodes=1', async (disk) => {
      const full = (e: unknown) => e instanceof StoreWriteError && e.message === `cannot write ${join(disk, 'blob.part')}: no space left on device`;
      await assert.rejects(new BlobWriter({ digest: digestOf(Buffer.alloc(0)), size: 0 }, join(disk, 'blob.part'), join(disk, 'blob')).commit(), full);
      assert.deepEqual(readdirSync(disk), []);
    })));
