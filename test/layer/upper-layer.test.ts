/**
 * The upper dir walk against a hostile container: a file swapped for a symlink to a host file,
 * or for another file, between the walk's lstat and its read, is refused, never read.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir } from '../helpers/paths.js';
import { upperLayer } from '../../lib/layer/upper-layer.js';
import { UnsupportedError } from '../../lib/core/errors.js';

/** Reads the layer up to its first piece (after the 2 MiB file `a`'s first MiB), lets `swap` act, then reads on. */
async function walkWithSwap(swap: (upper: string) => Promise<void>): Promise<Buffer> {
  const dir = await tempDir('cp-upper-layer-');
  try {
    const upper = join(dir.path, 'upper');
    await writeFile(join(dir.path, 'secret'), 'host secret, longer than the file it replaces\n');
    await mkdir(upper);
    await writeFile(join(upper, 'a'), Buffer.alloc(2 << 20, 1));
    await writeFile(join(upper, 'b'), 'container file\n');
    const layer = await upperLayer(upper);
    const iterator = layer.chunks[Symbol.asyncIterator]();
    const pieces: Buffer[] = [];
    const first = await iterator.next();
    if (!first.done) pieces.push(first.value);
    await swap(upper);
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) pieces.push(next.value);
    return Buffer.concat(pieces);
  } finally {
    await dir.cleanup();
  }
}

test('a file swapped for a symlink to a host file after the lstat is refused, not read', async () => {
  await assert.rejects(
    walkWithSwap(async (upper) => {
      await rm(join(upper, 'b'));
      await symlink(join(upper, '..', 'secret'), join(upper, 'b'));
    }),
    (err: Error) => err instanceof UnsupportedError && /b changed while it was committed/.test(err.message),
  );
});

test('a file replaced by another (another inode) after the lstat is refused', async () => {
  await assert.rejects(
    walkWithSwap(async (upper) => {
      await writeFile(join(upper, 'other'), 'container file\n');
      await rename(join(upper, 'other'), join(upper, 'b'));
    }),
    /b changed while it was committed/,
  );
});

test('the twin: nothing swapped, the file is in the layer', async () => {
  const tar = await walkWithSwap(async () => undefined);
  assert.ok(tar.includes(Buffer.from('container file\n')));
  assert.ok(!tar.includes(Buffer.from('host secret')));
});
