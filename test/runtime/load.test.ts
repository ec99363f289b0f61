/**
 * What each oci-runtime command loads (test/helpers/record-modules.ts, on tsc's output): a node
 * start is most of what state, kill or delete cost, so they load neither the executor, the
 * schema (ajv), the hooks' runner nor create's code; create's own process leaves the config's
 * validation and the executor to its supervisor. And the supervisor create spawns before its
 * command line is parsed (early-supervisor.ts) never outlives a create that does not use it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { exec } from '../helpers/exec.js';
import { busyboxRootfs } from '../helpers/mounts.js';
import { REPO, tempDir, toolPath, unbundledToolPath } from '../helpers/paths.js';
import { cleanup, runtimes, stateOf, writeBundle, type Runtime } from '../helpers/runtimes.js';
import { commandWord } from '../../lib/runtime/early-supervisor.js';

const RECORDER = join(REPO, 'dist', 'test', 'helpers', 'record-modules.js');
const EXECUTOR = /\/dist\/lib\/run\/(namespaces|supervise|bwrap-plan|mount-plan)\.js$/;
const NOT_FOR_EXISTING: Array<[string, RegExp]> = [
  ['the executor', EXECUTOR],
  ['ajv', /\/node_modules\/ajv\//],
  ['the standalone schema validators', /\/dist\/schema\//],
  ["the hooks' runner", /\/dist\/lib\/runtime\/hooks\.js$/],
  ["create's code", /\/dist\/lib\/runtime\/(create|claim|supervisor)\.js$/],
];

let work: { path: string; cleanup: () => Promise<void> };
let ours: Runtime;
let sleeper: string;

before(async () => {
  work = await tempDir('cp-runtime-load-');
  const { rootfs } = await busyboxRootfs(work.path);
  ours = runtimes(work.path)[0] as Runtime;
  sleeper = await writeBundle(join(work.path, 'sleeper'), rootfs, ['sleep', '60']);
});

after(async () => {
  if (ours) await cleanup(ours);
  await work?.cleanup();
});

/**
 * The modules one command loads, and how it ended. Its stdout and stderr are files: a created
 * container inherits them (as under runc), and a pipe would stay open as long as it runs.
 */
async function modulesLoadedBy(args: string[]): Promise<{ modules: string[]; status: number | null; stderr: string }> {
  const base = join(work.path, Math.random().toString(36).slice(2));
  const [log, out, err] = ['modules', 'out', 'err'].map((s) => `${base}.${s}`) as [string, string, string];
  const argv = [process.execPath, '--import', RECORDER, unbundledToolPath('oci-runtime'), '--root', ours.root, ...args];
  const result = await exec('/bin/sh', ['-c', 'exec "$@" >"$OUT" 2>"$ERR" </dev/null', 'sh', ...argv], { env: { CP_MODULE_LOG: log, OUT: out, ERR: err }, timeoutMs: 60_000 });
  const [modules, stderr] = await Promise.all([log, err].map((f) => readFile(f, 'utf8').catch(() => '')));
  for (const file of [log, out, err]) await rm(file, { force: true });
  return { modules: (modules as string).split('\n').filter(Boolean), status: result.status, stderr: stderr as string };
}

/** Ids of this run: ns-enter's name records are host-wide (/run/container-parts), shared with whatever else runs. */
const id = (name: string) => `load-${process.pid}-${name}`;

test('state, kill and delete of a created container load no executor, schema, hooks or create code', async () => {
  const created = await ours.run(['create', '--bundle', sleeper, id('held')]);
  assert.equal(created.status, 0, created.stderr);
  for (const args of [['state', id('held')], ['kill', id('held'), 'CONT'], ['delete', '--force', id('held')]]) {
    const { modules, status, stderr } = await modulesLoadedBy(args);
    assert.equal(status, 0, `${args[0]}: ${stderr}`);
    assert.ok(modules.some((m) => m.endsWith('/dist/lib/runtime/lifecycle.js')), `${args[0]}: the recorder saw the lifecycle code`);
    for (const [what, pattern] of NOT_FOR_EXISTING) assert.deepEqual(modules.filter((m) => pattern.test(m)), [], `${args[0]} loaded ${what}`);
  }
  assert.equal(await stateOf(ours, id('held')), undefined, 'deleted');
});

test("create's own process validates nothing and runs no executor: its supervisor does; a bad config is still create's error", async () => {
  const created = await modulesLoadedBy(['create', '--bundle', sleeper, id('made')]);
  assert.equal(created.status, 0, created.stderr);
  assert.ok(created.modules.some((m) => m.endsWith('/dist/lib/runtime/create.js')), 'the recorder saw create');
  for (const pattern of [EXECUTOR, /\/node_modules\/ajv\//]) assert.deepEqual(created.modules.filter((m) => pattern.test(m)), []);
  assert.equal((await stateOf(ours, id('made')))?.status, 'created');
  assert.equal((await ours.run(['delete', '--force', id('made')])).status, 0);
  const bad = await modulesLoadedBy(['create', '--bundle', work.path, id('nothing')]);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /^oci-runtime: .*config\.json.*\n$/);
  assert.equal(await stateOf(ours, id('nothing')), undefined);
});

test('the command word is read past the global flags and their values, as podman and runc write them', () => {
  assert.equal(commandWord(['--root', '/run/x', '--log', 'create', '--log-format', 'json', 'create', '--bundle', 'b', 'id']), 'create');
  assert.equal(commandWord(['--systemd-cgroup', 'create', 'id']), 'create');
  assert.equal(commandWord(['--root', 'create', 'state', 'create']), 'state');
  assert.equal(commandWord(['--debug']), undefined);
});

test('a create that fails before it uses the early supervisor ends at once, and so does that supervisor (its stdout closes)', async () => {
  // exec waits for stdout and stderr to close: a supervisor still holding them would time out (status null).
  const started = Date.now();
  const result = await exec(process.execPath, [toolPath('oci-runtime'), '--root', ours.root, 'create', '--no-such-flag', 'x'], { timeoutMs: 30_000 });
  assert.equal(result.status, 2, result.stderr);
  assert.ok(Date.now() - started < 30_000);
  const unbundled = await exec(process.execPath, [unbundledToolPath('oci-runtime'), '--root', ours.root, 'create', 'bad id'], { timeoutMs: 30_000 });
  assert.equal(unbundled.status, 1, unbundled.stderr);
});
