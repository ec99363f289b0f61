/**
 * Negative twins of the oracle comparisons: each way the suite compares with umoci, skopeo or
 * runc must be able to fail. Trees (our unpack vs umoci's, as umoci's bats tests do with mtree):
 * a tree that differs in one property of one path compares unequal and the diff names the path.
 * skopeo inspect (fetch vs skopeo): two images one byte apart differ in digest and layers.
 * runc (ns-enter --bundle vs runc, oci-spec vs runc spec): a one-field change shows in the output.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, copyFileSync, rmSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describeTree, treeDiff } from './helpers/tree.js';
import { exec, mustExec, tool } from './helpers/exec.js';
import { tempDir } from './helpers/paths.js';
import { umociUnpack, writeImage, writeTar, type EntrySpec } from './helpers/tar-writer.js';
import { busyboxRootfs } from './helpers/mounts.js';

let work: { path: string; cleanup: () => Promise<void> };
before(async () => {
  work = await tempDir('cp-twins-');
});
after(async () => {
  await work?.cleanup();
});

const CAPABILITY = Buffer.from('0100000201000000000000000000000000000000', 'hex');
const ENTRIES: EntrySpec[] = [
  { name: 'etc', type: 'dir', mode: 0o755 },
  { name: 'etc/conf', content: 'a=1\n', mode: 0o644, uid: 0, gid: 0 },
  { name: 'etc/same-size', content: 'abcd', mode: 0o600 },
  { name: 'bin', type: 'dir' },
  { name: 'bin/tool', content: 'tool', mode: 0o755, xattrs: { 'security.capability': CAPABILITY } },
  { name: 'bin/link', type: 'symlink', linkname: 'tool' },
  { name: 'bin/hard', type: 'hardlink', linkname: 'bin/tool' },
  { name: 'run', type: 'dir' },
  { name: 'run/pipe', type: 'fifo' },
];

describe('the tree oracle (our unpack vs umoci)', () => {
  let theirs: string;
  let reference: string[];
  before(async () => {
    const layout = join(work.path, 'layout');
    await writeImage(layout, 'twin', [{ tar: await writeTar(ENTRIES) }]);
    theirs = await umociUnpack(layout, 'twin', join(work.path, 'bundle'));
    reference = await describeTree(theirs, { dirMtimes: true, skipRoot: true });
  });

  /** A copy of umoci's tree with one change: it must not compare equal, and the diff names `path`. */
  async function assertDiffers(name: string, path: string, change: (root: string) => void | Promise<void>) {
    const copy = join(work.path, `copy-${name}`);
    await mustExec('cp', ['-a', theirs, copy]);
    const same = await describeTree(copy, { dirMtimes: true, skipRoot: true });
    assert.deepEqual(same, reference, 'an exact copy compares equal');
    await change(copy);
    const changed = await describeTree(copy, { dirMtimes: true, skipRoot: true });
    assert.notDeepEqual(changed, reference, `${name}: the comparison must see it`);
    assert.match(treeDiff(changed, reference), new RegExp(`/${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} `), `${name}: the diff names ${path}`);
    rmSync(copy, { recursive: true, force: true });
  }

  const CHANGES: Array<[string, string, (root: string) => void | Promise<void>]> = [
    ['mode', 'etc/conf', (r) => chmodSync(join(r, 'etc/conf'), 0o640)],
    ['owner', 'etc/conf', (r) => chownSync(join(r, 'etc/conf'), 1, 0)],
    ['group', 'etc/conf', (r) => chownSync(join(r, 'etc/conf'), 0, 1)],
    ['content of the same size', 'etc/same-size', (r) => writeFileSync(join(r, 'etc/same-size'), 'abce')],
    ['file mtime', 'etc/conf', (r) => utimesSync(join(r, 'etc/conf'), 1, 1)],
    ['directory mtime', 'etc', (r) => utimesSync(join(r, 'etc'), 1, 1)],
    ['setuid bit', 'bin/tool', (r) => chmodSync(join(r, 'bin/tool'), 0o4755)],
    ['capability dropped', 'bin/tool', async (r) => void (await mustExec('setfattr', ['-x', 'security.capability', join(r, 'bin/tool')]))],
    ['opaque marker added', 'run', async (r) => void (await mustExec('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', join(r, 'run')]))],
    ['symlink target', 'bin/link', (r) => (unlinkSync(join(r, 'bin/link')), symlinkSync('other', join(r, 'bin/link')))],
    ['hardlink broken into copies', 'bin/hard', (r) => (unlinkSync(join(r, 'bin/hard')), copyFileSync(join(r, 'bin/tool'), join(r, 'bin/hard')), unlinkSync(join(r, 'bin/tool')), copyFileSync(join(r, 'bin/hard'), join(r, 'bin/tool')))],
    ['fifo replaced by a file', 'run/pipe', (r) => (unlinkSync(join(r, 'run/pipe')), writeFileSync(join(r, 'run/pipe'), ''))],
    ['an extra file', 'etc/extra', (r) => writeFileSync(join(r, 'etc/extra'), '')],
    ['a missing file', 'etc/conf', (r) => unlinkSync(join(r, 'etc/conf'))],
  ];
  for (const [name, path, change] of CHANGES) {
    test(`a tree that differs by ${name} compares unequal, naming ${path}`, () => assertDiffers(name.replace(/\W+/g, '-'), path, change));
  }
});

test('skopeo inspect as the oracle: two images one byte apart differ in digest and layers', async () => {
  const layout = join(work.path, 'skopeo-layout');
  await writeImage(layout, 'a', [{ tar: await writeTar([{ name: 'f', content: 'one' }]) }]);
  await writeImage(layout, 'b', [{ tar: await writeTar([{ name: 'f', content: 'onf' }]) }]);
  const inspect = async (tag: string) => JSON.parse(await mustExec('skopeo', ['inspect', `oci:${layout}:${tag}`])) as { Digest: string; Layers: string[] };
  const [a, again, b] = [await inspect('a'), await inspect('a'), await inspect('b')];
  assert.deepEqual(again, a, 'the same image inspects the same');
  assert.notEqual(b.Digest, a.Digest);
  assert.notDeepEqual(b.Layers, a.Layers);
});

describe('runc as the oracle', () => {
  let rootfs: string;
  before(async () => {
    rootfs = (await busyboxRootfs(join(work.path, 'busybox'))).rootfs;
  });

  async function runcOutput(bundle: string, name: string): Promise<string> {
    const result = await exec('runc', ['run', '-b', bundle, name], { timeoutMs: 60_000 });
    await exec('runc', ['delete', '-f', name]);
    assert.equal(result.status, 0, result.stderr);
    return result.stdout;
  }

  test('a bundle that differs in one field (an env value) gives a different output under runc', async () => {
    const outputs: string[] = [];
    for (const [i, greeting] of ['hello', 'hello', 'bye'].entries()) {
      const bundle = join(work.path, `runc-bundle-${i}`);
      const spec = await tool('oci-spec', ['--bundle', bundle, '-e', `GREETING=${greeting}`, '--', 'sh', '-c', 'echo $GREETING; id -u']);
      assert.equal(spec.status, 0, spec.stderr);
      const config = JSON.parse(await readFile(join(bundle, 'config.json'), 'utf8')) as { root: { path: string } };
      config.root.path = rootfs;
      await writeFile(join(bundle, 'config.json'), JSON.stringify(config));
      outputs.push(await runcOutput(bundle, `cp-twin-${process.pid}-${i}`));
    }
    assert.equal(outputs[1], outputs[0], 'the same bundle twice: the same output');
    assert.notEqual(outputs[2], outputs[0], 'one field changed: the output differs');
  });

  test('oci-spec with a flag is not runc spec (the byte comparison with runc spec can fail)', async () => {
    const plain = await tool('oci-spec', []);
    const bundle = join(work.path, 'runc-spec');
    await mustExec('mkdir', ['-p', bundle]);
    await mustExec('runc', ['spec', '-b', bundle]);
    const theirs = await readFile(join(bundle, 'config.json'), 'utf8');
    assert.equal(plain.stdout, theirs, 'plain oci-spec is runc spec');
    const withFlag = await tool('oci-spec', ['--hostname', 'other']);
    assert.notEqual(withFlag.stdout, theirs);
  });
});
