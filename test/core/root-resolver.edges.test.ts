/**
 * Edges of the chroot-safe resolver that mutation testing found unchecked: symlinks below the
 * top level (absolute and relative), exactly Linux's 40-link limit, `.`/empty parts, names that
 * climb only after a `.`, and a whiteout in the upper layer hiding a lower layer's symlink.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { tempDir } from '../helpers/paths.js';
import { baseOf, climbsOutOfRoot, joinRel, MAX_SYMLINKS, parentOf, resolveInRoot, RootResolver } from '../../lib/core/root-resolver.js';
import { UnsafeLayerError } from '../../lib/core/errors.js';

let root: { path: string; cleanup: () => Promise<void> };

before(async () => {
  root = await tempDir('cp-resolver-edges-');
  const r = root.path;
  mkdirSync(join(r, 'usr/lib'), { recursive: true });
  mkdirSync(join(r, 'etc'));
  symlinkSync('/etc', join(r, 'usr/abs'));
  symlinkSync('lib', join(r, 'usr/rel'));
  symlinkSync('usr/lib', join(r, 'chain0'));
  for (let i = 1; i <= MAX_SYMLINKS; i++) symlinkSync(`chain${i - 1}`, join(r, `chain${i}`));
});

after(async () => {
  await root?.cleanup();
});

test('a symlink below the top level: an absolute target starts again at the root, a relative one in its directory', () => {
  const resolver = new RootResolver(root.path);
  assert.equal(resolver.resolve('usr/abs/passwd', 'x'), 'etc/passwd');
  assert.equal(resolver.resolve('usr/rel/libc.so', 'x'), 'usr/lib/libc.so');
});

test('exactly 40 symlinks are followed, as Linux does; the 41st is a loop error', () => {
  const resolver = new RootResolver(root.path);
  // chain39 → … → chain0 → usr/lib is 40 links; chain40 adds one more.
  assert.equal(resolver.resolve(`chain${MAX_SYMLINKS - 1}/x`, 'x'), 'usr/lib/x');
  assert.throws(() => resolver.resolve(`chain${MAX_SYMLINKS}/x`, 'entry'), (e: unknown) => e instanceof UnsafeLayerError && /^entry: too many levels of symbolic links/.test(e.message));
});

test('`.` and empty parts are no components', () => {
  const resolver = new RootResolver(root.path);
  assert.equal(resolver.resolve('./usr//rel/./x', 'x'), 'usr/lib/x');
  assert.ok(climbsOutOfRoot('./../x'));
  assert.ok(climbsOutOfRoot('a//../../x'));
  assert.ok(!climbsOutOfRoot('a/./../b'));
});

test('a whiteout (0/0 character device) in the upper layer hides the lower layer: its symlink is not followed', async () => {
  const upper = await tempDir('cp-resolver-upper-');
  try {
    execFileSync('mknod', [join(upper.path, 'usr'), 'c', '0', '0']);
    const stacked = new RootResolver(upper.path, [root.path]);
    assert.equal(stacked.lookup('usr'), undefined);
    assert.equal(stacked.resolve('usr/rel/x', 'x'), 'usr/rel/x', 'nothing below a whiteout exists');
  } finally {
    await upper.cleanup();
  }
});

test('resolveInRoot: the host path through the root\'s symlinks, or undefined when missing', () => {
  assert.equal(resolveInRoot(root.path, '/usr/abs'), join(root.path, 'etc'));
  assert.equal(resolveInRoot(root.path, '/usr/rel/../lib'), join(root.path, 'usr/lib'));
  assert.equal(resolveInRoot(root.path, '/nonexistent'), undefined);
  assert.equal(resolveInRoot(root.path, '/'), root.path);
});

test('relative path helpers: join, parent and base at the root and below', () => {
  assert.equal(joinRel('', 'a'), 'a');
  assert.equal(joinRel('a/b', 'c'), 'a/b/c');
  assert.equal(parentOf('abc'), '');
  assert.equal(parentOf('a/b/c'), 'a/b');
  assert.equal(baseOf('a'), 'a');
  assert.equal(baseOf('a/b/c'), 'c');
});

test('a device that is not 0/0 in the upper layer is a file there, not a whiteout', async () => {
  const upper = await tempDir('cp-resolver-upper-');
  try {
    execFileSync('mknod', [join(upper.path, 'usr'), 'c', '1', '3']);
    const found = new RootResolver(upper.path, [root.path]).lookup('usr');
    assert.equal(found?.dir, upper.path);
    assert.equal(found?.stats.isCharacterDevice(), true);
  } finally {
    await upper.cleanup();
  }
});

test('changed() forgets resolutions that looked at the path: a symlink made afterwards is followed', () => {
  const r = root.path;
  const resolver = new RootResolver(r);
  assert.equal(resolver.resolve('later/x', 'x'), 'later/x');
  symlinkSync('usr/lib', join(r, 'later'));
  try {
    resolver.changed('later');
    assert.equal(resolver.resolve('later/x', 'x'), 'usr/lib/x');
  } finally {
    rmSync(join(r, 'later'));
  }
});

test('resolveInRoot names the path as the container sees it in a loop error', () => {
  symlinkSync('loopb', join(root.path, 'loopa'));
  symlinkSync('loopa', join(root.path, 'loopb'));
  try {
    assert.throws(() => resolveInRoot(root.path, 'loopa/x'), /^UnsafeLayerError: \/loopa\/x: too many levels of symbolic links/);
  } finally {
    rmSync(join(root.path, 'loopa'));
    rmSync(join(root.path, 'loopb'));
  }
});
