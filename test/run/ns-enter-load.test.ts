/**
 * README: "ns-enter loads no image, store, overlay, ajv or explain code" — checked on the modules
 * a real run loads (test/helpers/record-modules.ts), not on its import lines, so a lazy import()
 * or a require() on the way counts too. The recorder is checked on commands that do load them.
 * It runs tsc's output (dist/tools/): the bundle in dist/bin/ is made from the same import graph,
 * and keeps each import() a chunk of its own.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { exec } from '../helpers/exec.js';
import { REPO, tempDir, unbundledToolPath } from '../helpers/paths.js';
import { busyboxRootfs } from '../helpers/mounts.js';

const RECORDER = join(REPO, 'dist', 'test', 'helpers', 'record-modules.js');
const FORBIDDEN: Array<[string, RegExp]> = [
  ['an image transport', /\/dist\/lib\/image\/transport\//],
  ['the store', /\/dist\/lib\/image\/store\//],
  ['tar or layer code', /\/dist\/lib\/layer\//],
  ['overlay code', /\/dist\/lib\/mount\/overlay/],
  ['explain', /\/dist\/lib\/cli\/explain/],
  ['ajv', /\/node_modules\/ajv\//],
  ['npm tar', /\/node_modules\/tar\//],
];

let work: { path: string; cleanup: () => Promise<void> };
let rootfs: string;
before(async () => {
  work = await tempDir('cp-nsenter-load-');
  rootfs = (await busyboxRootfs(join(work.path, 'busybox'))).rootfs;
});
after(async () => {
  await work?.cleanup();
});

async function modulesLoadedBy(tool: string, args: string[], input?: string): Promise<{ modules: string[]; status: number | null; stderr: string }> {
  const log = join(work.path, `${tool}-${Math.random().toString(36).slice(2)}.modules`);
  const result = await exec(process.execPath, ['--import', RECORDER, unbundledToolPath(tool), ...args], { env: { CP_MODULE_LOG: log }, input, timeoutMs: 60_000 });
  const modules = (await readFile(log, 'utf8').catch(() => '')).split('\n').filter(Boolean);
  await rm(log, { force: true });
  return { modules, status: result.status, stderr: result.stderr };
}

test('a real ns-enter run (a container from --rootfs) loads no image, store, tar, overlay, explain or ajv code', async () => {
  const { modules, status, stderr } = await modulesLoadedBy('ns-enter', ['--rootfs', rootfs, '--', 'sh', '-c', 'echo ran']);
  assert.equal(status, 0, stderr);
  assert.ok(modules.some((m) => m.endsWith('/dist/tools/ns-enter.js')), 'the recorder saw the tool itself');
  assert.ok(modules.some((m) => m.includes('/dist/lib/run/')), 'and the runtime code it runs');
  for (const [what, pattern] of FORBIDDEN) {
    const loaded = modules.filter((m) => pattern.test(m));
    assert.deepEqual(loaded, [], `ns-enter loaded ${what}`);
  }
});

test('the recorder sees what other commands load: the store and layers (ESM), yargs (CommonJS)', async () => {
  const unpack = await modulesLoadedBy('img-unpack', ['--image', 'nothing', '--store', join(work.path, 'no-store')]);
  assert.equal(unpack.status, 1, unpack.stderr);
  assert.ok(unpack.modules.some((m) => /\/dist\/lib\/image\/store\//.test(m)), 'img-unpack loads the store');
  assert.ok(unpack.modules.some((m) => /\/dist\/lib\/layer\//.test(m)), 'img-unpack loads layer code');
  const help = await modulesLoadedBy('ns-enter', ['--help']);
  assert.equal(help.status, 0, help.stderr);
  assert.ok(help.modules.some((m) => /\/node_modules\/yargs\//.test(m)), '--help loads yargs through require()');
});
