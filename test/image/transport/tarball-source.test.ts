/**
 * A root filesystem tar as a one-layer image (tarball:FILE), in process (mutation testing found
 * it reached only through img-fetch in another process): the layer as the file is (its media
 * type by its compression, its digest and the diff_id of its content), the config (platform,
 * diff_id, a history entry dated by the file), the default name made of the file name, the
 * blobs, and what is refused.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { digestOf } from '../../../lib/core/digest.js';
import { NotFoundError, UnsupportedError } from '../../../lib/core/errors.js';
import { openTarballImage } from '../../../lib/image/transport/tarball-source.js';
import { MEDIA_TYPES } from '../../../lib/image/model.js';
import { tempDir } from '../../helpers/paths.js';
import { ustar } from '../../helpers/ustar.js';

let work: { path: string; cleanup: () => Promise<void> };
before(async () => {
  work = await tempDir('cp-tarball-source-');
});
after(() => work?.cleanup());

const tar = ustar([{ name: 'etc/', type: 'dir' }, { name: 'etc/hostname', type: 'file', content: 'box\n' }]);
const platform = { os: 'linux', architecture: 'arm64', variant: 'v8' };
const WHEN = new Date('2024-01-02T03:04:05.000Z');

async function file(name: string, data: Buffer): Promise<string> {
  const path = join(work.path, name);
  await writeFile(path, data);
  await utimes(path, WHEN, WHEN);
  return path;
}

async function read(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

test('plain, gzip and zstd: the layer is the file, its diff_id the tar inside', async () => {
  const zstd = execFileSync('zstd', ['-c', '-q'], { input: tar });
  for (const [name, data, mediaType] of [
    ['rootfs.tar', tar, MEDIA_TYPES.ociLayer],
    ['rootfs.tar.gz', gzipSync(tar), MEDIA_TYPES.ociLayerGzip],
    ['rootfs.tar.zst', zstd, MEDIA_TYPES.ociLayerZstd],
  ] as const) {
    const path = await file(name, data);
    const image = await openTarballImage(path, { platform });
    assert.equal(image.description, `tarball:${path}`);
    assert.deepEqual(image.manifest.layers, [{ mediaType, digest: digestOf(data), size: data.length }], name);
    const config = await image.config();
    assert.deepEqual(config, {
      created: WHEN.toISOString(),
      architecture: 'arm64',
      os: 'linux',
      variant: 'v8',
      config: {},
      rootfs: { type: 'layers', diff_ids: [digestOf(tar)] },
      history: [{ created: WHEN.toISOString(), created_by: `img-fetch tarball:${name}`, comment: 'imported from a root filesystem tar' }],
    });
    const configBytes = await read(await image.openBlob(image.manifest.config));
    assert.deepEqual(JSON.parse(configBytes.toString()), config);
    assert.equal(image.manifest.config.digest, digestOf(configBytes));
    assert.equal(image.top.digest, digestOf(image.top.body));
    assert.deepEqual(await read(await image.openBlob(image.manifest.layers[0]!)), data);
    assert.equal(image.defaultName, 'localhost/rootfs:latest');
  }
  const noVariant = await openTarballImage(join(work.path, 'rootfs.tar'), { platform: { os: 'linux', architecture: 'amd64' } });
  assert.equal('variant' in (await noVariant.config()), false);
  const other = digestOf(Buffer.from('other'));
  await assert.rejects(noVariant.openBlob({ mediaType: MEDIA_TYPES.ociLayer, digest: other, size: 1 }), (e: unknown) => e instanceof NotFoundError && e.message === `tarball:${join(work.path, 'rootfs.tar')}: no blob ${other}`);
});

test('the default name is made of the file name', async () => {
  for (const [name, expected] of [
    ['My Root FS.tgz', 'localhost/my-root-fs:latest'],
    ['debian.tar.zstd', 'localhost/debian:latest'],
    ['--x--.tar', 'localhost/x:latest'],
    ['###.tar', 'localhost/imported:latest'],
    ['v1.2_a.img', 'localhost/v1.2_a.img:latest'],
  ]) {
    assert.equal((await openTarballImage(await file(name, tar), { platform })).defaultName, expected, name);
  }
});

test('refused: no file, a directory, not a tar, a broken gzip or zstd, a cut tar; an all-zero tar is an empty one', async () => {
  const description = (path: string) => `tarball:${path}`;
  const missing = join(work.path, 'missing.tar');
  await assert.rejects(openTarballImage(missing, { platform }), (e: unknown) => e instanceof NotFoundError && e.message === `${description(missing)}: no such file`);
  await mkdir(join(work.path, 'dir'));
  await assert.rejects(openTarballImage(join(work.path, 'dir'), { platform }), (e: unknown) => e instanceof UnsupportedError && e.message === `${description(join(work.path, 'dir'))}: not a regular file`);
  const notTar = await file('text.tar', Buffer.alloc(1024, 'a'));
  await assert.rejects(openTarballImage(notTar, { platform }), (e: unknown) => e instanceof UnsupportedError && e.message === `${description(notTar)}: not a tar archive (a root filesystem as docker export or tar -c writes it)`);
  const cut = await file('cut.tar', tar.subarray(0, 1000));
  await assert.rejects(openTarballImage(cut, { platform }), UnsupportedError);
  const badGzip = await file('bad.tar.gz', Buffer.concat([gzipSync(tar).subarray(0, 20), Buffer.alloc(20, 0xff)]));
  await assert.rejects(openTarballImage(badGzip, { platform }), (e: unknown) => e instanceof UnsupportedError && e.message.startsWith(`${description(badGzip)}: gzip could not decompress it (`));
  const badZstd = await file('bad.tar.zst', Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), Buffer.alloc(40, 0xff)]));
  await assert.rejects(openTarballImage(badZstd, { platform }), (e: unknown) => e instanceof UnsupportedError && e.message.startsWith(`${description(badZstd)}: zstd could not decompress it (`) && !e.message.includes('\n'));
  const empty = await openTarballImage(await file('empty.tar', Buffer.alloc(1024)), { platform });
  assert.equal(empty.manifest.layers[0]?.size, 1024);
  await assert.rejects(openTarballImage(await file('short-zeros.tar', Buffer.alloc(512)), { platform }), UnsupportedError);
});
