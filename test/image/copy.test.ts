/**
 * The copy's smaller promises: an image with many layers pulls without node's listener
 * warning, an image for another platform comes with a warning, a failed tag leaves no
 * manifest behind, and a bare file name is not taken for a Docker Hub image.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { arch } from 'node:os';
import { assertOneLineError, tool } from '../helpers/exec.js';
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

  test('a bare name that is a file here: exit 2, suggests docker-archive:, no registry asked', async () => {
    await writeFile(join(work.path, 'debian.tar'), 'not really');
    const result = await tool('img-fetch', ['debian.tar', '--store', join(work.path, 'store-file')], { cwd: work.path });
    assertOneLineError(result, 'img-fetch', 2, /"debian\.tar" is a file here.*docker-archive:debian\.tar/);
    const dirResult = await tool('img-fetch', ['layout', '--store', join(work.path, 'store-file')], { cwd: work.path });
    assertOneLineError(dirResult, 'img-fetch', 2, /"layout" is a directory here.*oci:layout/);
  });
});
