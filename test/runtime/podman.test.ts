/**
 * oci-runtime as podman's runtime (`podman --runtime …/oci-runtime`), beside runc under the same
 * podman (its own containers.conf: cgroupfs, no default ulimits; --root and --runroot in a temp
 * dir): run --rm with the exit status and output, -d then exec and rm -f, -t through
 * --console-socket. podman calls create (--pid-file, --console-socket for -t), start, state,
 * kill, delete, exec, and reads --log json. Every container is removed in after().
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { busyboxRootfs } from '../helpers/mounts.js';
import { tempDir, toolPath } from '../helpers/paths.js';
import { podmanOracle, type PodmanOracle } from '../helpers/podman.js';
import { runOnPty } from '../helpers/pty.js';

let work: { path: string; cleanup: () => Promise<void> };
let podman: PodmanOracle;
const OURS = toolPath('oci-runtime');
const RUNTIMES: Array<[string, string]> = [['oci-runtime', OURS], ['runc', 'runc']];

before(async () => {
  work = await tempDir('cp-podman-rt-');
  const { layout } = await busyboxRootfs(work.path);
  podman = await podmanOracle(join(work.path, 'podman'), layout, 'busybox');
});

after(async () => {
  await podman?.cleanup();
  await work?.cleanup();
});

describe('podman --runtime oci-runtime', () => {
  test('run --rm: the output and exit status, as under runc; a network namespace of podman\'s joined; nothing left', async () => {
    const results = [];
    for (const [, runtime] of RUNTIMES) results.push(await podman.run(['--runtime', runtime, 'run', '--rm', podman.image, 'sh', '-c', 'echo out; echo err >&2; cat /proc/net/dev | grep -c eth0; umask; exit 3']));
    const [mine, theirs] = results;
    assert.equal(theirs?.status, 3, theirs?.stderr);
    assert.equal(mine?.status, 3, mine?.stderr);
    assert.equal(mine?.stdout, theirs?.stdout);
    assert.equal(mine?.stdout, 'out\n1\n0022\n');
    assert.match(mine?.stderr ?? '', /^err\n/);
    const twin = await podman.run(['--runtime', OURS, 'run', '--rm', podman.image, 'sh', '-c', 'exit 4']);
    assert.equal(twin.status, 4, 'negative twin: another exit status comes through');
    assert.equal((await podman.run(['ps', '-aq'])).stdout, '', '--rm removed them');
  });

  test('run -d, exec (its output and status as under runc), rm -f', async () => {
    const outputs: string[] = [];
    for (const [name, runtime] of RUNTIMES) {
      const started = await podman.run(['--runtime', runtime, 'run', '-d', '--name', `rt-${name}`, podman.image, 'sleep', '100']);
      assert.equal(started.status, 0, started.stderr);
      const inside = await podman.run(['--runtime', runtime, 'exec', `rt-${name}`, 'sh', '-c', 'cat /proc/1/cmdline | tr "\\0" " "; echo; id -u; exit 6']);
      assert.equal(inside.status, 6, inside.stderr);
      outputs.push(inside.stdout);
      const removed = await podman.run(['--runtime', runtime, 'rm', '-f', '-t', '0', `rt-${name}`]);
      assert.equal(removed.status, 0, removed.stderr);
    }
    assert.equal(outputs[0], 'sleep 100 \n0\n');
    assert.equal(outputs[0], outputs[1]);
  });

  test('-t: a pty of the container, sent over --console-socket; without -t none', async () => {
    const line = (flags: string) => [...podman.commandLine, '--runtime', OURS, 'run', '--rm', ...(flags ? [flags] : []), podman.image, 'sh', '-c', "'tty; echo done'"].join(' ');
    const tty = await runOnPty(line('-t'));
    assert.equal(tty.status, 0, tty.output);
    assert.match(tty.output, /\/dev\/pts\/0\r\ndone\r\n/);
    const plain = await runOnPty(line(''));
    assert.match(plain.output, /not a tty\r?\ndone/, 'negative twin: no -t, no pty');
  });
});
