/**
 * An OCI layout as a source, in process (mutation testing found it reached only through the
 * tools in other processes): how it is described and named, an image chosen by name or alone,
 * an index resolved to the platform's manifest, every blob verified, a missing one refused.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { BlobWriter } from '../../../lib/image/store/blob-writer.js';
import type { BlobCopyOptions } from '../../../lib/image/image.js';
import { join } from 'node:path';
import { digestOf } from '../../../lib/core/digest.js';
import { DigestMismatchError, NotFoundError } from '../../../lib/core/errors.js';
import { OciLayout } from '../../../lib/image/store/oci-layout.js';
import { layoutImage, openLayoutImage } from '../../../lib/image/transport/oci-source.js';
import { MEDIA_TYPES } from '../../../lib/image/model.js';
import { tempDir } from '../../helpers/paths.js';

let work: { path: string; cleanup: () => Promise<void> };
let layoutPath: string;
const amd64 = { os: 'linux', architecture: 'amd64' };
const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [digestOf(Buffer.from('layer'))] } }));
const layer = Buffer.from('layer');

before(async () => {
  work = await tempDir('cp-oci-source-');
  layoutPath = join(work.path, 'My Layout');
  const layout = await OciLayout.open(layoutPath, { create: true });
  const configDescriptor = await layout.putBytes(config, MEDIA_TYPES.ociConfig);
  const layerDescriptor = await layout.putBytes(layer, MEDIA_TYPES.ociLayer);
  const manifest = await layout.putBytes(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociManifest, config: configDescriptor, layers: [layerDescriptor] })), MEDIA_TYPES.ociManifest);
  const index = await layout.putBytes(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: [{ ...manifest, platform: amd64 }] })), MEDIA_TYPES.ociIndex);
  await layout.tag('v1', manifest);
  await layout.tag('multi', index);
});
after(() => work?.cleanup());

async function read(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

test('an image by name: described and named after the layout, its config and blobs read and verified', async () => {
  const image = await openLayoutImage(layoutPath, 'v1', { platform: amd64 });
  assert.equal(image.description, `oci:${layoutPath}:v1`);
  assert.equal(image.defaultName, 'localhost/my-layout:v1');
  assert.equal(image.named.annotations?.['org.opencontainers.image.ref.name'], 'v1');
  assert.equal(image.top.digest, image.rawManifest.digest);
  assert.deepEqual(await image.config(), JSON.parse(config.toString()));
  assert.deepEqual(await read(await image.openBlob(image.manifest.layers[0]!)), layer);
  assert.equal(image.blobPath(digestOf(layer)), join(layoutPath, 'blobs', 'sha256', digestOf(layer).slice(7)));
  const missing = { mediaType: MEDIA_TYPES.ociLayer, digest: digestOf(Buffer.from('missing')), size: 7 };
  await assert.rejects(image.openBlob(missing), (e: unknown) => e instanceof NotFoundError && e.message === `oci:${layoutPath}:v1: blob ${missing.digest} is missing from the layout`);
});

test('an index: the platform asked for is resolved, the index stays the top; a description given is used', async () => {
  const debug: string[] = [];
  const image = await layoutImage(await OciLayout.open(layoutPath), 'multi', { platform: amd64, description: 'the store', debug: (m) => debug.push(m) });
  assert.equal(image.description, 'the store');
  assert.equal(image.top.mediaType, MEDIA_TYPES.ociIndex);
  assert.equal(image.rawManifest.mediaType, MEDIA_TYPES.ociManifest);
  assert.equal(image.manifest.layers[0]?.digest, digestOf(layer));
  assert.equal(debug.length, 1);
  assert.equal(image.defaultName, 'localhost/my-layout:multi');
});

test('no name with several images is refused; a corrupt manifest or config is found out', async () => {
  await assert.rejects(openLayoutImage(layoutPath, undefined, { platform: amd64 }), NotFoundError);
  const copy = join(work.path, 'corrupt');
  const layout = await OciLayout.open(copy, { create: true });
  const configDescriptor = await layout.putBytes(config, MEDIA_TYPES.ociConfig);
  const manifest = await layout.putBytes(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociManifest, config: configDescriptor, layers: [] })), MEDIA_TYPES.ociManifest);
  await layout.tag('only', manifest);
  const image = await openLayoutImage(copy, undefined, { platform: amd64 });
  assert.equal(image.description, `oci:${copy}`, 'no name: the layout alone');
  assert.equal(image.defaultName, 'localhost/corrupt:only', 'the name index.json gives');
  await writeFile(layout.blobPath(configDescriptor.digest), '{"architecture":"arm64","os":"linux"}');
  await assert.rejects(image.config(), DigestMismatchError);
  await writeFile(layout.blobPath(manifest.digest), '{}');
  await assert.rejects(openLayoutImage(copy, 'only', { platform: amd64 }), DigestMismatchError);
  await rm(copy, { recursive: true });
  await assert.rejects(openLayoutImage(copy, 'only', { platform: amd64 }), NotFoundError);
});

test('a lone image index.json names no name for: named after the layout; a blob copied into a writer with progress', async () => {
  const lone = join(work.path, 'lone');
  const layout = await OciLayout.open(lone, { create: true });
  const configDescriptor = await layout.putBytes(config, MEDIA_TYPES.ociConfig);
  const layerDescriptor = await layout.putBytes(layer, MEDIA_TYPES.ociLayer);
  const manifest = await layout.putBytes(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociManifest, config: configDescriptor, layers: [layerDescriptor] })), MEDIA_TYPES.ociManifest);
  await writeFile(join(lone, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [manifest] }));
  const image = await openLayoutImage(lone, undefined, { platform: amd64 });
  assert.equal(image.defaultName, 'localhost/lone:latest');
  const writer = new BlobWriter(layerDescriptor, join(work.path, 'copy.part'), join(work.path, 'copy'));
  let progressed = 0;
  await image.copyBlob(layerDescriptor, writer, { signal: new AbortController().signal, progress: { add: (n: number) => (progressed += n) } as unknown as BlobCopyOptions['progress'] });
  await writer.commit();
  assert.deepEqual(await readFile(join(work.path, 'copy')), layer);
  assert.equal(progressed, layer.length);
  await writeFile(layout.blobPath(configDescriptor.digest), '{}');
  await assert.rejects(image.config(), (e: unknown) => e instanceof DigestMismatchError && e.message.startsWith(`blob ${configDescriptor.digest} in ${lone} is corrupt`));
});
