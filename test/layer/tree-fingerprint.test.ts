/**
 * A cached tree of the store is reused only as img-unpack made it: a tree changed since (a
 * file edited, one added, a mode changed) is refused with one line; an untouched one is reused.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, chmodSync, chownSync, mkdirSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertOneLineError, tool } from '../helpers/exec.js';
import { tempDir } from '../helpers/paths.js';
import { writeImage, writeTar } from '../helpers/tar-writer.js';
import { treeFingerprint } from '../../lib/layer/tree-fingerprint.js';

let work: { path: string; cleanup: () => Promise<void> };
let store: string;

before(async () => {
  work = await tempDir('cp-fingerprint-');
  store = join(work.path, 'store');
  await writeImage(store, 'small', [{ tar: await writeTar([{ name: 'etc/', type: 'dir' }, { name: 'etc/hostname', content: 'small\n' }, { name: 'bin/', type: 'dir' }, { name: 'bin/tool', content: '#!/bin/sh\n', mode: 0o755 }]) }]);
});

after(async () => {
  await work?.cleanup();
});

const unpack = (extra: string[] = []) => tool('img-unpack', ['--store', store, '--image', 'small', ...extra]);

test("the store's flat tree: reused as it was made; refused once a file in it was changed", async () => {
  const first = await unpack();
  assert.equal(first.status, 0, first.stderr);
  const tree = JSON.parse(first.stdout).rootfs.path as string;
  const again = await unpack();
  assert.equal(again.status, 0, `an untouched tree is reused (${again.stderr})`);
  appendFileSync(join(tree, 'etc', 'hostname'), 'changed\n');
  assertOneLineError(await unpack(), 'img-unpack', 1, /the flat tree \S+ was changed since img-unpack made it: the store's copy is no longer the image's \(remove it/);
});

test("a cached layer dir (--layers): a file added to it is refused; --dest trees are the user's own", async () => {
  const first = await unpack(['--layers']);
  assert.equal(first.status, 0, first.stderr);
  const [layer] = JSON.parse(first.stdout).rootfs.layers as string[];
  assert.equal((await unpack(['--layers'])).status, 0);
  writeFileSync(join(layer as string, 'planted'), 'x');
  assertOneLineError(await unpack(['--layers']), 'img-unpack', 1, /layer sha256:[0-9a-f]{64}: its tree \S+ was changed since img-unpack made it/);
  const own = join(work.path, 'own');
  assert.equal((await unpack(['--dest', own])).status, 0);
});

test('the fingerprint sees content, modes, links and names, not owners', () => {
  const root = join(work.path, 'fp');
  mkdirSync(join(root, 'd'), { recursive: true });
  writeFileSync(join(root, 'd', 'f'), 'one');
  symlinkSync('d/f', join(root, 'link'));
  const base = treeFingerprint(root);
  assert.equal(treeFingerprint(root), base, 'the same tree, the same fingerprint');
  chownSync(join(root, 'd', 'f'), 1000, 1000);
  assert.equal(treeFingerprint(root), base, 'owners are left out (rootless runs give the image owners later)');
  chmodSync(join(root, 'd', 'f'), 0o600);
  const moded = treeFingerprint(root);
  assert.notEqual(moded, base, 'a mode');
  unlinkSync(join(root, 'link'));
  symlinkSync('d', join(root, 'link'));
  assert.notEqual(treeFingerprint(root), moded, 'a link target');
});
