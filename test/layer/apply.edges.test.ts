/**
 * Edges of the layer applier (and its whiteouts and tree) that mutation testing found
 * unchecked, applied in process from headers given directly (a tar written and parsed would
 * only test the reader again): what the result counts, the root entry, names that climb out,
 * what a layer's own entries survive, devices rootless, hardlinks to what is missing or a
 * directory or across devices, the aufs `.wh..wh.` names, whiteouts of nothing and of `.`/`..`,
 * and which directories get the opaque xattr in the overlay form.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { UnsafeLayerError, UnsupportedError } from '../../lib/core/errors.js';
import { Syscalls } from '../../lib/core/syscalls.js';
import { applyLayer, isWhiteoutDevice, type LayerOptions, type LayerResult } from '../../lib/layer/apply.js';
import { removeTree } from '../../lib/layer/tree.js';
import type { TarHeader, TarReader } from '../../lib/layer/tarstream.js';
import { cleanUpAtExit, REPO, withTempDir } from '../helpers/paths.js';

const syscalls = new Syscalls();
after(() => syscalls.close());

const T = 1700000000;

type Entry = Partial<TarHeader> & { name: string; body?: string };

/** A TarReader over headers given in memory (the applier calls only next() and readBody()). */
function reader(entries: Entry[]): TarReader {
  const headers = entries.map((e): TarHeader & { body: Buffer } => {
    const body = Buffer.from(e.body ?? '');
    return { type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: T, linkname: '', devmajor: 0, devminor: 0, xattrs: new Map(), ...e, size: body.length, body };
  });
  let current: (TarHeader & { body: Buffer }) | undefined;
  const fake = {
    next: async () => (current = headers.shift()),
    readBody: async (sink: (data: Buffer) => void) => {
      if (current && current.body.length > 0) sink(current.body);
    },
  };
  return fake as unknown as TarReader;
}

const withRoot = (fn: (dir: string) => Promise<void>) => withTempDir('cp-apply-edges-', fn);

/** Applies one layer; `lowers` set means the overlay form (one dir per layer), else flat. */
function apply(root: string, entries: Entry[], options: Partial<LayerOptions> = {}): Promise<LayerResult> {
  return applyLayer(root, reader(entries), {
    whiteouts: options.lowers ? 'overlay' : 'flat',
    rootless: false,
    opaqueXattr: 'trusted.overlay.opaque',
    syscalls,
    xattrsSet: new Map(),
    warn: () => undefined,
    ...options,
  });
}

function opaque(path: string): string | undefined {
  try {
    return execFileSync('getfattr', ['--only-values', '-n', 'trusted.overlay.opaque', '--absolute-names', path], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return undefined;
  }
}

/** Two layer directories under `root` for the overlay form. */
function layerDirs(root: string): { lower: string; upper: string } {
  const dirs = { lower: join(root, 'lower'), upper: join(root, 'upper') };
  mkdirSync(dirs.lower);
  mkdirSync(dirs.upper);
  return dirs;
}

const dir = (name: string, extra: Partial<TarHeader> = {}): Entry => ({ name, type: 'directory', mode: 0o755, ...extra });

test('the result counts every entry, the root entry and whiteouts too; no lowers given is the flat form', () =>
  withRoot(async (root) => {
    const result = await apply(root, [dir('./'), { name: 'a', body: 'a' }, { name: '.wh.nothing' }, dir('d/')], { lowers: undefined });
    assert.equal(result.entries, 4);
    assert.deepEqual(result.skipped, []);
    assert.equal(readFileSync(join(root, 'a'), 'utf8'), 'a');
  }));

test('a NUL in a name is refused, the NUL shown as \\0', () =>
  withRoot(async (root) => {
    await assert.rejects(apply(root, [{ name: 'a\0b' }]), (e: unknown) => e instanceof UnsupportedError && e.message === 'layer entry "a\\0b": NUL in the name');
    assert.equal(existsSync(join(root, 'a')), false);
  }));

test('the root entry gives the root its metadata; anything but a directory there is refused', () =>
  withRoot(async (root) => {
    await apply(root, [dir('./', { mode: 0o700, mtime: T }), { name: 'f', body: 'x' }]);
    assert.equal(lstatSync(root).mode & 0o7777, 0o700);
    assert.equal(lstatSync(root).mtimeMs, T * 1000, 'the root takes its time after its content');
    for (const type of ['symlink', 'file'] as const) {
      await assert.rejects(
        apply(root, [{ name: './', type, linkname: '/etc' }]),
        (e: unknown) => e instanceof UnsafeLayerError && e.message === `layer entry "./" would replace the root directory with a ${type} (refused)`,
      );
    }
    assert.ok(lstatSync(root).isDirectory());
  }));

test('a name that climbs out of the root is applied inside it, with one warning naming where', () =>
  withRoot(async (root) => {
    const warnings: string[] = [];
    await apply(root, [{ name: '../../x', body: 'in' }, { name: 'y', body: 'y' }], { warn: (m) => warnings.push(m) });
    assert.equal(readFileSync(join(root, 'x'), 'utf8'), 'in');
    assert.deepEqual(warnings, ['layer entry "../../x" names a path outside the root; applied as "/x" inside it']);
  }));

test('a symlink loop in a parent is refused, naming the entry', () =>
  withRoot(async (root) => {
    await assert.rejects(apply(root, [{ name: 'loop', type: 'symlink', linkname: 'loop' }, { name: 'loop/x', body: 'x' }]), (e: unknown) => e instanceof UnsafeLayerError && e.message.startsWith('layer entry "loop/x": too many levels'));
    await assert.rejects(
      apply(root, [{ name: 'h', type: 'hardlink', linkname: 'loop/x' }]),
      (e: unknown) => e instanceof UnsafeLayerError && e.message.startsWith('layer entry "h": too many levels'),
    );
  }));

test("a whiteout after an entry of its own layer leaves it, whatever its type (flat: it removes only lower content)", () =>
  withRoot(async (root) => {
    const kinds: Entry[] = [{ name: 'f', body: 'f' }, dir('d/'), { name: 's', type: 'symlink', linkname: 'f' }, { name: 'h', type: 'hardlink', linkname: 'f' }, { name: 'p', type: 'fifo' }, { name: 'c', type: 'char', devmajor: 1, devminor: 3 }];
    await apply(root, [...kinds, ...kinds.map((k) => ({ name: `.wh.${k.name.replace(/\/$/, '')}` }))]);
    assert.equal(readFileSync(join(root, 'f'), 'utf8'), 'f');
    assert.ok(lstatSync(join(root, 'd')).isDirectory());
    assert.equal(readlinkSync(join(root, 's')), 'f');
    assert.equal(lstatSync(join(root, 'h')).ino, lstatSync(join(root, 'f')).ino);
    assert.ok(lstatSync(join(root, 'p')).isFIFO());
    assert.ok(lstatSync(join(root, 'c')).isCharacterDevice());
    // A lower layer's entry of each kind is removed by the same whiteouts.
    await apply(root, kinds.map((k) => ({ name: `.wh.${k.name.replace(/\/$/, '')}` })));
    for (const k of kinds) assert.equal(existsSync(join(root, k.name)), false, k.name);
  }));

test('a device or FIFO over what is there replaces it', () =>
  withRoot(async (root) => {
    await apply(root, [{ name: 'p', body: 'file' }, { name: 'c', body: 'file' }]);
    await apply(root, [{ name: 'p', type: 'fifo' }, { name: 'c', type: 'char', devmajor: 1, devminor: 3 }]);
    assert.ok(lstatSync(join(root, 'p')).isFIFO());
    assert.equal(lstatSync(join(root, 'c')).rdev, (1 << 8) | 3);
  }));

test('a file is owned as its header says, also by a uid or gid alone; it does not take a setgid directory\'s group', () =>
  withRoot(async (root) => {
    await apply(root, [dir('g/', { mode: 0o2775, gid: 5 })]);
    await apply(root, [
      { name: 'u', uid: 1000, gid: 0 },
      { name: 'v', uid: 0, gid: 1000 },
      { name: 'g/root', uid: 0, gid: 0 },
      { name: 'open', mode: 0o777 },
      { name: 'shared', mode: 0o666 },
    ]);
    const owner = (p: string) => [lstatSync(join(root, p)).uid, lstatSync(join(root, p)).gid];
    assert.deepEqual(owner('u'), [1000, 0]);
    assert.deepEqual(owner('v'), [0, 1000]);
    assert.deepEqual(owner('g/root'), [0, 0], 'not the group of the setgid directory');
    assert.equal(lstatSync(join(root, 'open')).mode & 0o7777, 0o777, 'the umask does not apply');
    assert.equal(lstatSync(join(root, 'shared')).mode & 0o7777, 0o666);
  }));

test('rootless: a device is skipped with its reason, a FIFO is made', () =>
  withRoot(async (root) => {
    const result = await apply(root, [{ name: 'null', type: 'char', devmajor: 1, devminor: 3 }, { name: 'sda', type: 'block', devmajor: 8, devminor: 0 }, { name: 'p', type: 'fifo' }], { rootless: true });
    assert.deepEqual(result.skipped, [
      { path: '/null', reason: 'char device 1:3: creating device nodes needs root' },
      { path: '/sda', reason: 'block device 8:0: creating device nodes needs root' },
    ]);
    assert.equal(existsSync(join(root, 'null')) || existsSync(join(root, 'sda')), false);
    assert.ok(lstatSync(join(root, 'p')).isFIFO());
  }));

test('a hardlink to nothing, to the root or to a directory is refused, naming both', () =>
  withRoot(async (root) => {
    await apply(root, [dir('d/')]);
    const refused = (linkname: string, message: string) =>
      assert.rejects(
        apply(root, [{ name: 'h', type: 'hardlink', linkname }]),
        (e: unknown) => e instanceof UnsupportedError && e.message === message,
      );
    await refused('missing', 'layer entry "h": hardlink to "missing", which is not in this or a lower layer');
    await refused('./', 'layer entry "h": hardlink to "./", which is not in this or a lower layer');
    await refused('d', 'layer entry "h": hardlink to the directory "d"');
    assert.equal(existsSync(join(root, 'h')), false);
  }));

test('overlay: a hardlink to a lower layer on another filesystem is a copy with its metadata; to a lower symlink there it is an error', async () => {
  if (!existsSync('/dev/shm')) assert.fail('this test needs /dev/shm (a tmpfs) beside the temp dir');
  const lower = join('/dev/shm', `cp-apply-edges-${process.pid}`);
  const cancelCleanUp = cleanUpAtExit(() => removeTree(lower));
  try {
    await withRoot(async (upper) => {
      mkdirSync(lower);
      await apply(lower, [{ name: 'f', body: 'lower', mode: 0o640, uid: 7, mtime: T }, { name: 's', type: 'symlink', linkname: 'f' }], { whiteouts: 'overlay' });
      await apply(upper, [{ name: 'h', type: 'hardlink', linkname: 'f' }], { lowers: [lower] });
      const copy = lstatSync(join(upper, 'h'));
      assert.equal(readFileSync(join(upper, 'h'), 'utf8'), 'lower');
      assert.deepEqual([copy.mode & 0o7777, copy.uid, copy.mtimeMs], [0o640, 7, T * 1000]);
      await assert.rejects(apply(upper, [{ name: 'hs', type: 'hardlink', linkname: 's' }], { lowers: [lower] }), { code: 'EXDEV' });
    });
  } finally {
    cancelCleanUp();
    removeTree(lower);
  }
});

test('aufs names (.wh..wh.plnk, .wh..wh.aufs) are not whiteouts: nothing is made or removed for them', () =>
  withRoot(async (root) => {
    const { lower, upper } = layerDirs(root);
    await apply(lower, [dir('d/'), { name: 'd/f', body: 'f' }], { whiteouts: 'overlay' });
    await apply(upper, [{ name: 'd/.wh..wh.plnk' }, { name: 'd/.wh..wh.aufs' }], { lowers: [lower] });
    assert.equal(existsSync(join(upper, 'd/.wh.plnk')) || existsSync(join(upper, 'd/.wh.aufs')) || existsSync(join(upper, 'd/plnk')), false);
    await apply(lower, [{ name: 'd/.wh..wh.plnk' }]);
    assert.equal(readFileSync(join(lower, 'd/f'), 'utf8'), 'f', 'flat: nothing removed');
  }));

test('a whiteout of nothing, of "." or of ".." is refused (flat and overlay)', () =>
  withRoot(async (root) => {
    await apply(root, [dir('d/'), { name: 'd/f', body: 'f' }]);
    for (const options of [{}, { lowers: [join(root, 'd')] }]) {
      await assert.rejects(apply(root, [{ name: 'd/.wh.' }], options), (e: unknown) => e instanceof UnsupportedError && e.message === 'layer entry "d/.wh.": a whiteout that names nothing');
      for (const name of ['.', '..']) {
        await assert.rejects(
          apply(root, [{ name: `d/.wh.${name}` }], options),
          (e: unknown) => e instanceof UnsafeLayerError && e.message === `layer entry "d/.wh.${name}": a whiteout of "${name}" would remove a parent directory (refused)`,
        );
      }
    }
    assert.equal(readFileSync(join(root, 'd/f'), 'utf8'), 'f');
  }));

test('flat: a whiteout of a lower directory removes it whole', () =>
  withRoot(async (root) => {
    await apply(root, [dir('d/'), dir('d/e/'), { name: 'd/e/f', body: 'f' }]);
    await apply(root, [{ name: '.wh.d' }]);
    assert.equal(existsSync(join(root, 'd')), false);
  }));

test('overlay: a whiteout makes its own directory opaque, leaves its own file, and marks a lower name with a 0/0 device', () =>
  withRoot(async (root) => {
    const { lower, upper } = layerDirs(root);
    await apply(lower, [dir('d/'), { name: 'd/old', body: 'old' }, { name: 'gone', body: 'g' }], { whiteouts: 'overlay' });
    await apply(upper, [dir('d/'), { name: 'd/new', body: 'new' }, { name: 'f', body: 'f' }, { name: '.wh.d' }, { name: '.wh.f' }, { name: '.wh.gone' }], { lowers: [lower] });
    assert.equal(opaque(join(upper, 'd')), 'y', "this layer's directory stays, its lower content goes");
    assert.equal(readFileSync(join(upper, 'd/new'), 'utf8'), 'new');
    assert.equal(readFileSync(join(upper, 'f'), 'utf8'), 'f');
    assert.equal(opaque(join(upper, 'f')), undefined, 'a file is never made opaque');
    assert.ok(isWhiteoutDevice(lstatSync(join(upper, 'gone'))));
  }));

test('overlay: a directory over its own layer\'s whiteout is opaque; over a real device, or flat, it is not', () =>
  withRoot(async (root) => {
    const { lower, upper } = layerDirs(root);
    await apply(lower, [dir('w/'), { name: 'w/old', body: 'old' }, dir('n/')], { whiteouts: 'overlay' });
    await apply(upper, [{ name: '.wh.w' }, dir('w/'), { name: 'n', type: 'char', devmajor: 1, devminor: 3 }, dir('n/')], { lowers: [lower] });
    assert.equal(opaque(join(upper, 'w')), 'y');
    assert.equal(opaque(join(upper, 'n')), undefined, 'a 1:3 device is not a whiteout');
    const flat = join(root, 'flat');
    mkdirSync(flat);
    await apply(flat, [{ name: 'w', type: 'char', devmajor: 0, devminor: 0 }]);
    await apply(flat, [dir('w/')]);
    assert.equal(opaque(join(flat, 'w')), undefined, 'flat: no overlay xattrs');
  }));

test('isWhiteoutDevice: a 0/0 character device only', () =>
  withRoot(async (root) => {
    await apply(root, [{ name: 'w', type: 'char' }, { name: 'null', type: 'char', devmajor: 1, devminor: 3 }, { name: 'b', type: 'block' }, { name: 'f' }]);
    assert.deepEqual(['w', 'null', 'b', 'f'].map((n) => isWhiteoutDevice(lstatSync(join(root, n)))), [true, false, false, false]);
  }));

test('removeTree: nothing there is no error; a tree with a directory without write permission goes whole', () =>
  withRoot(async (root) => {
    removeTree(join(root, 'missing'));
    mkdirSync(join(root, 't/locked'), { recursive: true });
    writeFileSync(join(root, 't/locked/f'), 'f');
    execFileSync('chmod', ['0500', join(root, 't/locked')]);
    removeTree(join(root, 't'), true);
    assert.equal(existsSync(join(root, 't')), false);
  }));

test('removeTree as a user who is not root: a directory without write permission is made writable first (by default)', () =>
  withRoot(async (root) => {
    mkdirSync(join(root, 't/locked'), { recursive: true });
    writeFileSync(join(root, 't/locked/f'), 'f');
    execFileSync('chown', ['-R', '65534:65534', root]);
    execFileSync('chmod', ['0500', join(root, 't/locked')]);
    // Loaded as root (the checkout need not be readable by nobody), then run as nobody.
    const script = `const { removeTree } = await import(${JSON.stringify(join(REPO, 'dist/lib/layer/tree.js'))}); process.setgroups([]); process.setgid(65534); process.setuid(65534); removeTree(${JSON.stringify(join(root, 't'))});`;
    execFileSync(process.execPath, ['--input-type=module', '-e', script], { stdio: 'ignore', timeout: 60_000 });
    assert.equal(existsSync(join(root, 't')), false);
  }));

test('an opaque whiteout removes what lower layers have in its directory, in any order, and nothing of its own layer; overlay: it marks the directory', () =>
  withRoot(async (root) => {
    const lowerEntries: Entry[] = [dir('d/'), { name: 'd/a', body: 'a' }, dir('d/e/'), { name: 'd/e/f', body: 'f' }];
    const upperEntries: Entry[] = [{ name: 'd/new', body: 'new' }, { name: 'd/.wh..wh..opq' }, dir('d/e2/'), { name: 'd/e2/g', body: 'g' }];
    const flat = join(root, 'flat');
    mkdirSync(flat);
    await apply(flat, lowerEntries);
    await apply(flat, upperEntries);
    assert.deepEqual(readdirSync(join(flat, 'd')).sort(), ['e2', 'new']);
    assert.deepEqual(readdirSync(join(flat, 'd/e2')), ['g']);
    assert.equal(opaque(join(flat, 'd')), undefined, 'flat: no xattr');
    const { lower, upper } = layerDirs(root);
    await apply(lower, lowerEntries, { whiteouts: 'overlay' });
    await apply(upper, [{ name: 'x/.wh..wh..opq' }, ...upperEntries], { lowers: [lower] });
    assert.equal(opaque(join(upper, 'd')), 'y');
    assert.equal(opaque(join(upper, 'x')), 'y', 'a directory made for its opaque marker alone');
    assert.deepEqual(readdirSync(join(upper, 'd')).sort(), ['e2', 'new']);
    assert.deepEqual(readdirSync(join(lower, 'd')).sort(), ['a', 'e'], 'the lower layer is untouched');
  }));

test('a directory over a directory keeps its content and takes the new metadata; a block device is one', () =>
  withRoot(async (root) => {
    await apply(root, [dir('d/'), { name: 'd/f', body: 'f' }]);
    await apply(root, [dir('d/', { mode: 0o711, mtime: T + 5 }), { name: 'b', type: 'block', devmajor: 8, devminor: 1 }]);
    assert.equal(readFileSync(join(root, 'd/f'), 'utf8'), 'f');
    assert.equal(lstatSync(join(root, 'd')).mode & 0o7777, 0o711);
    assert.equal(lstatSync(join(root, 'd')).mtimeMs, (T + 5) * 1000);
    assert.ok(lstatSync(join(root, 'b')).isBlockDevice());
    assert.equal(lstatSync(join(root, 'b')).rdev, (8 << 8) | 1);
  }));

test('overlay: a directory made only as a parent takes the metadata the lower layers give it', () =>
  withRoot(async (root) => {
    const { lower, upper } = layerDirs(root);
    await apply(lower, [dir('d/', { mode: 0o750, uid: 7, mtime: T - 100 })], { whiteouts: 'overlay' });
    await apply(upper, [{ name: 'd/new', body: 'new' }, { name: 'p/q', body: 'q' }], { lowers: [lower] });
    const d = lstatSync(join(upper, 'd'));
    assert.deepEqual([d.mode & 0o7777, d.uid, d.mtimeMs], [0o750, 7, (T - 100) * 1000]);
    assert.equal(lstatSync(join(upper, 'p')).mode & 0o7777, 0o755, 'no lower: 0755, as umoci');
  }));
