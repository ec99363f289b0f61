/**
 * The store's layout in process, at the edges mutation testing found unchecked: what open
 * refuses and when it sweeps, reading blobs (missing, corrupt, the wrong size), what index.json
 * names and how a name is resolved or replaced, and what a failed tag takes back.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { digestOf } from '../../../lib/core/digest.js';
import { DigestMismatchError } from '../../../lib/core/errors.js';
import { OciLayout } from '../../../lib/image/store/oci-layout.js';
import { BlobNotExistError, InvalidLayoutError, NameNotExistError, StoreWriteError } from '../../../lib/image/store/errors.js';
import { MEDIA_TYPES, REF_NAME_ANNOTATION, type Descriptor } from '../../../lib/image/model.js';
import { withTempDir } from '../../helpers/paths.js';

const withTemp = (fn: (dir: string) => Promise<void>) => withTempDir('cp-oci-layout-', fn);

const names = async (layout: OciLayout) => (await layout.readIndex()).manifests.map((m) => m.annotations?.[REF_NAME_ANNOTATION]);

async function* never(): AsyncGenerator<Buffer> {
  throw new Error('the source was read');
}

test('open: an oci-layout that is not JSON, of another version, or not a file is refused as it is', () =>
  withTemp(async (dir) => {
    await writeFile(join(dir, 'oci-layout'), '{');
    await assert.rejects(OciLayout.open(dir), (e: unknown) => e instanceof InvalidLayoutError && e.message === `${join(dir, 'oci-layout')}: not valid JSON`);
    await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"9"}');
    await assert.rejects(OciLayout.open(dir, { create: true }), (e: unknown) => e instanceof InvalidLayoutError && e.message === `${dir}: unsupported imageLayoutVersion "9"`);
    const other = join(dir, 'other');
    await mkdir(join(other, 'oci-layout'), { recursive: true });
    await assert.rejects(OciLayout.open(other), { code: 'EISDIR' });
  }));

test('open with create: a layout that cannot be made is a write error naming the path', () =>
  withTemp(async (dir) => {
    await writeFile(join(dir, 'blobs'), 'a file where the blobs go');
    await assert.rejects(OciLayout.open(dir, { create: true }), (e: unknown) => e instanceof StoreWriteError && e.message.startsWith(`cannot write ${join(dir, 'blobs')}`));
    assert.ok(!existsSync(join(dir, 'oci-layout')));
  }));

test('open with create keeps an index.json already there; open sweeps dead staging dirs only when writing', () =>
  withTemp(async (dir) => {
    const entry = { mediaType: MEDIA_TYPES.ociManifest, digest: digestOf(Buffer.from('m')), size: 1, annotations: { [REF_NAME_ANNOTATION]: 'kept' } };
    await writeFile(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [entry] }));
    const layout = await OciLayout.open(dir, { create: true });
    assert.deepEqual(await names(layout), ['kept']);
    // A staging dir of a pid that cannot exist, without a holder record: a killed pull's.
    const dead = join(dir, '.staging-2147483646-abcd');
    await mkdir(dead);
    await OciLayout.open(dir);
    assert.ok(existsSync(dead), 'a reader does not sweep');
    await OciLayout.open(dir, { create: true });
    assert.ok(!existsSync(dead), 'a writer does');
  }));

test('blobs: a missing one is BlobNotExistError, a corrupt or wrongly sized one DigestMismatchError; a good one reads, parses and streams', () =>
  withTemp(async (dir) => {
    const layout = await OciLayout.open(dir, { create: true });
    const data = Buffer.from('{"a":1}');
    const descriptor = await layout.putBytes(data, 'x');
    assert.deepEqual(descriptor, { mediaType: 'x', digest: digestOf(data), size: data.length });
    const missing = digestOf(Buffer.from('missing'));
    await assert.rejects(layout.readBlob(missing), (e: unknown) => e instanceof BlobNotExistError && e.digest === missing && e.message === `blob ${missing} is not in the store ${dir}`);
    await assert.rejects(layout.readVerifiedBlob({ digest: missing }), BlobNotExistError);
    assert.deepEqual(await layout.readJson(descriptor), { a: 1 });
    assert.deepEqual(await layout.readVerifiedBlob({ digest: descriptor.digest }), data, 'no size: the digest alone');
    await assert.rejects(layout.readVerifiedBlob({ digest: descriptor.digest, size: data.length + 1 }), DigestMismatchError);
    const chunks: Buffer[] = [];
    for await (const chunk of layout.openBlob(descriptor.digest)) chunks.push(chunk as Buffer);
    assert.deepEqual(Buffer.concat(chunks), data);
    await writeFile(layout.blobPath(descriptor.digest), '{"a":2}');
    await assert.rejects(
      layout.readJson(descriptor),
      (e: unknown) => e instanceof DigestMismatchError && e.message === `blob ${descriptor.digest} in ${dir} is corrupt (content has digest ${digestOf(Buffer.from('{"a":2}'))})`,
    );
    await mkdir(layout.blobPath(missing));
    await assert.rejects(layout.readBlob(missing), { code: 'EISDIR' });
  }));

test('putBlob: a blob already there is not read again', () =>
  withTemp(async (dir) => {
    const layout = await OciLayout.open(dir, { create: true });
    const data = Buffer.from('blob');
    await layout.putBytes(data, 'x');
    await layout.putBlob(never(), { digest: digestOf(data), size: data.length });
    await assert.rejects(layout.putBlob(never(), { digest: digestOf(Buffer.from('other')) }), /the source was read/);
  }));

test('index.json: missing or not JSON is refused in one line', () =>
  withTemp(async (dir) => {
    const layout = await OciLayout.open(dir, { create: true });
    await writeFile(join(dir, 'index.json'), '[');
    await assert.rejects(layout.readIndex(), (e: unknown) => e instanceof InvalidLayoutError && e.message === `${join(dir, 'index.json')}: not valid JSON`);
    await assert.rejects(layout.resolve('x'), InvalidLayoutError);
    const { rm } = await import('node:fs/promises');
    await rm(join(dir, 'index.json'));
    await assert.rejects(layout.readIndex(), (e: unknown) => e instanceof NameNotExistError && e.message === `${dir}: no index.json`);
  }));

test('resolve: no name takes the only image or names those there; a name takes its last entry; unnamed entries are passed over', () =>
  withTemp(async (dir) => {
    const layout = await OciLayout.open(dir, { create: true });
    await assert.rejects(layout.resolve(undefined), (e: unknown) => e instanceof NameNotExistError && e.message === `${dir}: 0 images in the layout; name one (it names no images)`);
    const one = await layout.putBytes(Buffer.from('one'), MEDIA_TYPES.ociManifest);
    const two = await layout.putBytes(Buffer.from('two'), MEDIA_TYPES.ociManifest);
    await layout.tag('a', one);
    assert.equal((await layout.resolve(undefined)).digest, one.digest);
    // An entry without a name (as some writers leave), and the same name twice (a hand edit).
    const index = await layout.readIndex();
    index.manifests.push(two, { ...two, annotations: { [REF_NAME_ANNOTATION]: 'b' } }, { ...one, annotations: { [REF_NAME_ANNOTATION]: 'b' } });
    await writeFile(join(dir, 'index.json'), JSON.stringify(index));
    assert.equal((await layout.resolve('b')).digest, one.digest, 'the last entry of a name');
    await assert.rejects(layout.resolve(undefined), (e: unknown) => e instanceof NameNotExistError && e.message === `${dir}: 4 images in the layout; name one (it has: a, b, b)`);
    await assert.rejects(layout.resolve('c'), (e: unknown) => e instanceof NameNotExistError && e.message === `${dir}: no image named "c" (it has: a, b, b)`);
  }));

test('tag: a name replaces only its own entry, keeps the descriptor\'s annotations and platform, and adds no platform of its own', () =>
  withTemp(async (dir) => {
    const layout = await OciLayout.open(dir, { create: true });
    const one = await layout.putBytes(Buffer.from('one'), MEDIA_TYPES.ociManifest);
    const two = await layout.putBytes(Buffer.from('two'), MEDIA_TYPES.ociManifest);
    const index = await layout.readIndex();
    index.manifests.push(two);
    await writeFile(join(dir, 'index.json'), JSON.stringify(index));
    await layout.tag('a', { ...one, annotations: { 'org.example': 'v' }, platform: { os: 'linux', architecture: 'arm64' } });
    await layout.tag('b', two);
    await layout.tag('a', two);
    assert.deepEqual(await names(layout), [undefined, 'b', 'a']);
    const entries = (await layout.readIndex()).manifests;
    assert.deepEqual(entries[2], { mediaType: two.mediaType, digest: two.digest, size: two.size, annotations: { [REF_NAME_ANNOTATION]: 'a' } });
    await layout.tag('c', { ...one, annotations: { 'org.example': 'v', [REF_NAME_ANNOTATION]: 'old' }, platform: { os: 'linux', architecture: 'arm64' } });
    assert.deepEqual((await layout.resolve('c')).annotations, { 'org.example': 'v', [REF_NAME_ANNOTATION]: 'c' });
    assert.deepEqual((await layout.resolve('c')).platform, { os: 'linux', architecture: 'arm64' });
    assert.equal(JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')).schemaVersion, 2);
  }));

test('a failed tag removes the placed blobs index.json does not name, and only those', () =>
  withTemp(async (dir) => {
    const layout = await OciLayout.open(dir, { create: true });
    const named = await layout.putBytes(Buffer.from('named'), MEDIA_TYPES.ociManifest);
    const fresh = await layout.putBytes(Buffer.from('fresh'), MEDIA_TYPES.ociManifest);
    await layout.tag('named', named);
    // A descriptor whose annotations cannot be read: the tag fails after index.json was read.
    const failing: Descriptor = { ...fresh, annotations: new Proxy({}, { ownKeys: () => { throw new Error('unreadable'); } }) };
    await assert.rejects(layout.tag('fresh', failing, [named.digest, fresh.digest]), /unreadable/);
    assert.equal(await layout.hasBlob(named.digest), true, 'named by index.json: kept');
    assert.equal(await layout.hasBlob(fresh.digest), false, 'placed and not named: removed');
    assert.deepEqual(await names(layout), ['named']);
    // With index.json unreadable, the tag fails with that error and nothing is removed unasked.
    await writeFile(join(dir, 'index.json'), '[');
    await assert.rejects(layout.tag('x', named), InvalidLayoutError);
    assert.equal(await layout.hasBlob(named.digest), true);
  }));
