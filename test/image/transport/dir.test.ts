/**
 * skopeo's dir: layout as a sink, in process (mutation testing found it reached only through
 * the tools in other processes): an image written whole (its blobs by hex digest, the manifest
 * as the source served it, the version file), an image written over another (its blobs go,
 * files that are not blobs stay), and what is refused or left after a failure.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { digestHex, digestOf } from '../../../lib/core/digest.js';
import { ClobberError } from '../../../lib/core/errors.js';
import { OciLayout } from '../../../lib/image/store/oci-layout.js';
import { StoreWriteError } from '../../../lib/image/store/errors.js';
import { openLayoutImage } from '../../../lib/image/transport/oci-source.js';
import { DirLayout, dirSink } from '../../../lib/image/transport/dir.js';
import { MEDIA_TYPES } from '../../../lib/image/model.js';
import type { BlobCopyOptions, Image } from '../../../lib/image/image.js';
import { tempDir } from '../../helpers/paths.js';

let work: { path: string; cleanup: () => Promise<void> };
let source: string;
const amd64 = { os: 'linux', architecture: 'amd64' };
const copy: BlobCopyOptions = { signal: new AbortController().signal, progress: { add: () => undefined, note: () => undefined, done: () => undefined, failed: () => undefined } as unknown as BlobCopyOptions['progress'] };

/** An image of one layer with this content, tagged `tag` in the source layout. */
async function image(tag: string, content: string): Promise<Image> {
  const layout = await OciLayout.open(source, { create: true });
  const layer = await layout.putBytes(Buffer.from(content), MEDIA_TYPES.ociLayer);
  const config = await layout.putBytes(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layer.digest] } })), MEDIA_TYPES.ociConfig);
  const manifest = await layout.putBytes(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociManifest, config, layers: [layer] })), MEDIA_TYPES.ociManifest);
  await layout.tag(tag, manifest);
  return openLayoutImage(source, tag, { platform: amd64 });
}

/** Writes `img` into the dir: at `dest` as img-fetch/img-copy do (blobs, manifest, commit). */
async function write(dest: string, img: Image): Promise<void> {
  const sink = await dirSink(dest);
  assert.equal(sink.layout, 'dir');
  const txn = await sink.begin();
  for (const blob of [img.manifest.config, ...img.manifest.layers]) if (!(await txn.hasBlob(blob.digest, blob.size))) await txn.putBlob(img, blob, copy);
  const descriptor = await txn.stageManifest(img, 'x');
  assert.deepEqual(descriptor, { mediaType: img.rawManifest.mediaType, digest: img.rawManifest.digest, size: img.rawManifest.body.length });
  await txn.commit(descriptor, 'x', amd64);
}

before(async () => {
  work = await tempDir('cp-dir-');
  source = join(work.path, 'source');
});
after(() => work?.cleanup());

test('an image is written whole: blobs by hex digest, the manifest as served, the version file; written over, the old blobs go', async () => {
  const dest = join(work.path, 'new/dir');
  const one = await image('one', 'layer one');
  await write(dest, one);
  const blobs = [one.manifest.config.digest, one.manifest.layers[0]!.digest].map(digestHex);
  assert.deepEqual(readdirSync(dest).sort(), [...blobs, 'manifest.json', 'version'].sort());
  assert.deepEqual(readFileSync(join(dest, 'manifest.json')), one.rawManifest.body);
  assert.equal(readFileSync(join(dest, 'version'), 'utf8'), 'Directory Transport Version: 1.1\n');
  assert.equal(readFileSync(join(dest, digestHex(one.manifest.layers[0]!.digest)), 'utf8'), 'layer one');
  const sink = await dirSink(dest);
  assert.equal(await sink.hasBlob(one.manifest.layers[0]!.digest, 9), true);
  assert.equal(await sink.hasBlob(one.manifest.layers[0]!.digest, 8), false);
  assert.equal(sink.blobPath(one.manifest.config.digest), join(dest, digestHex(one.manifest.config.digest)));

  await writeFile(join(dest, 'notes.txt'), 'mine');
  await writeFile(join(dest, `${'a'.repeat(64)}.sig`), 'not a blob');
  const two = await image('two', 'layer two');
  await write(dest, two);
  const kept = [two.manifest.config.digest, two.manifest.layers[0]!.digest].map(digestHex);
  assert.deepEqual(readdirSync(dest).sort(), [...kept, `${'a'.repeat(64)}.sig`, 'manifest.json', 'notes.txt', 'version'].sort());
  assert.deepEqual(readFileSync(join(dest, 'manifest.json')), two.rawManifest.body);
});

test('refused: a foreign non-empty directory, with a hint; a path under a file is a write error; an empty dir is fine', async () => {
  const foreign = join(work.path, 'foreign');
  await mkdir(foreign);
  await writeFile(join(foreign, 'x'), 'x');
  await assert.rejects(DirLayout.create(foreign), (e: unknown) => e instanceof ClobberError && e.message === `${foreign}: not empty and not a dir: layout; refusing to write into it` && e.hint === 'give a new or empty directory');
  await assert.rejects(DirLayout.create(join(foreign, 'x', 'sub')), { code: 'ENOTDIR' });
  const empty = join(work.path, 'empty');
  await mkdir(empty);
  await write(empty, await image('three', 'layer three'));
  assert.ok(existsSync(join(empty, 'manifest.json')));
});

test('abort: a directory it made goes, one that was there stays as it was', async () => {
  const img = await image('four', 'layer four');
  const made = join(work.path, 'made');
  const sink = await dirSink(made);
  const txn = await sink.begin();
  await txn.putBlob(img, img.manifest.layers[0]!, copy);
  await txn.abort();
  assert.equal(existsSync(made), false);
  const there = join(work.path, 'there');
  await mkdir(there);
  const again = await (await dirSink(there)).begin();
  await again.putBlob(img, img.manifest.layers[0]!, copy);
  await again.abort();
  assert.deepEqual(readdirSync(there), []);
  const missingParent = join(work.path, 'file');
  await writeFile(missingParent, 'x');
  await assert.rejects(dirSink(join(missingParent, 'd')), { code: 'ENOTDIR' });
  assert.equal(digestOf(Buffer.from('layer four')), img.manifest.layers[0]!.digest);
});

test('a commit that cannot write its manifest is a write error naming it', async () => {
  const img = await image('five', 'layer five');
  const dest = join(work.path, 'ro');
  const sink = await dirSink(dest);
  const txn = await sink.begin();
  await txn.putBlob(img, img.manifest.config, copy);
  await txn.putBlob(img, img.manifest.layers[0]!, copy);
  const descriptor = await txn.stageManifest(img, 'x');
  await mkdir(join(dest, 'manifest.json'));
  await writeFile(join(dest, 'manifest.json', 'x'), 'a directory in the way');
  await assert.rejects(txn.commit(descriptor, 'x', amd64), (e: unknown) => e instanceof StoreWriteError && e.message.includes('manifest.json'));
  await assert.rejects(DirLayout.create(join(dest, 'manifest.json', 'x', 'y')), { code: 'ENOTDIR' });
  assert.ok(existsSync(join(dest, digestHex(img.manifest.layers[0]!.digest))), 'the blobs were committed first');
  assert.ok(!readdirSync(dest).includes('version'));
});
