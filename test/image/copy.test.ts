/**
 * The copy's smaller promises: an image with many layers pulls without node's listener
 * warning, an image for another platform comes with a warning, a failed tag leaves no
 * manifest behind, and a bare file name is not taken for a Docker Hub image.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, truncate, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { arch } from 'node:os';
import { assertOneLineError, mustExec, tool } from '../helpers/exec.js';
import { tempDir } from '../helpers/paths.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { skopeoPush, writeRandomImage } from '../helpers/images.js';
import { OciLayout } from '../../lib/image/store/oci-layout.js';

const OTHER_ARCH = arch() === 'arm64' ? 'amd64' : 'arm64';

describe('img-fetch: the copy', () => {
  let work: { path: string; cleanup: () => Promise<void> };
  let registry: TestRegistry;
  let layout: string;
  let many: { manifest: { digest: string } };

  before(async () => {
    work = await tempDir('cp-copy-');
    layout = join(work.path, 'layout');
    registry = await startRegistry();
    many = await writeRandomImage(layout, 'many', Array.from({ length: 12 }, (_, i) => (256 << 10) + i));
    await writeRandomImage(layout, 'other', [2048], OTHER_ARCH);
    await skopeoPush(`oci:${layout}:many`, `docker://${registry.host}/lab/many:latest`);
  });
  after(async () => {
    await registry?.stop();
    await work?.cleanup();
  });

  test('12 layers from a registry, all at once: no MaxListenersExceededWarning, nothing on stderr', async () => {
    const store = join(work.path, 'store-many');
    const result = await tool('img-fetch', [`docker://${registry.host}/lab/many:latest`, '--tls-verify=false', '--store', store, '--jobs', '16']);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stderr, '');
  });

  test('an image for another platform is fetched with a warning naming both platforms', async () => {
    const result = await tool('img-fetch', [`oci:${layout}:other`, '--store', join(work.path, 'store-other')]);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stderr, new RegExp(`^img-fetch: warning: .* is an image for linux/${OTHER_ARCH}, not for this host \\(linux/`));
    assert.equal(result.stderr.split('\n').length, 2, 'one line');
  });

  test('a failed tag (index.json unreadable) leaves no unreferenced manifest blob', async () => {
    const store = join(work.path, 'store-badindex');
    await OciLayout.open(store, { create: true });
    await writeFile(join(store, 'index.json'), '{ not json');
    const result = await tool('img-fetch', [`oci:${layout}:many`, '--store', store]);
    assertOneLineError(result, 'img-fetch', 1, /index\.json: not valid JSON/);
    assert.ok(!(await readdir(join(store, 'blobs', 'sha256'))).includes(many.manifest.digest.slice(7)), 'the manifest blob was left behind');
  });

  test('a bare name that is a tar archive, a compressed file or an OCI layout here: exit 2, says docker-archive:, tarball: or oci:, no registry asked', async () => {
    await writeFile(join(work.path, 'README'), 'a file that is no image');
    await mustExec('tar', ['-cf', join(work.path, 'debian.tar'), '-C', work.path, 'README']);
    const result = await tool('img-fetch', ['debian.tar', '--store', join(work.path, 'store-file')], { cwd: work.path });
    assertOneLineError(result, 'img-fetch', 2, /"debian\.tar" is a tar archive here.*say docker-archive:debian\.tar \(a docker save archive\) or tarball:debian\.tar \(a root filesystem\)/);
    await mustExec('sh', ['-c', `gzip -c ${join(work.path, 'debian.tar')} > ${join(work.path, 'rootfs.tar.gz')}`]);
    const compressed = await tool('img-fetch', ['rootfs.tar.gz', '--store', join(work.path, 'store-file')], { cwd: work.path });
    assertOneLineError(compressed, 'img-fetch', 2, /"rootfs\.tar\.gz" is a compressed file here.*say tarball:rootfs\.tar\.gz/);
    const dirResult = await tool('img-fetch', ['layout', '--store', join(work.path, 'store-file')], { cwd: work.path });
    assertOneLineError(dirResult, 'img-fetch', 2, /"layout" is an OCI layout here.*say oci:layout/);
    // A file that is no image (the busybox binary beside you) does not stop a pull of that name.
    const other = await tool('img-fetch', ['README', '--store', join(work.path, 'store-file')], { cwd: work.path, timeoutMs: 60_000 });
    assert.doesNotMatch(other.stderr, /is a tar archive|is an OCI layout/);
  });

  test('--timeout stops a copy from an OCI layout too, not only from a registry', async () => {
    // A layer of 8 GiB (sparse: no disk is used) takes seconds to hash; a 1 s deadline must stop it.
    const huge = join(work.path, 'huge-layout');
    const image = await writeRandomImage(huge, 'huge', [1024]);
    const layer = image.layers[0] as { digest: string; size: number };
    const size = 8 * 1024 ** 3;
    await truncate(join(huge, 'blobs', 'sha256', layer.digest.slice(7)), size);
    const manifestPath = join(huge, 'blobs', 'sha256', image.manifest.digest.slice(7));
    const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as { layers: Array<{ size: number }> };
    (manifest.layers[0] as { size: number }).size = size;
    const body = JSON.stringify(manifest);
    const digest = createHash('sha256').update(body).digest('hex');
    await writeFile(join(huge, 'blobs', 'sha256', digest), body);
    const index = JSON.parse(await readFile(join(huge, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string; size: number }> };
    for (const entry of index.manifests) if (entry.digest === image.manifest.digest) Object.assign(entry, { digest: `sha256:${digest}`, size: body.length });
    await writeFile(join(huge, 'index.json'), JSON.stringify(index));
    const store = join(work.path, 'store-huge');
    const result = await tool('img-fetch', [`oci:${huge}:huge`, '--store', store, '--timeout', '1s'], { timeoutMs: 120_000 });
    assertOneLineError(result, 'img-fetch', 1, /timed out after 1 s \(--timeout\)/);
  });
});
