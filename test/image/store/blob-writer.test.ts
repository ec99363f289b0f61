/**
 * The blob writer at the edges mutation testing found unchecked: a restart starts the file
 * over, an empty blob, sizes and digests that do not match (one line each), writes into a
 * place that is gone, abort with nothing written, no fd left open, and the fsync of the file
 * before its rename into place (seen by strace: a crash after the rename must not leave a
 * named blob whose bytes never reached the disk).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
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
