/**
 * podman's run flags added by issue 19 (lib/run/podman-flags.ts): --env-file, --ulimit,
 * --shm-size, --group-add, --stop-signal, --pid/--ipc/--uts host in the config, and carried out
 * inside a container by ns-enter; oci-spec --init (catatonit); --label and --device refused in one line.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { INIT_PATH } from '../../lib/run/podman-flags.js';
import type { RuntimeConfig } from '../../lib/run/runtime-spec.js';
import { exec, tool } from '../helpers/exec.js';
import { busyboxRootfs } from '../helpers/mounts.js';
import { tempDir } from '../helpers/paths.js';

let work: { path: string; cleanup: () => Promise<void> };
let box: { rootfs: string; layout: string; bundle: string };

before(async () => {
  work = await tempDir('cp-podman-flags-');
  box = await busyboxRootfs(work.path);
});
after(() => work?.cleanup());

describe('podman run flags', () => {
  test('oci-spec: each flag where podman puts it', async () => {
    const envFile = join(work.path, 'env');
    await writeFile(envFile, '# comment\nX=1\n\nY=2\n');
    const result = await tool('oci-spec', ['--env-file', envFile, '-e', 'Y=3', '--ulimit', 'nofile=100:200', '--shm-size', '1m', '--group-add', '10', '--stop-signal', 'term', '--pid', 'host', '--uts', 'host'], { cwd: box.bundle });
    assert.equal(result.status, 0, result.stderr);
    const config = JSON.parse(result.stdout) as RuntimeConfig;
    assert.deepEqual(config.process?.env?.slice(-2), ['X=1', 'Y=3']);
    assert.deepEqual(config.process?.rlimits, [{ type: 'RLIMIT_NOFILE', soft: 100, hard: 200 }]);
    assert.deepEqual(config.process?.user.additionalGids, [10]);
    assert.equal(config.annotations?.['org.opencontainers.image.stopSignal'], 'SIGTERM');
    assert.equal(config.hostname, undefined);
    assert.deepEqual(config.linux?.namespaces?.map((ns) => ns.type), ['network', 'ipc', 'mount']);
    assert.ok(config.mounts?.find((m) => m.destination === '/dev/shm')?.options?.includes('size=1024k'));
  });

  test('ns-enter: carried out inside; negative twin: without them, runc\'s defaults', async () => {
    const script = 'ulimit -n; id -G; df -k /dev/shm | tail -1 | tr -s " " | cut -d" " -f2; test -d /proc/1/ns && readlink /proc/1/ns/pid';
    const hostPidNs = await tool('readlink', ['/proc/1/ns/pid']);
    const flagged = await tool('ns-enter', ['--rootfs', box.rootfs, '--ulimit', 'nofile=100:200', '--shm-size', '1m', '--group-add', '10', '--pid', 'host', '--', 'sh', '-c', script], { timeoutMs: 60_000 });
    assert.equal(flagged.stdout, `100\n0 10\n1024\n${hostPidNs.stdout}`, flagged.stderr);
    const plain = await tool('ns-enter', ['--rootfs', box.rootfs, '--', 'sh', '-c', script], { timeoutMs: 60_000 });
    assert.notEqual(plain.stdout, flagged.stdout);
    assert.match(plain.stdout, /^1024\n0\n65536\npid:/);
  });

  test('bad values and the refused flags: one line each, exit 2', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--ulimit', 'bogus=1'], /^oci-spec: --ulimit "bogus=1": expected NAME=SOFT\[:HARD\]/],
      [['--ulimit', 'nofile=10:5'], /^oci-spec: --ulimit nofile=10:5: the soft limit is above the hard one\n$/],
      [['--group-add', 'wheel'], /^oci-spec: --group-add "wheel": give a numeric gid/],
      [['--uts', 'host', '--hostname', 'x'], /^oci-spec: --hostname with --uts host/],
      [['--label', 'a=b'], /^oci-spec: --label is not supported/],
    ];
    for (const [flags, message] of cases) {
      const result = await tool('oci-spec', flags, { cwd: box.bundle });
      assert.equal(result.status, 2, flags.join(' '));
      assert.match(result.stderr, message);
      assert.equal(result.stderr.split('\n').length, 2, result.stderr);
    }
  });

  test('oci-spec --init binds catatonit as the first process, as podman; runc runs it; negative twin: without it the command is PID 1', async () => {
    for (const [flags, expected] of [[['--init'], 'pid1=container-parts me-is-not-1\n'], [[], 'pid1=sh me-is-1\n']] as const) {
      const spec = await tool('oci-spec', ['--bundle', box.bundle, ...flags, '--', 'sh', '-c', 'echo "pid1=$(cat /proc/1/comm) me-is-$([ $$ = 1 ] || echo not-)1"']);
      assert.equal(spec.status, 0, spec.stderr);
      const config = JSON.parse(await readFile(join(box.bundle, 'config.json'), 'utf8')) as RuntimeConfig;
      assert.equal(config.process?.args?.[0] === INIT_PATH, flags.length > 0);
      const name = `cp-init-${process.pid}`;
      const run = await exec('runc', ['run', '-b', box.bundle, name], { timeoutMs: 60_000 });
      await exec('runc', ['delete', '-f', name]);
      assert.equal(run.stdout, expected, run.stderr);
    }
  });
});
