/** Paths inside a root filesystem, resolved as if chrooted: never out of the root, loops are an error. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync } from 'node:fs';
import { join, posix } from 'node:path';
import fc from 'fast-check';
import { tempDir } from '../helpers/paths.js';
import { cleanEntryName, climbsOutOfRoot, RootResolver } from '../../lib/core/root-resolver.js';
import { UnsafeLayerError } from '../../lib/core/errors.js';

test('entry names are cleaned and clamped at the root, as runc CleanPath does', () => {
  assert.equal(cleanEntryName('./a/b/'), 'a/b');
  assert.equal(cleanEntryName('/etc/passwd'), 'etc/passwd');
  assert.equal(cleanEntryName('../../etc/passwd'), 'etc/passwd');
  assert.equal(cleanEntryName('a/../../b'), 'b');
  assert.equal(cleanEntryName('./'), '');
  assert.equal(cleanEntryName('/'), '');
  assert.equal(cleanEntryName('.'), '');
  assert.ok(climbsOutOfRoot('../x') && climbsOutOfRoot('/x') && climbsOutOfRoot('a/../../x'));
  assert.ok(!climbsOutOfRoot('a/../b') && !climbsOutOfRoot('./a/b'));
});

let root: { path: string; cleanup: () => Promise<void> };
let resolver: RootResolver;

before(async () => {
  root = await tempDir('cp-rootfs-');
  const r = root.path;
  mkdirSync(join(r, 'usr/lib'), { recursive: true });
  symlinkSync('usr/lib', join(r, 'lib'));
  symlinkSync('/usr/lib', join(r, 'abs'));
  symlinkSync('../../../../..', join(r, 'up'));
  symlinkSync('/', join(r, 'slash'));
  symlinkSync('loop2', join(r, 'loop1'));
  symlinkSync('loop1', join(r, 'loop2'));
  symlinkSync('lib/../../../etc', join(r, 'tricky'));
  resolver = new RootResolver(r);
});

after(async () => {
  await root?.cleanup();
});

test('a symlink in a parent component is followed inside the root', () => {
  assert.equal(resolver.resolve('lib/x', 'lib/x'), 'usr/lib/x');
  assert.equal(resolver.resolve('abs/x', 'abs/x'), 'usr/lib/x', 'an absolute target resolves against the root');
});

test('climbing targets stop at the root, never the host', () => {
  assert.equal(resolver.resolve('up/etc/passwd', 'up/etc/passwd'), 'etc/passwd');
  assert.equal(resolver.resolve('slash/etc', 'slash/etc'), 'etc');
  assert.equal(resolver.resolve('tricky/shadow', 'tricky/shadow'), 'etc/shadow');
  assert.equal(resolver.resolve('../../..', '../../..'), '');
});

test('missing components are kept as named', () => {
  assert.equal(resolver.resolve('new/dir/file', 'new/dir/file'), 'new/dir/file');
  assert.equal(resolver.resolve('lib/new/../y', 'lib/new/../y'), 'usr/lib/y');
});

test('a symlink loop is an error naming the entry, not a hang', () => {
  assert.throws(() => resolver.resolve('loop1/x', 'layer entry "loop1/x"'), (err: unknown) => err instanceof UnsafeLayerError && /"loop1\/x".*symbolic links/.test(err.message));
});

test('lookups through lower layer dirs (--layers) see the merged tree', async () => {
  const upper = await tempDir('cp-rootfs-upper-');
  try {
    const stacked = new RootResolver(upper.path, [root.path]);
    assert.equal(stacked.resolve('lib/x', 'lib/x'), 'usr/lib/x', 'the symlink comes from the lower layer');
    assert.equal(stacked.lookup('usr')?.dir, root.path);
    assert.equal(stacked.hostPath('usr/lib/x'), join(upper.path, 'usr/lib/x'), 'what is written goes to the upper layer');
  } finally {
    await upper.cleanup();
  }
});

test('a missing component followed by .. does not stop the lookup of what comes next', async () => {
  const r = root.path;
  symlinkSync('/', join(r, 'q'));
  symlinkSync('missing/../q', join(r, 'via-missing'));
  const fresh = new RootResolver(r);
  assert.equal(fresh.resolve('via-missing/etc', 'via-missing/etc'), 'etc', 'q is a symlink to the root, found after the missing/.. detour');
});

test('a cached resolution is forgotten when the tree changes at any path its walk looked at', async () => {
  const fresh = await tempDir('cp-rootfs-changed-');
  try {
    const r = fresh.path;
    const stale = new RootResolver(r);
    assert.equal(stale.resolve('p/x', 'p/x'), 'p/x', 'p is missing: kept as named');
    mkdirSync(join(r, 'real'));
    symlinkSync('real', join(r, 'p'));
    assert.equal(stale.resolve('p/x', 'p/x'), 'p/x', 'cached until told');
    stale.changed('p');
    assert.equal(stale.resolve('p/x', 'p/x'), 'real/x', 'a change at p (whatever made the symlink) forgets it');
    assert.equal(stale.resolve('q/a/b', 'q/a/b'), 'q/a/b');
    mkdirSync(join(r, 'q/a'), { recursive: true });
    symlinkSync('/real', join(r, 'q/a/b'));
    stale.changed('q/a/b');
    assert.equal(stale.resolve('q/a/b/c', 'q/a/b/c'), 'real/c', 'paths below a missing one are looked at too');
    assert.equal(stale.resolve('q/a/b', 'q/a/b'), 'real', 'a change below a missing component reaches the resolution that stopped there');
  } finally {
    await fresh.cleanup();
  }
});

test('cleanEntryName: the fast path for clean names agrees with posix normalize on any name', () => {
  const reference = (name: string) => {
    const cleaned = posix.normalize(`/${name}`);
    return cleaned === '/' ? '' : cleaned.replace(/\/+$/, '').slice(1);
  };
  const name = fc.array(fc.constantFrom('a', 'b', '.', '..', '', '/', './', '../', '.wh.x'), { maxLength: 8 }).map((parts) => parts.join('/'));
  fc.assert(fc.property(fc.oneof(name, fc.string()), (n) => cleanEntryName(n) === reference(n)), { numRuns: 5000 });
});
