/**
 * Blob transactions at the edges mutation testing found unchecked: what counts as staged, what
 * commit reports as its own, aborting twice, a staging area that cannot be made, and which
 * staging directories a sweep takes (dead owners only: never a live one's, never a fresh one
 * without a record, never the layout's own files however old).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, rm, utimes, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { digestOf } from '../../../lib/core/digest.js';
import { currentHolder } from '../../../lib/core/holder.js';
import { OciLayout } from '../../../lib/image/store/oci-layout.js';
import { BlobTransaction, sweepStaging } from '../../../lib/image/store/transaction.js';
import { StoreWriteError } from '../../../lib/image/store/errors.js';
import { withTempDir } from '../../helpers/paths.js';

const withTemp = (fn: (dir: string) => Promise<void>) => withTempDir('cp-transaction-', fn);

async function* chunks(...parts: string[]): AsyncGenerator<Buffer> {
  for (const part of parts) yield Buffer.from(part);
}

test('a blob whose writer was opened but never committed is not staged: not there, and commit skips it', () =>
  withTemp(async (dir) => {
    const layout = await OciLayout.open(dir, { create: true });
    const data = Buffer.from('never written');
    const txn = await layout.begin();
    await txn.blobWriter({ digest: digestOf(data), size: data.length });
    assert.equal(await txn.hasBlob(digestOf(data), data.length), false);
    assert.deepEqual(await txn.commit(), []);
    assert.equal(await layout.hasBlob(digestOf(data)), false);
  }));

test("commit returns only the blobs it placed, in staging order; blobAccess reads staged and placed blobs", () =>
  withTemp(async (dir) => {
    const layout = await OciLayout.open(dir, { create: true });
    const old = await layout.putBytes(Buffer.from('old'), 'x');
    const txn = await layout.begin();
    const access = txn.blobAccess('already in the store');
    assert.equal(access.already, 'already in the store');
    const b = await txn.putBytes(Buffer.from('b'), 'x');
    const a = await txn.putStream(chunks('a', 'a'), 'y');
    assert.deepEqual(a, { mediaType: 'y', digest: digestOf(Buffer.from('aa')), size: 2 });
    await txn.putStream(chunks('old'), 'x');
    assert.deepEqual(await access.readBlob(b.digest), Buffer.from('b'), 'staged');
    assert.deepEqual(await access.readBlob(old.digest), Buffer.from('old'), 'in place');
    assert.equal(await access.hasBlob(a.digest, 2), true);
    assert.equal(await access.hasBlob(a.digest, 3), false);
    assert.deepEqual(await txn.commit(), [b.digest, a.digest]);
    assert.deepEqual(await layout.readBlob(a.digest), Buffer.from('aa'));
    await txn.abort();
    assert.ok(!existsSync(txn.stagingDir));
  }));

test('putStream into a staging area that is gone is a write error and leaves nothing', () =>
  withTemp(async (dir) => {
    const layout = await OciLayout.open(dir, { create: true });
    const txn = await layout.begin();
    await txn.abort();
    await assert.rejects(txn.putStream(chunks('x'), 'x'), (e: unknown) => e instanceof StoreWriteError && e.message.startsWith(`cannot write ${txn.stagingDir}/new.`));
    assert.ok(!existsSync(txn.stagingDir));
  }));

test('a staging area that cannot be made is a write error naming it', () =>
  withTemp(async (dir) => {
    const root = join(dir, 'missing');
    await assert.rejects(BlobTransaction.begin(root, (digest) => join(root, digest)), (e: unknown) => e instanceof StoreWriteError && e.message.startsWith(`cannot write ${join(root, '.staging-new-')}`));
    await sweepStaging(root);
  }));

test("a sweep takes dead owners' staging dirs only: a live holder's, a fresh unnamed one, ours and the layout's own old files stay", () =>
  withTemp(async (dir) => {
    const layout = await OciLayout.open(dir, { create: true });
    const txn = await layout.begin();
    assert.ok(basename(txn.stagingDir).startsWith(`.staging-${process.pid}-`));
    const old = new Date(Date.now() - 24 * 3600_000);
    const make = async (name: string, holder?: object) => {
      await mkdir(join(dir, name));
      await writeFile(join(dir, name, 'x.part'), 'part');
      if (holder) await writeFile(join(dir, name, 'holder.json'), JSON.stringify(holder));
    };
    await make('.staging-live-holder', currentHolder());
    await make('.staging-1-x');
    await make(`.staging-${process.pid}-mine`);
    await make('.staging-new-fresh');
    await make('.staging-2147483646-dead');
    for (const file of ['blobs', 'index.json', 'oci-layout']) await utimes(join(dir, file), old, old);
    await OciLayout.open(dir, { create: true });
    for (const kept of ['.staging-live-holder', '.staging-1-x', `.staging-${process.pid}-mine`, '.staging-new-fresh', 'blobs', 'index.json', 'oci-layout', basename(txn.stagingDir)]) {
      assert.ok(existsSync(join(dir, kept)), kept);
    }
    assert.ok(!existsSync(join(dir, '.staging-2147483646-dead')), 'a pid that does not exist');
    await txn.abort();
    await rm(join(dir, '.staging-new-fresh'), { recursive: true });
  }));
