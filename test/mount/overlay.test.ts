/**
 * ovl-mount against the real kernel: every test mounts for real, and after() unmounts
 * whatever is left under the test's dir even when an assertion failed.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { exec, tool } from '../helpers/exec.js';
import { mountsUnder, unmountLeftovers } from '../helpers/mounts.js';
import { tempDir } from '../helpers/paths.js';
import { diffOverlay, describeMountedOverlay, mountOverlay, unmountOverlay } from '../../lib/mount/overlay.js';
import { HostError, NotFoundError, UsageError } from '../../lib/core/errors.js';

let work: { path: string; cleanup: () => Promise<void> };
let store: string;

/** Two layers as img-unpack --layers writes them (lowest first). */
async function layers(base: string): Promise<{ l1: string; l2: string }> {
  const l1 = join(base, 'layers', 'l1');
  const l2 = join(base, 'layers', 'l2');
  await mkdir(join(l1, 'etc', 'sub'), { recursive: true });
  await mkdir(join(l2, 'etc'), { recursive: true });
  await writeFile(join(l1, 'etc', 'a'), 'from l1\n');
  await writeFile(join(l1, 'etc', 'gone'), 'to delete\n');
  await writeFile(join(l1, 'etc', 'sub', 'hidden'), 'hidden by an opaque dir\n');
  await writeFile(join(l2, 'etc', 'b'), 'from l2\n');
  await writeFile(join(l2, 'etc', 'a'), 'l2 wins\n');
  return { l1, l2 };
}

before(async () => {
  work = await tempDir('cp-overlay-');
  store = join(work.path, 'store');
});

after(async () => {
  await unmountLeftovers(work.path);
  await work.cleanup();
});

describe('ovl-mount', () => {
  test('--lower/--upper/--work/--target: writes land in upper, lower stays, rm leaves a whiteout, --diff lists it, remount keeps it', async () => {
    const base = join(work.path, 'explicit');
    const { l1, l2 } = await layers(base);
    const [upper, wk, merged] = ['upper', 'work', 'merged'].map((d) => join(base, d)) as [string, string, string];
    const mounted = await tool('ovl-mount', ['--store', store, '--lower', `${l2}:${l1}`, '--upper', upper, '--work', wk, '--target', merged]);
    assert.equal(mounted.status, 0, mounted.stderr);
    const doc = JSON.parse(mounted.stdout);
    assert.deepEqual(doc.mount.lower, [l2, l1]);
    assert.equal(doc.mount.driver, 'overlay');
    assert.equal(readFileSync(join(merged, 'etc', 'a'), 'utf8'), 'l2 wins\n');
    assert.equal(readFileSync(join(merged, 'etc', 'b'), 'utf8'), 'from l2\n');

    await writeFile(join(merged, 'etc', 'new'), 'written inside\n');
    await writeFile(join(merged, 'etc', 'b'), 'changed\n');
    await rm(join(merged, 'etc', 'gone'));
    await rm(join(merged, 'etc', 'sub'), { recursive: true });
    await mkdir(join(merged, 'etc', 'sub'));
    assert.equal(readFileSync(join(upper, 'etc', 'new'), 'utf8'), 'written inside\n');
    assert.equal(readFileSync(join(l2, 'etc', 'b'), 'utf8'), 'from l2\n', 'the lower dir is unchanged');
    const whiteout = lstatSync(join(upper, 'etc', 'gone'));
    assert.ok(whiteout.isCharacterDevice() && whiteout.rdev === 0, 'rm leaves a 0/0 whiteout in upper');
    assert.ok(existsSync(join(l1, 'etc', 'gone')));

    const diff = await tool('ovl-mount', ['--store', store, '--diff', merged]);
    assert.equal(diff.status, 0, diff.stderr);
    assert.deepEqual(diff.stdout.trim().split('\n'), ['C /etc/b', 'D /etc/gone', 'A /etc/new', 'O /etc/sub']);
    const diffFromDoc = await tool('ovl-mount', ['--diff'], { input: mounted.stdout });
    assert.equal(diffFromDoc.stdout, diff.stdout);

    const unmounted = await tool('ovl-mount', ['--store', store, '--unmount'], { input: mounted.stdout });
    assert.equal(unmounted.status, 0, unmounted.stderr);
    assert.deepEqual(mountsUnder(merged), []);
    assert.ok(!existsSync(join(merged, 'etc')));

    const again = await tool('ovl-mount', ['--store', store, '--lower', `${l2}:${l1}`, '--upper', upper, '--work', wk, '--target', merged]);
    assert.equal(again.status, 0, again.stderr);
    assert.equal(readFileSync(join(merged, 'etc', 'new'), 'utf8'), 'written inside\n', 'the earlier change is back');
    assert.ok(!existsSync(join(merged, 'etc', 'gone')));
    assert.equal((await tool('ovl-mount', ['--store', store, '--unmount', merged])).status, 0);
  });

  test('a piped img-unpack --layers document: top layer first, container dirs made under the store', async () => {
    const base = join(work.path, 'piped');
    const { l1, l2 } = await layers(base);
    const input = JSON.stringify({ documentVersion: 1, rootfs: { mode: 'layers', layers: [l1, l2] }, other: { kept: true } });
    const result = await tool('ovl-mount', ['--store', store, '--name', 'piped1'], { input });
    assert.equal(result.status, 0, result.stderr);
    const doc = JSON.parse(result.stdout);
    assert.deepEqual(doc.other, { kept: true });
    assert.deepEqual(doc.mount.lower, [l2, l1]);
    assert.equal(doc.mount.target, join(store, 'containers', 'piped1', 'merged'));
    assert.equal(doc.mount.upper, join(store, 'containers', 'piped1', 'upper'));
    assert.deepEqual(doc.mount.container, { id: 'piped1', dir: join(store, 'containers', 'piped1') });
    assert.equal(readFileSync(join(doc.mount.target, 'etc', 'a'), 'utf8'), 'l2 wins\n');
    // A flat rootfs with an explicit target.
    const flat = await tool('ovl-mount', ['--store', store, '--target', join(base, 'flat-merged')], { input: JSON.stringify({ documentVersion: 1, rootfs: { mode: 'flat', path: l1 } }) });
    assert.equal(flat.status, 0, flat.stderr);
    assert.equal(readFileSync(join(base, 'flat-merged', 'etc', 'a'), 'utf8'), 'from l1\n');
    for (const target of [doc.mount.target, join(base, 'flat-merged')]) assert.equal((await tool('ovl-mount', ['--store', store, '--unmount', target])).status, 0);
  });

  test('--read-only: a merge without upper refuses writes (one lower dir too)', async () => {
    const base = join(work.path, 'ro');
    const { l1, l2 } = await layers(base);
    for (const lower of [`${l2}:${l1}`, l1]) {
      const target = join(base, `m${lower.length}`);
      const result = await tool('ovl-mount', ['--store', store, '--read-only', '--lower', lower, '--target', target]);
      assert.equal(result.status, 0, result.stderr);
      assert.equal(JSON.parse(result.stdout).mount.readOnly, true);
      assert.ok(existsSync(join(target, 'etc', 'a')));
      await assert.rejects(writeFile(join(target, 'etc', 'x'), 'no'), { code: 'EROFS' });
      assert.equal((await tool('ovl-mount', ['--store', store, '--unmount', target])).status, 0);
    }
  });

  test('130 lower dirs with long paths mount (past the one-page limit of mount options)', async () => {
    const base = join(work.path, 'many');
    const lowers: string[] = [];
    for (let i = 0; i < 130; i++) {
      const dir = join(base, 'a-rather-long-directory-name-for-a-layer-'.repeat(3), `layer-${String(i).padStart(3, '0')}`);
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, `file-${i}`), `${i}\n`);
      lowers.push(dir);
    }
    assert.ok(lowers.join(':').length > 4096 * 4);
    const target = join(base, 'merged');
    const section = await mountOverlay({ lower: lowers.reverse(), upper: join(base, 'u'), work: join(base, 'w'), target, stateRoot: join(store, 'overlay') });
    try {
      for (const i of [0, 64, 129]) assert.equal(readFileSync(join(target, `file-${i}`), 'utf8'), `${i}\n`);
      const described = await describeMountedOverlay(target, join(store, 'overlay'));
      assert.deepEqual(described.lower, section.lower, 'the short names read back as the real dirs');
      assert.equal(described.upper, join(base, 'u'));
    } finally {
      await unmountOverlay(target, join(store, 'overlay'));
    }
  });

  test('--driver fuse: fuse-overlayfs does the same merge', async () => {
    const base = join(work.path, 'fuse');
    const { l1, l2 } = await layers(base);
    const target = join(base, 'merged');
    const result = await tool('ovl-mount', ['--store', store, '--driver', 'fuse', '--lower', `${l2}:${l1}`, '--upper', join(base, 'u'), '--work', join(base, 'w'), '--target', target]);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(JSON.parse(result.stdout).mount.driver, 'fuse-overlayfs');
    try {
      assert.equal(readFileSync(join(target, 'etc', 'a'), 'utf8'), 'l2 wins\n');
      await writeFile(join(target, 'etc', 'new'), 'x');
      await rm(join(target, 'etc', 'gone'));
      const changes = (await diffOverlay(join(base, 'u'), [l2, l1])).map((c) => `${c.kind} ${c.path}`);
      assert.ok(changes.includes('added /etc/new') && changes.includes('deleted /etc/gone'), changes.join(', '));
    } finally {
      assert.equal((await tool('ovl-mount', ['--store', store, '--unmount'], { input: result.stdout })).status, 0);
    }
  });

  test('errors are one line: missing lower, upper and work on different filesystems, busy target, not mounted', async () => {
    const base = join(work.path, 'errors');
    const { l1 } = await layers(base);
    const missing = await tool('ovl-mount', ['--store', store, '--lower', join(base, 'nope'), '--target', join(base, 'm1')]);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /^ovl-mount: lower dir .*nope does not exist\n$/);

    const tmpfs = join(base, 'tmpfs');
    await mkdir(tmpfs, { recursive: true });
    await exec('mount', ['-t', 'tmpfs', 'tmpfs', tmpfs]);
    const split = await tool('ovl-mount', ['--store', store, '--lower', l1, '--upper', join(base, 'u'), '--work', join(tmpfs, 'w'), '--target', join(base, 'm2')]);
    assert.equal(split.status, 2);
    assert.match(split.stderr, /^ovl-mount: upper .* and work .* are on different filesystems \(overlay needs them on one\)\n$/);

    const target = join(base, 'm3');
    assert.equal((await tool('ovl-mount', ['--store', store, '--lower', l1, '--upper', join(base, 'u'), '--work', join(base, 'w'), '--target', target])).status, 0);
    const holder = spawn('sleep', ['60'], { cwd: target, stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 100));
      const busy = await tool('ovl-mount', ['--store', store, '--unmount', target]);
      assert.equal(busy.status, 1);
      assert.match(busy.stderr, /^ovl-mount: .*m3: target is busy \(a process still uses it: see fuser -vm .*\)\n$/);
    } finally {
      holder.kill('SIGKILL');
      await new Promise((r) => holder.once('close', r));
    }
    assert.equal((await tool('ovl-mount', ['--store', store, '--unmount', target])).status, 0);
    const notMounted = await tool('ovl-mount', ['--store', store, '--unmount', target]);
    assert.equal(notMounted.status, 1);
    assert.match(notMounted.stderr, /^ovl-mount: .*m3 is not mounted\n$/);
    await exec('umount', [tmpfs]);
  });

  test('library errors are typed', async () => {
    await assert.rejects(mountOverlay({ lower: [], target: join(work.path, 'x'), stateRoot: store }), UsageError);
    await assert.rejects(mountOverlay({ lower: [join(work.path, 'none')], target: join(work.path, 'x'), stateRoot: store }), NotFoundError);
    await assert.rejects(unmountOverlay(join(work.path, 'never-mounted'), store), NotFoundError);
    // An upper on an overlay cannot work: said before mount(2) says "wrong fs type".
    const base = join(work.path, 'nested');
    const { l1 } = await layers(base);
    const outer = join(base, 'outer');
    await mountOverlay({ lower: [l1], upper: join(base, 'u'), work: join(base, 'w'), target: outer, stateRoot: store });
    try {
      await assert.rejects(mountOverlay({ lower: [l1], upper: join(outer, 'u2'), work: join(outer, 'w2'), target: join(base, 'inner'), stateRoot: store }), (err: unknown) => err instanceof HostError && /overlay filesystem, which cannot hold an overlay's upper/.test(err.message));
    } finally {
      await unmountOverlay(outer, store);
    }
  });

  test('--explain prints the mount command and mounts nothing', async () => {
    const result = await tool('ovl-mount', ['--store', store, '--explain', '--lower', '/l2:/l1', '--upper', '/u', '--work', '/w', '--target', join(work.path, 'explained')]);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /mount -t overlay overlay -o lowerdir=\/l2:\/l1,upperdir=\/u,workdir=\/w /);
    assert.deepEqual(mountsUnder(join(work.path, 'explained')), []);
    assert.ok(!existsSync(join(work.path, 'explained')));
  });
});
