/**
 * A docker-archive read in process (mutation testing found it reached only through img-fetch
 * in another process): the OCI manifest built for it (a gzip layer hashed, a plain one named
 * by its diff_id), the entry chosen by tag in either form, its default name, each blob read
 * from its byte range, and what a crafted archive is refused for, in one line naming it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { create as createTar } from 'tar';
import { digestOf } from '../../../lib/core/digest.js';
import { NotFoundError, UnsupportedError } from '../../../lib/core/errors.js';
import { openArchiveImage } from '../../../lib/image/transport/archive-source.js';
import { MEDIA_TYPES } from '../../../lib/image/model.js';
import { tempDir } from '../../helpers/paths.js';
import { ustar } from '../../helpers/ustar.js';

let work: { path: string; cleanup: () => Promise<void> };
before(async () => {
  work = await tempDir('cp-archive-source-');
});
after(() => work?.cleanup());

const plain = ustar([{ name: 'etc/', type: 'dir' }, { name: 'etc/hostname', type: 'file', content: 'box\n' }]);
const zipped = gzipSync(ustar([{ name: 'usr/', type: 'dir' }]));
const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [digestOf(plain), digestOf(ustar([{ name: 'usr/', type: 'dir' }]))] } }));

/** A docker save archive of these files (manifest.json as given), its path. */
async function archive(name: string, manifest: unknown, files: Record<string, Buffer | string> = {}): Promise<string> {
  const content = join(work.path, name);
  await mkdir(content, { recursive: true });
  const all = { 'manifest.json': typeof manifest === 'string' ? manifest : JSON.stringify(manifest), ...files };
  for (const [file, data] of Object.entries(all)) await writeFile(join(content, file), data);
  const path = join(work.path, `${name}.tar`);
  await createTar({ cwd: content, file: path, portable: true }, Object.keys(all));
  return path;
}

const files = { 'c.json': config, 'plain.tar': plain, 'zipped.tar': zipped, 'empty.tar': '' };
const entry = (tags: string[] | null, layers = ['plain.tar', 'zipped.tar']) => ({ Config: 'c.json', RepoTags: tags, Layers: layers });

async function read(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

test('the manifest made for an archive: a gzip layer hashed, a plain one named by its diff_id; blobs read by range', async () => {
  const path = await archive('two', [entry(['lab/box:1'])], files);
  const image = await openArchiveImage(path, undefined);
  assert.equal(image.description, `docker-archive:${path}`);
  assert.deepEqual(image.manifest.layers, [
    { mediaType: MEDIA_TYPES.ociLayer, digest: digestOf(plain), size: plain.length },
    { mediaType: MEDIA_TYPES.ociLayerGzip, digest: digestOf(zipped), size: zipped.length },
  ]);
  assert.deepEqual(image.manifest.config, { mediaType: MEDIA_TYPES.ociConfig, digest: digestOf(config), size: config.length });
  assert.equal(image.top.digest, digestOf(image.top.body));
  assert.deepEqual(JSON.parse(image.top.body.toString()), image.manifest);
  assert.equal(image.defaultName, 'docker.io/lab/box:1');
  assert.deepEqual(await image.config(), JSON.parse(config.toString()));
  assert.deepEqual(await read(await image.openBlob(image.manifest.config)), config);
  assert.deepEqual(await read(await image.openBlob(image.manifest.layers[0]!)), plain);
  assert.deepEqual(await read(await image.openBlob(image.manifest.layers[1]!)), zipped);
  const missing = digestOf(Buffer.from('x'));
  await assert.rejects(image.openBlob({ mediaType: MEDIA_TYPES.ociLayer, digest: missing, size: 1 }), (e: unknown) => e instanceof NotFoundError && e.message === `docker-archive:${path}: no blob ${missing} in the archive`);
});

test('a plain layer the config names no diff_id for is hashed; an empty or one-byte layer is not gzip', async () => {
  const noDiffs = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
  const path = await archive('nodiffs', [{ Config: 'c.json', Layers: ['plain.tar', 'empty.tar', 'one.tar'] }], { ...files, 'c.json': noDiffs, 'one.tar': '\x1f' });
  const image = await openArchiveImage(path, undefined);
  assert.deepEqual(
    image.manifest.layers.map((l) => [l.mediaType, l.digest, l.size]),
    [
      [MEDIA_TYPES.ociLayer, digestOf(plain), plain.length],
      [MEDIA_TYPES.ociLayer, digestOf(Buffer.alloc(0)), 0],
      [MEDIA_TYPES.ociLayer, digestOf(Buffer.from('\x1f')), 1],
    ],
  );
  assert.deepEqual(await read(await image.openBlob(image.manifest.layers[1]!)), Buffer.alloc(0));
  assert.equal(image.defaultName, `docker-archive:${path}@${image.top.digest}`, 'no tag: the archive and the digest');
});

test('an entry chosen by its tag, short or in full; a tag not there is refused naming it', async () => {
  const path = await archive('tags', [entry(['lab/a:1']), entry(['docker.io/library/busybox:latest', 'lab/b:2'], ['zipped.tar'])], files);
  assert.equal((await openArchiveImage(path, 'busybox')).manifest.layers.length, 1);
  assert.equal((await openArchiveImage(path, 'lab/b:2')).defaultName, 'docker.io/lab/b:2', 'the name asked for');
  assert.equal((await openArchiveImage(path, 'docker.io/lab/a:1')).manifest.layers.length, 2);
  assert.equal((await openArchiveImage(path, undefined)).defaultName, 'docker.io/lab/a:1', 'no name: the first entry');
  await assert.rejects(openArchiveImage(path, 'lab/c:3'), (e: unknown) => e instanceof NotFoundError && e.message === `docker-archive:${path}: no image tagged "lab/c:3" in the archive`);
  const untagged = await archive('untagged', [entry(null)], files);
  await assert.rejects(openArchiveImage(untagged, 'x'), NotFoundError);
  const none = await archive('none', [], files);
  await assert.rejects(openArchiveImage(none, undefined), (e: unknown) => e instanceof NotFoundError && e.message.startsWith(`docker-archive:${none}: no image `) && e.message.endsWith(' in the archive'));
  const odd = await archive('odd', [entry(['not a valid reference!'])], files);
  assert.equal((await openArchiveImage(odd, 'not a valid reference!')).defaultName, 'not a valid reference!', 'a tag that does not parse is kept as it is');
});

test('crafted archives are refused in one line naming what is wrong', async () => {
  const refused = async (path: string, message: string) => assert.rejects(openArchiveImage(path, undefined), (e: unknown) => e instanceof UnsupportedError && e.message === message);
  const noManifest = join(work.path, 'nomanifest.tar');
  await mkdir(join(work.path, 'nm'));
  await writeFile(join(work.path, 'nm', 'x'), 'x');
  await createTar({ cwd: join(work.path, 'nm'), file: noManifest }, ['x']);
  await refused(noManifest, `docker-archive:${noManifest}: no manifest.json (not a docker save archive)`);
  const notJson = await archive('notjson', '[{', files);
  await refused(notJson, `docker-archive:${notJson}: manifest.json is not valid JSON`);
  const missing = await archive('missing', [entry(['a:1'], ['gone.tar'])], files);
  await refused(missing, `docker-archive:${missing}: gone.tar is named in manifest.json but not in the archive`);
  const noConfig = await archive('noconfig', [{ Config: 'gone.json', Layers: [] }], files);
  await refused(noConfig, `docker-archive:${noConfig}: gone.json is named in manifest.json but not in the archive`);
  const badTags = await archive('badtags', [{ Config: 'c.json', RepoTags: [1], Layers: [] }], files);
  await assert.rejects(openArchiveImage(badTags, undefined), /manifest\.json: \[0\]\.RepoTags/);
});
