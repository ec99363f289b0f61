/**
 * Detached containers from the pipe (issue 16): `ns-enter -d --name web` runs in the
 * background and writes its state where `oci-runtime list` and `exec` find it (its default
 * state dir); `ns-enter --join web -- CMD` enters it; `--rm` removes the state, unmounts the
 * piped overlay and removes the container's dirs when it ends. oci-spec still refuses -d.
 * Every container a test starts is killed and deleted in after(), every mount unmounted.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertOneLineError, exec, tool } from '../helpers/exec.js';
import { busyboxRootfs, mountsUnder, unmountLeftovers } from '../helpers/mounts.js';
import { tempDir, toolPath } from '../helpers/paths.js';

let work: { path: string; cleanup: () => Promise<void> };
let rootfs: string;
let layout: string;
const STATE = '/run/container-parts';
const names = [`cp-web-${process.pid}`, `cp-rm-${process.pid}`, `cp-flags-${process.pid}`];
const [WEB, RM, FLAGS] = names as [string, string, string];

before(async () => {
  work = await tempDir('cp-detached-');
  ({ rootfs, layout } = await busyboxRootfs(work.path));
});

after(async () => {
  for (const name of names) await tool('oci-runtime', ['delete', '--force', name]);
  await unmountLeftovers(work.path);
  await work?.cleanup();
});

/** Polls oci-runtime state until `status` (20 s at most); the last state seen. */
async function waitFor(name: string, status: string): Promise<Record<string, unknown> | undefined> {
  let state: Record<string, unknown> | undefined;
  for (let i = 0; i < 200; i++) {
    const result = await tool('oci-runtime', ['state', name]);
    state = result.status === 0 ? (JSON.parse(result.stdout) as Record<string, unknown>) : undefined;
    if ((state?.status ?? 'gone') === status) return state;
    await new Promise((r) => setTimeout(r, 100));
  }
  return state;
}

describe('ns-enter -d', () => {
  test('runs in the background; oci-runtime list shows name, command, status, pid; exec and --join enter it', async () => {
    const started = await tool('ns-enter', ['--rootfs', rootfs, '-d', '--name', WEB, '--hostname', 'web', '--', 'sh', '-c', 'echo started; sleep 300']);
    assert.equal(started.status, 0, started.stderr);
    assert.equal(started.stdout, `${WEB}\n`, 'the name, as podman run -d prints the id');
    const state = await waitFor(WEB, 'running');
    assert.equal(state?.status, 'running');
    const list = JSON.parse((await tool('oci-runtime', ['list', '--format', 'json'])).stdout) as Array<Record<string, unknown>>;
    const mine = list.find((c) => c.id === WEB);
    assert.deepEqual([mine?.status, mine?.pid, mine?.command], ['running', state?.pid, ['sh', '-c', 'echo started; sleep 300']]);
    assert.match((await tool('oci-runtime', ['list'])).stdout, new RegExp(`^${WEB}\\s+-\\s+sh -c echo started; sleep 300\\s+running\\s+${state?.pid}\\s`, 'm'));
    const inside = await tool('oci-runtime', ['exec', WEB, 'sh', '-c', 'hostname; cat /proc/1/cmdline | tr "\\0" " "']);
    // busybox sh execs its last command: PID 1 is sleep now.
    assert.equal(inside.stdout, 'web\nsleep 300 ', inside.stderr);
    const joined = await tool('ns-enter', ['--join', WEB, '-u', 'lab', '-e', 'X=1', '-w', '/tmp', '--', 'sh', '-c', 'id -u; pwd; echo $X; hostname; exit 5']);
    assert.equal(joined.status, 5, joined.stderr);
    assert.equal(joined.stdout, '1000\n/tmp\n1\nweb\n');
    assert.equal(readFileSync(join(STATE, WEB, 'container.log'), 'utf8'), 'started\n', 'its output is kept in its state dir');
    assertOneLineError(await tool('ns-enter', ['--join', WEB, '--memory', '1g', '--', 'true']), 'ns-enter', 2, /--join NAME takes -e, -u, -w and -t only/);
    assertOneLineError(await tool('ns-enter', ['--join', `${WEB}-nope`, '--', 'true']), 'ns-enter', 1, /does not exist/);
    assert.equal((await tool('oci-runtime', ['kill', WEB, 'KILL'])).status, 0);
    assert.equal((await waitFor(WEB, 'stopped'))?.status, 'stopped');
    assert.equal((await tool('oci-runtime', ['delete', WEB])).status, 0);
    assert.equal(existsSync(join(STATE, WEB)), false);
  });

  test('--rm on the piped overlay: when it ends its state goes, the overlay is unmounted and its dirs removed', async () => {
    const store = join(work.path, 'store');
    const dist = (name: string) => `${process.execPath} ${toolPath(name)}`;
    const pipeline = `${dist('img-fetch')} oci:${layout}:busybox --store ${store} -q | ${dist('img-unpack')} --layers | ${dist('ovl-mount')} --name ${RM} | ${dist('ns-enter')} -d --rm --name ${RM} -- sh -c 'touch /made-here; sleep 1'`;
    const result = await exec('bash', ['-o', 'pipefail', '-c', pipeline]);
    assert.equal(result.status, 0, result.stderr);
    const running = await waitFor(RM, 'running');
    assert.equal(running?.status, 'running');
    const listed = JSON.parse((await tool('oci-runtime', ['list', '--format', 'json'])).stdout) as Array<Record<string, unknown>>;
    assert.match(String(listed.find((c) => c.id === RM)?.image), /busybox/, 'the image it was made from');
    assert.ok(mountsUnder(store).length > 0, 'the overlay is mounted while it runs');
    assert.equal(await waitFor(RM, 'gone'), undefined, 'the state went when it ended');
    for (let i = 0; i < 100 && mountsUnder(store).length > 0; i++) await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(mountsUnder(store), [], 'the overlay is unmounted');
    assert.deepEqual(existsSync(join(store, 'containers')) ? readdirSync(join(store, 'containers')) : [], [], 'its dirs are removed');
  });

  test('negative twin: without --rm the stopped container stays listed; oci-spec still refuses -d; -d with -t is refused', async () => {
    const started = await tool('ns-enter', ['--rootfs', rootfs, '-d', '--name', FLAGS, '--', 'true']);
    assert.equal(started.status, 0, started.stderr);
    assert.equal((await waitFor(FLAGS, 'stopped'))?.status, 'stopped');
    assert.equal((await tool('oci-runtime', ['delete', FLAGS])).status, 0);
    assertOneLineError(await tool('oci-spec', ['-d']), 'oci-spec', 2, /-d\/--detach is not supported/);
    assertOneLineError(await tool('ns-enter', ['--rootfs', rootfs, '-d', '-t', '--name', FLAGS, '--', 'true']), 'ns-enter', 2, /a detached container has no terminal/);
    assert.equal(existsSync(join(STATE, FLAGS)), false, 'the refused run left no state');
  });
});
