/**
 * A store on a full or read-only file system (a small tmpfs, mounted here): a pull fails in
 * one line naming the file and the errno's text, exits 1, and leaves the store as it was.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { assertOneLineError, mustExec, tool } from '../../helpers/exec.js';
import { tempDir } from '../../helpers/paths.js';
import { writeRandomImage } from '../../helpers/images.js';
import { snapshotStore } from '../../helpers/store-snapshot.js';
import { OciLayout } from '../../../lib/image/store/oci-layout.js';

describe('a store on a full or read-only disk', () => {
  let work: { path: string; cleanup: () => Promise<void> };
  let layout: string;
  const mounts: string[] = [];

  async function tmpfs(name: string, size: string): Promise<string> {
    const dir = join(work.path, name);
    await mkdir(dir);
    await mustExec('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
    mounts.push(dir);
    return dir;
  }

  before(async () => {
    work = await tempDir('cp-full-disk-');
    layout = join(work.path, 'layout');
    await writeRandomImage(layout, 'big', [256 << 10, 3 << 20, 128 << 10]);
  });
  after(async () => {
    for (const dir of mounts.reverse()) await mustExec('umount', ['-l', dir]).catch(() => undefined);
    await work?.cleanup();
  });

  test('ENOSPC: one line with "no space left on device", exit 1, no staging left, no name', async () => {
    const disk = await tmpfs('small', '1m');
    const store = join(disk, 'store');
    await OciLayout.open(store, { create: true });
    const before = await snapshotStore(store);
    const result = await tool('img-fetch', [`oci:${layout}:big`, '--store', store], { timeoutMs: 60_000 });
    const after = await snapshotStore(store);
    assertOneLineError(result, 'img-fetch', 1, /cannot write .*: no space left on device/);
    assert.deepEqual(after.files.filter((f) => f.startsWith('.')), [], 'staging or temp files left');
    assert.equal(after.index, before.index, 'index.json changed');
  });

  test('a read-only store: "read-only file system", exit 1', async () => {
    const disk = await tmpfs('readonly', '4m');
    const store = join(disk, 'store');
    await OciLayout.open(store, { create: true });
    await mustExec('mount', ['-o', 'remount,ro', disk]);
    const result = await tool('img-fetch', [`oci:${layout}:big`, '--store', store], { timeoutMs: 60_000 });
    assertOneLineError(result, 'img-fetch', 1, /read-only file system/);
    assert.deepEqual((await readdir(store)).sort(), ['blobs', 'index.json', 'oci-layout']);
  });
});
