/**
 * Nothing outside the root is created, changed, linked or removed, whatever the layers say:
 * the reported breach (a hardlink to a symlink, then a whiteout through it) as a fixed case
 * beside umoci, and a property test of random layers (files, dirs, symlinks absolute,
 * relative, looping and pointing out, hardlinks to any of them, whiteouts, opaque markers),
 * flat and one dir per layer, after which the sandbox outside the root is as it was.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { ContainerPartsError } from '../../lib/core/errors.js';
import { Syscalls } from '../../lib/core/syscalls.js';
import { applyLayer } from '../../lib/layer/apply.js';
import { TarReader } from '../../lib/layer/tarstream.js';
import { tool } from '../helpers/exec.js';
import { cleanUpAtExit, tempDir } from '../helpers/paths.js';
import { populateOutside, snapshot } from '../helpers/sandbox.js';
import { umociUnpack, writeImage, writeTar, type EntrySpec } from '../helpers/tar-writer.js';
import { describeTree, treeDiff } from '../helpers/tree.js';
import { ustar, type UstarEntry } from '../helpers/ustar.js';
import { hostileLayers } from '../helpers/hostile-layers.js';

let work: { path: string; cleanup: () => Promise<void> };
let outside: string;
let layout: string;
/** Where the unpacked trees go (made before the first snapshot, left out of it). */
let trees: string;

before(async () => {
  work = await tempDir('cp-contain-');
  outside = join(work.path, 'outside');
  layout = join(work.path, 'layout');
  trees = join(work.path, 'trees');
  mkdirSync(trees);
  mkdirSync(layout);
  populateOutside(outside);
});

after(async () => {
  await work?.cleanup();
});

/** Everything in the sandbox but the layout and the unpacked trees. */
function host(): string[] {
  return snapshot(work.path, (path) => path === layout || path === trees);
}

/**
 * Issue 12, breach 1: `p/.wh.x` resolves `p` while it is missing; `p` then becomes a hardlink
 * to a symlink that points out of the root; a later whiteout under `p` must not follow it.
 */
const hardlinkToSymlink = (target: string): EntrySpec[] => [
  { name: 's', type: 'symlink', linkname: target },
  { name: 'p/.wh.nothing' },
  { name: 'p', type: 'hardlink', linkname: 's' },
  { name: 'p/.wh.victim' },
  { name: 'p/.wh.a' },
  { name: 'p/.wh..wh..opq' },
];

test('breach 1: a whiteout through a hardlink to an outside symlink removes nothing on the host (flat and --layers), as umoci', async () => {
  const before = host();
  await writeImage(layout, 'breach', [{ tar: await writeTar([{ name: 'etc/', type: 'dir' }]) }, { tar: await writeTar(hardlinkToSymlink(outside)) }]);
  const flat = join(trees, 'ours-flat');
  const result = await tool('img-unpack', ['--store', layout, '--image', 'breach', '--dest', flat]);
  assert.equal(result.status, 0, result.stderr);
  assert.deepEqual(host(), before, 'nothing outside the root changed (flat)');
  const layers = join(trees, 'layers-breach');
  const stacked = await tool('img-unpack', ['--store', layout, '--image', 'breach', '--dest', layers, '--layers']);
  assert.equal(stacked.status, 0, stacked.stderr);
  assert.deepEqual(host(), before, 'nothing outside the root changed (--layers)');
  assert.equal(readdirSync(layers).length, 2);

  const theirs = await umociUnpack(layout, 'breach', join(trees, 'umoci-breach'));
  assert.deepEqual(host(), before, 'umoci leaves the host intact too');
  const a = await describeTree(flat, { skipRoot: true });
  const b = await describeTree(theirs, { skipRoot: true });
  assert.deepEqual(a, b, treeDiff(a, b, ['img-unpack', 'umoci']));
  // The negative twin: the same layer with its symlink pointing elsewhere is a different tree.
  await writeImage(layout, 'breach-twin', [{ tar: await writeTar([{ name: 'etc/', type: 'dir' }]) }, { tar: await writeTar(hardlinkToSymlink('/etc')) }]);
  const twin = await describeTree(await umociUnpack(layout, 'breach-twin', join(trees, 'umoci-twin')), { skipRoot: true });
  assert.notDeepEqual(a, twin);
});

// The property: random layers, applied flat and as one dir per layer, change nothing outside the root.

async function* chunks(data: Buffer): AsyncGenerator<Buffer> {
  yield data;
}

/** Applies the layers flat into `root`, or each into a dir of its own under `root` (--layers). */
async function applyAll(root: string, layers: UstarEntry[][], flat: boolean, syscalls: Syscalls): Promise<void> {
  const xattrsSet = new Map<string, string[]>();
  const dirs: string[] = [];
  for (const [i, entries] of layers.entries()) {
    const dir = flat ? root : join(root, String(i));
    if (!flat) mkdirSync(dir);
    const options = { whiteouts: flat ? 'flat' : 'overlay', rootless: false, opaqueXattr: 'trusted.overlay.opaque', syscalls, xattrsSet, lowers: [...dirs].reverse(), warn: () => undefined } as const;
    dirs.push(dir);
    await applyLayer(dir, new TarReader(chunks(ustar(entries))), options);
  }
}

for (const flat of [true, false]) {
  test(`property: random layers (${flat ? 'flat' : '--layers'}) change nothing outside the root`, { timeout: 600_000 }, async () => {
    const syscalls = new Syscalls();
    // One sandbox path for every run (the layers' symlinks name it), made afresh each time; in
    // memory when there is /dev/shm (thousands of runs).
    const sandbox = existsSync('/dev/shm') ? join('/dev/shm', `cp-contain-${process.pid}-${flat ? 'flat' : 'layers'}`) : join(work.path, `property-${flat ? 'flat' : 'layers'}`);
    const root = join(sandbox, 'root');
    const layers = hostileLayers(sandbox);
    const cancelCleanUp = cleanUpAtExit(() => rmSync(sandbox, { recursive: true, force: true }));
    const property = fc.asyncProperty(layers, async (layers) => {
      rmSync(sandbox, { recursive: true, force: true });
      mkdirSync(root, { recursive: true });
      populateOutside(join(sandbox, 'outside'));
      const before = snapshot(sandbox, (path) => path === root);
      const failure = await applyAll(root, layers, flat, syscalls).then(
        () => undefined,
        (err: unknown) => err,
      );
      assert.deepEqual(snapshot(sandbox, (path) => path === root), before, 'nothing outside the root changed');
      assert.ok(failure === undefined || failure instanceof ContainerPartsError || (failure as NodeJS.ErrnoException).code !== undefined, String(failure));
    });
    try {
      await fc.assert(property, { numRuns: 2500 });
    } finally {
      await syscalls.close();
      cancelCleanUp();
      rmSync(sandbox, { recursive: true, force: true });
    }
  });
}
