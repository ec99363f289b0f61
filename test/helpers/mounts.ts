/**
 * For tests that mount: a lab busybox rootfs (built with the lab script, unpacked with umoci,
 * so it does not depend on img-unpack), and a sweep that unmounts everything under a dir —
 * call it from after() so a failed test leaves no mount behind.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, afterEach, before } from 'node:test';
import { join } from 'node:path';
import { exec, mustExec } from './exec.js';
import { SCRIPTS, tempDir } from './paths.js';

/** Builds the lab busybox image into `work` and unpacks it; returns the rootfs and the OCI layout. */
export async function busyboxRootfs(work: string): Promise<{ rootfs: string; layout: string; bundle: string }> {
  const layout = join(work, 'layout');
  await mustExec(join(SCRIPTS, 'build-busybox-image.sh'), [join(work, 'build'), `oci:${layout}:busybox`]);
  const bundle = join(work, 'bundle');
  await mustExec('umoci', ['unpack', '--image', `${layout}:busybox`, bundle]);
  return { rootfs: join(bundle, 'rootfs'), layout, bundle };
}

/** Mount points at or below `dir`, deepest first. */
export function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((mountPoint): mountPoint is string => !!mountPoint && (mountPoint === dir || mountPoint.startsWith(`${dir}/`)))
    .map((m) => m.replace(/\\040/g, ' '))
    .sort((a, b) => b.length - a.length);
}

/** Unmounts every mount at or below `dir` (lazily, so a busy one goes too). */
export async function unmountAll(dir: string): Promise<void> {
  for (const mountPoint of mountsUnder(dir)) await exec('umount', ['-l', mountPoint]);
}

/**
 * The work dir of a test file that mounts: nothing is mounted there at first; a test that
 * leaves a mount behind fails (asserted before the sweep that then unmounts it); at the end
 * every mount goes and the dir is removed. `path` is set once before() has run, and `ready`
 * is called with it there (node runs a file's top-level before() hooks at once, not in turn).
 */
export function mountingWorkDir(prefix: string, ready: (path: string) => void = () => undefined): { path: string } {
  const work = { path: '' };
  let cleanup = async () => undefined as void;
  before(async () => {
    const dir = await tempDir(prefix);
    [work.path, cleanup] = [dir.path, dir.cleanup];
    ready(work.path);
    assert.deepEqual(mountsUnder(work.path), [], 'nothing mounted under the work dir before the tests');
  });
  afterEach(async () => {
    const leaked = mountsUnder(work.path);
    try {
      assert.deepEqual(leaked, [], 'the test unmounted everything it mounted');
    } finally {
      await unmountAll(work.path);
    }
  });
  after(async () => {
    await unmountAll(work.path);
    assert.deepEqual(mountsUnder(work.path), []);
    await cleanup();
  });
  return work;
}

/**
 * For after(): what the tests left mounted under `dir` is recorded first, unmounted, and then the
 * file fails if there was anything (a test that leaks a mount is a failure, not tidied away).
 */
export async function unmountLeftovers(dir: string): Promise<void> {
  const leaked = mountsUnder(dir);
  await unmountAll(dir);
  assert.deepEqual(mountsUnder(dir), [], `could not unmount everything under ${dir}`);
  assert.deepEqual(leaked, [], `the tests left these mounted under ${dir}`);
}
