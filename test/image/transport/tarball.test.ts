/**
 * img-fetch tarball:FILE: a flat root filesystem tar (plain, gzip, zstd) becomes a one-layer
 * image, as skopeo's tarball: transport makes it (the oracle: the same diff_id), that
 * img-unpack unpacks and img-push pushes.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { assertOneLineError, mustExec, tool } from '../../helpers/exec.js';
import { tempDir } from '../../helpers/paths.js';
import { parseDocument } from '../../../lib/cli/pipe.js';

let work: { path: string; cleanup: () => Promise<void> };
let store: string;

async function rootfsTar(name: string, motd: string): Promise<string> {
  const root = join(work.path, `${name}-root`);
  await mkdir(join(root, 'etc'), { recursive: true });
  await writeFile(join(root, 'etc', 'motd'), motd);
  const tar = join(work.path, `${name}.tar`);
  await mustExec('tar', ['--sort=name', '--mtime=@0', '-C', root, '-cf', tar, '.']);
  await mustExec('gzip', ['-kf', tar]);
  await mustExec('zstd', ['-qf', tar, '-o', `${tar}.zst`]);
  return tar;
}

const skopeoDiffID = async (tar: string, layout: string): Promise<string> => {
  await mustExec('skopeo', ['copy', '-q', `tarball:${tar}`, `oci:${layout}:t`]);
  return (JSON.parse(await mustExec('skopeo', ['inspect', '--config', `oci:${layout}:t`])) as { rootfs: { diff_ids: string[] } }).rootfs.diff_ids[0] as string;
};

before(async () => {
  work = await tempDir('cp-tarball-');
  store = join(work.path, 'store');
});
after(async () => {
  await work?.cleanup();
});

test('plain, gzip and zstd: one layer with the diff_id skopeo\'s tarball: gives (and another tar\'s differs); img-unpack unpacks it', async () => {
  const tar = await rootfsTar('a', 'hello\n');
  const expected = await skopeoDiffID(tar, join(work.path, 'sk-a'));
  const digests = new Set<string>();
  for (const file of [tar, `${tar}.gz`, `${tar}.zst`]) {
    const result = await tool('img-fetch', [`tarball:${file}`, '--store', store, '--name', 'localhost/imported:1']);
    assert.equal(result.status, 0, result.stderr);
    const image = parseDocument(result.stdout).image;
    assert.equal(image?.layers.length, 1);
    assert.equal(image?.layers[0]?.diffID, expected);
    digests.add(image?.layers[0]?.digest ?? '');
    const dest = join(work.path, `unpacked-${digests.size}`);
    const unpacked = await tool('img-unpack', ['--dest', dest], { input: result.stdout });
    assert.equal(unpacked.status, 0, unpacked.stderr);
    assert.equal(await readFile(join(dest, 'etc', 'motd'), 'utf8'), 'hello\n');
  }
  assert.equal(digests.size, 3, 'each file is the layer as it is');
  const other = await rootfsTar('b', 'other\n');
  assert.notEqual(await skopeoDiffID(other, join(work.path, 'sk-b')), expected);
  const again = await tool('img-fetch', [`tarball:${tar}`, '--store', store]);
  const first = await tool('img-fetch', [`tarball:${tar}`, '--store', join(work.path, 'store2')]);
  assert.equal(parseDocument(again.stdout).image?.digest, parseDocument(first.stdout).image?.digest, 'the same file is the same image');
});

test('a file that is not a tar, a missing file, a corrupt gzip: one line each, exit 1', async () => {
  await writeFile(join(work.path, 'not.tar'), 'just text\n');
  assertOneLineError(await tool('img-fetch', [`tarball:${join(work.path, 'not.tar')}`, '--store', store]), 'img-fetch', 1, /not a tar archive/);
  assertOneLineError(await tool('img-fetch', [`tarball:${join(work.path, 'missing.tar')}`, '--store', store]), 'img-fetch', 1, /no such file/);
  await writeFile(join(work.path, 'bad.tar.gz'), Buffer.from([0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6, 7, 8]));
  assertOneLineError(await tool('img-fetch', [`tarball:${join(work.path, 'bad.tar.gz')}`, '--store', store]), 'img-fetch', 1, /gzip could not decompress it/);
});
