/**
 * README: the calls node lacks (mknod, xattrs) are served by ONE python3 helper per unpack,
 * started only when a layer needs one, never a process per file. Counted exactly: every
 * program img-unpack starts is recorded (test/helpers/record-spawns.ts).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { exec, tool } from '../helpers/exec.js';
import { REPO, tempDir, toolPath } from '../helpers/paths.js';
import { writeImage, writeTar, type EntrySpec } from '../helpers/tar-writer.js';

const RECORDER = join(REPO, 'dist', 'test', 'helpers', 'record-spawns.js');
const CAPABILITY = Buffer.from('0100000200200000000000000000000000000000', 'hex');

let work: { path: string; cleanup: () => Promise<void> };
before(async () => {
  work = await tempDir('cp-python-helper-');
});
after(async () => {
  await work?.cleanup();
});

/** A layer with `n` of each thing that needs the helper: devices, FIFOs, capabilities, a whiteout. */
function needy(layer: number, n: number): EntrySpec[] {
  return Array.from({ length: n }, (_, i) => [
    { name: `l${layer}/null${i}`, type: 'char' as const, devmajor: 1, devminor: 3 },
    { name: `l${layer}/fifo${i}`, type: 'fifo' as const },
    { name: `l${layer}/cap${i}`, content: 'x', mode: 0o755, xattrs: { 'security.capability': CAPABILITY } },
  ]).flat();
}

async function fetched(tag: string, layers: EntrySpec[][]): Promise<string> {
  const layout = join(work.path, `layout-${tag}`);
  await writeImage(layout, tag, await Promise.all(layers.map(async (entries) => ({ tar: await writeTar(entries) }))));
  const result = await tool('img-fetch', [`oci:${layout}:${tag}`, '--store', join(work.path, 'store'), '-q']);
  assert.equal(result.status, 0, result.stderr);
  return result.stdout;
}

async function pythonStarts(document: string, args: string[]): Promise<number> {
  const log = join(work.path, `spawns-${Math.random().toString(36).slice(2)}`);
  const result = await exec(process.execPath, ['--import', RECORDER, toolPath('img-unpack'), '-q', ...args], { env: { CP_SPAWN_LOG: log }, input: document, timeoutMs: 120_000 });
  assert.equal(result.status, 0, result.stderr);
  const started = (await readFile(log, 'utf8').catch(() => '')).split('\n').filter(Boolean);
  await rm(log, { force: true });
  return started.filter((program) => /python/.test(program)).length;
}

test('three layers, each with devices, FIFOs and capabilities: one python3 helper for the whole unpack, flat or --layers', async () => {
  const doc = await fetched('needy', [needy(1, 20), [...needy(2, 20), { name: 'l1/.wh.fifo0', content: '' }], needy(3, 20)]);
  assert.equal(await pythonStarts(doc, ['--dest', join(work.path, 'flat')]), 1);
  assert.equal(await pythonStarts(doc, ['--layers', '--store', join(work.path, 'store')]), 1);
});

test('a layer of plain files, directories and symlinks starts no helper at all', async () => {
  const doc = await fetched('plain', [[{ name: 'a', type: 'dir' }, { name: 'a/f', content: 'f' }, { name: 'a/l', type: 'symlink', linkname: 'f' }]]);
  assert.equal(await pythonStarts(doc, ['--dest', join(work.path, 'plain')]), 0);
});
