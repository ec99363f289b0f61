/**
 * oci-runtime's lifecycle beside runc's, on the same bundle: the state JSON at each step
 * (create, start, kill, delete), the pid file, run's exit status, and the errors of bad input
 * (one line, exit 1, no state left), each comparison with a negative twin that must differ.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { assertOneLineError, tool } from '../helpers/exec.js';
import { busyboxRootfs } from '../helpers/mounts.js';
import { tempDir } from '../helpers/paths.js';
import { cleanup, runtimes, stateOf, waitForStatus, writeBundle, type Runtime } from '../helpers/runtimes.js';

let work: { path: string; cleanup: () => Promise<void> };
let rootfs: string;
let all: Runtime[];
let ours: Runtime;
let sleeper: string;

before(async () => {
  work = await tempDir('cp-runtime-');
  ({ rootfs } = await busyboxRootfs(work.path));
  all = runtimes(work.path);
  ours = all[0] as Runtime;
  sleeper = await writeBundle(join(work.path, 'sleeper'), rootfs, ['sleep', '60'], (c) => (c.annotations = { 'org.example.key': 'value' }));
});

after(async () => {
  for (const runtime of all ?? []) await cleanup(runtime);
  await work?.cleanup();
});

/** What of a state is compared: its keys, each value's type, the status, and whether there is a pid. */
function shape(state: Record<string, unknown> | undefined): string {
  if (!state) return 'no state';
  const keys = Object.keys(state).map((k) => `${k}:${typeof state[k]}`).join(',');
  return `${keys} status=${String(state.status)} pid=${Number(state.pid) > 0 ? 'yes' : 'no'} annotations=${JSON.stringify(state.annotations)}`;
}

/** create → state → start → state → kill → state → delete → state, as the shapes seen and the exit statuses. */
async function lifecycle(runtime: Runtime, id: string): Promise<{ shapes: string[]; statuses: Array<number | null>; pidFileMatches: boolean; bundle: unknown }> {
  const pidFile = join(work.path, `${runtime.name}-${id}.pid`);
  const statuses: Array<number | null> = [];
  const shapes: string[] = [];
  statuses.push((await runtime.run(['create', '--bundle', sleeper, '--pid-file', pidFile, id])).status);
  const created = await stateOf(runtime, id);
  shapes.push(shape(created));
  const pidFileMatches = existsSync(pidFile) && Number(readFileSync(pidFile, 'utf8')) === created?.pid;
  statuses.push((await runtime.run(['start', id])).status);
  shapes.push(shape(await stateOf(runtime, id)));
  statuses.push((await runtime.run(['kill', id, 'KILL'])).status);
  shapes.push(shape(await waitForStatus(runtime, id, 'stopped')));
  statuses.push((await runtime.run(['delete', id])).status);
  shapes.push(shape(await stateOf(runtime, id)));
  return { shapes, statuses, pidFileMatches, bundle: created?.bundle };
}

describe('oci-runtime beside runc', () => {
  test('create, start, kill, delete: the same state JSON at every step, the pid file, exit statuses', async () => {
    const [mine, theirs] = await Promise.all(all.map((r) => lifecycle(r, `life-${r.name}`)));
    assert.ok(mine && theirs);
    assert.deepEqual(theirs.statuses, [0, 0, 0, 0], 'runc, the oracle, did it');
    assert.deepEqual(mine.statuses, theirs.statuses);
    assert.deepEqual(mine.shapes, theirs.shapes);
    assert.match(mine.shapes[0] as string, /status=created pid=yes/);
    assert.match(mine.shapes[1] as string, /status=running pid=yes/);
    assert.match(mine.shapes[2] as string, /status=stopped pid=no/);
    assert.equal(mine.shapes[3], 'no state');
    assert.equal(mine.pidFileMatches, true);
    assert.equal(theirs.pidFileMatches, true);
    assert.equal(mine.bundle, sleeper);
    assert.deepEqual(readdirSync(ours.root), [], 'delete left nothing');
  });

  test('negative twin: the shape comparison sees a status, a pid, a missing key and other annotations', () => {
    const state = { ociVersion: '1.0.2-dev', id: 'x', pid: 42, status: 'running', bundle: '/b', rootfs: '/b/rootfs', created: 'now', annotations: { a: 'b' }, owner: '' };
    const reference = shape(state);
    assert.equal(shape({ ...state }), reference);
    assert.notEqual(shape({ ...state, status: 'created' }), reference);
    assert.notEqual(shape({ ...state, pid: 0 }), reference);
    const { rootfs: _rootfs, ...withoutRootfs } = state;
    assert.notEqual(shape(withoutRootfs), reference);
    assert.notEqual(shape({ ...state, annotations: { a: 'c' } }), reference);
  });

  test('run: the exit status and the output of the container, as runc run; nothing is left', async () => {
    const bundle = await writeBundle(join(work.path, 'exits'), rootfs, ['sh', '-c', 'echo out; echo err >&2; exit 3']);
    const [mine, theirs] = await Promise.all(all.map((r) => r.run(['run', '--bundle', bundle, `run-${r.name}`])));
    assert.equal(theirs?.status, 3);
    assert.equal(mine?.status, theirs?.status);
    assert.equal(mine?.stdout, 'out\n');
    assert.equal(mine?.stdout, theirs?.stdout);
    assert.equal(mine?.stderr, theirs?.stderr);
    assert.deepEqual(readdirSync(ours.root), []);
    const twin = await writeBundle(join(work.path, 'exits-0'), rootfs, ['true']);
    const zero = await ours.run(['run', '--bundle', twin, 'run-twin']);
    assert.equal(zero.status, 0, 'negative twin: another command, another status');
  });

  test('run -d, list, ps, kill by number and by name, kill --all', async () => {
    const bundle = await writeBundle(join(work.path, 'family'), rootfs, ['sh', '-c', 'sleep 60 & sleep 61 & wait']);
    const started = await ours.run(['run', '-d', '--bundle', bundle, 'family']);
    assert.equal(started.status, 0, started.stderr);
    const state = await waitForStatus(ours, 'family', 'running');
    const list = JSON.parse((await ours.run(['list', '--format', 'json'])).stdout) as Array<Record<string, unknown>>;
    assert.deepEqual(list.map((c) => [c.id, c.status, c.pid]), [['family', 'running', state?.pid]]);
    assert.match((await ours.run(['list'])).stdout, /^ID\s+IMAGE\s+COMMAND\s+STATUS\s+PID\s+CREATED\s+BUNDLE\nfamily\s+-\s+sh -c sleep 60 & sleep 61 &...\s+running\s+\d+\s/);
    let pids: number[] = [];
    for (let i = 0; i < 100 && pids.length < 3; i++) pids = JSON.parse((await ours.run(['ps', '--format', 'json', 'family'])).stdout) as number[];
    assert.equal(pids.length, 3, 'sh and its two sleeps');
    assert.equal(pids[0], state?.pid);
    const table = await ours.run(['ps', 'family']);
    assert.match(table.stdout, /^UID\s+PID\s+PPID.*\n(.*sleep 6[01]\n|.*sh -c.*\n){3}$/);
    assert.equal((await ours.run(['kill', 'family', '0'])).status, 0, 'signal 0: the container is there');
    assertOneLineError(await ours.run(['kill', 'family', 'SIGNOPE']), 'oci-runtime', 1, /"SIGNOPE" is not a signal/);
    assert.equal((await ours.run(['kill', '--all', 'family', 'sigkill'])).status, 0);
    assert.equal((await waitForStatus(ours, 'family', 'stopped'))?.status, 'stopped');
    assertOneLineError(await ours.run(['kill', 'family', '15']), 'oci-runtime', 1, /container not running/);
    assert.equal((await ours.run(['delete', 'family'])).status, 0);
  });
});

describe('bad input: one line, exit 1, as runc fails; no state left', () => {
  test('an unknown id, for every command that takes one', async () => {
    for (const command of [['state'], ['start'], ['kill'], ['delete'], ['ps']]) {
      const theirs = await all[1]?.run([...command, 'nope']);
      assert.equal(theirs?.status, 1, `runc ${command[0]} fails`);
      assertOneLineError(await ours.run([...command, 'nope']), 'oci-runtime', 1, /container nope does not exist/);
    }
  });

  test('a bundle without config.json, a config that fails the schema, one without process.args; the twin creates', async () => {
    const empty = join(work.path, 'empty-bundle');
    await mkdir(empty, { recursive: true });
    const invalid = await writeBundle(join(work.path, 'invalid'), rootfs, ['true'], (c) => ((c.process as unknown as Record<string, unknown>).user = { uid: 'root' }));
    const cases: Array<[string, RegExp]> = [[empty, /config\.json: cannot read: no such file/], [invalid, /process\.user\.uid/]];
    for (const [bundle, message] of cases) {
      for (const runtime of all) {
        const result = await runtime.run(['create', '--bundle', bundle, `bad-${runtime.name}`]);
        if (runtime.name === 'runc') assert.equal(result.status, 1, `runc refuses ${bundle}`);
        else assertOneLineError(result, 'oci-runtime', 1, message);
        assert.equal(await stateOf(runtime, `bad-${runtime.name}`), undefined, 'no state');
      }
    }
    assert.deepEqual(readdirSync(ours.root).filter((e) => e.startsWith('bad')), []);
    const twin = await ours.run(['create', '--bundle', sleeper, 'bad-twin']);
    assert.equal(twin.status, 0, twin.stderr);
    assert.equal((await ours.run(['delete', '--force', 'bad-twin'])).status, 0);
  });

  test('a second create with the same id, at once or later; start of a running container; delete of a live one', async () => {
    const racing = await Promise.all([0, 1, 2].map(() => ours.run(['create', '--bundle', sleeper, 'twice'])));
    assert.deepEqual(racing.map((r) => r.status).sort(), [0, 1, 1], 'exactly one create of one id wins');
    for (const loser of racing.filter((r) => r.status !== 0)) assertOneLineError(loser, 'oci-runtime', 1, /container with id twice already exists/);
    assertOneLineError(await ours.run(['create', '--bundle', sleeper, 'twice']), 'oci-runtime', 1, /already exists/);
    const runc = all[1] as Runtime;
    assert.equal((await runc.run(['create', '--bundle', sleeper, 'twice'])).status, 0);
    assert.equal((await runc.run(['create', '--bundle', sleeper, 'twice'])).status, 1, 'runc refuses the second too');
    for (const runtime of all) assert.equal((await runtime.run(['start', 'twice'])).status, 0);
    for (const runtime of all) assert.equal((await runtime.run(['start', 'twice'])).status, 1, `${runtime.name}: a second start fails`);
    assertOneLineError(await ours.run(['start', 'twice']), 'oci-runtime', 1, /cannot start an already running container/);
    assertOneLineError(await ours.run(['delete', 'twice']), 'oci-runtime', 1, /cannot delete container twice that is not stopped: running/);
    assert.equal((await runc.run(['delete', 'twice'])).status, 1);
    for (const runtime of all) assert.equal((await runtime.run(['delete', '--force', 'twice'])).status, 0);
    assert.equal(await stateOf(ours, 'twice'), undefined);
  });

  test('a command that is not in the container: create fails, as runc create does; the twin that is there creates', async () => {
    const missing = await writeBundle(join(work.path, 'no-command'), rootfs, ['no-such-command']);
    assert.equal((await all[1]?.run(['create', '--bundle', missing, 'nocmd']))?.status, 1, 'runc create refuses it');
    assertOneLineError(await ours.run(['create', '--bundle', missing, 'nocmd']), 'oci-runtime', 1, /no-such-command: command not found in the container \(PATH=/);
    assert.equal(await stateOf(ours, 'nocmd'), undefined, 'no state');
    assertOneLineError(await ours.run(['run', '--bundle', missing, 'nocmd']), 'oci-runtime', 1, /no-such-command: command not found/);
    const present = await writeBundle(join(work.path, 'command'), rootfs, ['true']);
    assert.equal((await ours.run(['create', '--bundle', present, 'nocmd'])).status, 0, 'negative twin');
    assert.equal((await ours.run(['delete', '--force', 'nocmd'])).status, 0);
  });

  test('a set-up error (a missing root.path) is the create\'s, and leaves nothing; --log json has it too', async () => {
    const bundle = await writeBundle(join(work.path, 'no-root'), rootfs, ['true'], (c) => (c.root = { path: join(work.path, 'missing-rootfs') }));
    const log = join(work.path, 'runtime.log');
    const result = await ours.run(['--log', log, '--log-format', 'json', 'create', '--bundle', bundle, 'noroot']);
    assertOneLineError(result, 'oci-runtime', 1, /root\.path: .*missing-rootfs is not a directory/);
    assert.equal(await stateOf(ours, 'noroot'), undefined);
    assert.deepEqual(readdirSync(ours.root).filter((e) => e === 'noroot'), []);
    const line = JSON.parse(readFileSync(log, 'utf8').trim().split('\n').pop() as string) as Record<string, string>;
    assert.equal(line.level, 'error');
    assert.match(line.msg ?? '', /missing-rootfs is not a directory/);
    assert.match(line.time ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  });
});

describe('state that outlives the runtime process', () => {
  test('a dead container is stopped even when its pid is reused; the twin with the right start time is running', async () => {
    assert.equal((await ours.run(['create', '--bundle', sleeper, 'reused'])).status, 0);
    const file = join(ours.root, 'reused', 'state.json');
    const record = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    assert.equal((await stateOf(ours, 'reused'))?.status, 'created');
    // This test's own process stands for a process that got the container's pid after it died.
    const ownStart = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]?.split(' ')[19];
    writeFileSync(file, JSON.stringify({ ...record, pid: process.pid, pidStartTime: `${ownStart}1` }));
    assert.equal((await stateOf(ours, 'reused'))?.status, 'stopped', 'a pid with another start time is not the container');
    writeFileSync(file, JSON.stringify({ ...record, pid: process.pid, pidStartTime: ownStart }));
    assert.equal((await stateOf(ours, 'reused'))?.status, 'created', 'negative twin: the same start time is');
    writeFileSync(file, JSON.stringify(record));
    assert.equal((await ours.run(['delete', '--force', 'reused'])).status, 0);
  });

  test('kill -9 of the supervisor: the container goes with it and shows as stopped; a create that died half-way is swept', async () => {
    assert.equal((await ours.run(['create', '--bundle', sleeper, 'orphan'])).status, 0);
    const record = JSON.parse(readFileSync(join(ours.root, 'orphan', 'state.json'), 'utf8')) as { holder: { pid: number }; pid: number };
    process.kill(record.holder.pid, 'SIGKILL');
    assert.equal((await waitForStatus(ours, 'orphan', 'stopped'))?.status, 'stopped');
    assert.ok(!existsSync(`/proc/${record.pid}`) || !readFileSync(`/proc/${record.pid}/cmdline`, 'utf8').startsWith('sleep'), 'the created container never ran its command');
    assert.equal((await ours.run(['delete', 'orphan'])).status, 0);
    // A create killed before its supervisor existed: a record held by a process that is gone.
    const gone = spawnSync('true').pid as number;
    const me = { pidNamespace: readlinkSync('/proc/self/ns/pid'), bootId: readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() };
    const leftover = (holder: Record<string, unknown>) => JSON.stringify({ id: 'halfway', status: 'creating', pid: 0, pidStartTime: '', holder: { ...me, ...holder }, command: [] });
    await mkdir(join(ours.root, 'halfway'), { recursive: true });
    const ownStart = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]?.split(' ')[19];
    await writeFile(join(ours.root, 'halfway', 'state.json'), leftover({ pid: process.pid, startTime: ownStart }));
    assertOneLineError(await ours.run(['create', '--bundle', sleeper, 'halfway']), 'oci-runtime', 1, /already exists/);
    await writeFile(join(ours.root, 'halfway', 'state.json'), leftover({ pid: gone, startTime: '1' }));
    const again = await ours.run(['create', '--bundle', sleeper, 'halfway']);
    assert.equal(again.status, 0, `negative twin: a dead creator's claim is swept (${again.stderr})`);
    assert.equal((await ours.run(['delete', '--force', 'halfway'])).status, 0);
  });

  test('status in a hook: prestart sees created, poststart running, poststop stopped; all get the id, pid, bundle, annotations', async () => {
    const out = join(work.path, 'hooks-out');
    await mkdir(out, { recursive: true });
    const hook = (name: string) => ({ path: '/bin/sh', args: ['sh', '-c', `cat > ${out}/${name}`], timeout: 10 });
    // A container that runs until it is killed: poststart must see it running, whatever the timing.
    const bundle = await writeBundle(join(work.path, 'hooked'), rootfs, ['sleep', '300'], (c) => {
      c.annotations = { k: 'v' };
      (c as unknown as { hooks: unknown }).hooks = { prestart: [hook('prestart')], createRuntime: [hook('createRuntime')], poststart: [hook('poststart')], poststop: [hook('poststop')] };
    });
    assert.equal((await ours.run(['create', '--bundle', bundle, 'hooked'])).status, 0);
    const pid = (await stateOf(ours, 'hooked'))?.pid;
    assert.equal((await ours.run(['start', 'hooked'])).status, 0);
    assert.equal((await ours.run(['kill', 'hooked', 'KILL'])).status, 0);
    await waitForStatus(ours, 'hooked', 'stopped');
    assert.equal((await ours.run(['delete', 'hooked'])).status, 0);
    const seen = (name: string) => JSON.parse(readFileSync(join(out, name), 'utf8')) as Record<string, unknown>;
    for (const [name, status] of [['prestart', 'created'], ['createRuntime', 'created'], ['poststart', 'running'], ['poststop', 'stopped']]) {
      const state = seen(name as string);
      assert.equal(state.status, status, name);
      assert.equal(state.id, 'hooked');
      assert.equal(state.bundle, bundle);
      assert.deepEqual(state.annotations, { k: 'v' });
      if (name !== 'poststop') assert.equal(state.pid, pid, `${name}: the container's pid`);
    }
  });
});

test('kernel memory limits are not applied, as runc 1.1 ignores them; swappiness is; ns-enter --bundle still refuses kernel', async () => {
  const bundle = await writeBundle(join(work.path, 'kmem'), rootfs, ['cat', '/sys/fs/cgroup/memory/memory.swappiness'], (c) => {
    (c.linux as NonNullable<typeof c.linux>).resources = { ...c.linux?.resources, memory: { limit: 64 << 20, kernel: 32 << 20, kernelTCP: 16 << 20, swappiness: 17 } };
  });
  const [mine, theirs] = await Promise.all(all.map((r) => r.run(['run', '--bundle', bundle, `kmem-${r.name}`])));
  assert.equal(theirs?.status, 0, theirs?.stderr);
  assert.equal(mine?.status, 0, mine?.stderr);
  assert.equal(mine?.stdout, '17\n');
  assert.equal(mine?.stdout, theirs?.stdout);
  assertOneLineError(await tool('ns-enter', ['--bundle', bundle]), 'ns-enter', 1, /linux\.resources\.memory\.kernel: not supported/);
});

test('oci-runtime spec writes what runc spec writes, and not over an existing config.json', async () => {
  const dirs = await Promise.all(['spec-ours', 'spec-runc'].map(async (d) => (await mkdir(join(work.path, d), { recursive: true }), join(work.path, d))));
  assert.equal((await tool('oci-runtime', ['spec', '--bundle', dirs[0] as string])).status, 0);
  assert.equal((await all[1]?.run(['spec', '--bundle', dirs[1] as string]))?.status, 0);
  assert.equal(readFileSync(join(dirs[0] as string, 'config.json'), 'utf8'), readFileSync(join(dirs[1] as string, 'config.json'), 'utf8'));
  assertOneLineError(await tool('oci-runtime', ['spec', '--bundle', dirs[0] as string]), 'oci-runtime', 1, /exists\. Remove it first/);
});
