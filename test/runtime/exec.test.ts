/**
 * oci-runtime exec beside runc exec, in a running container of each: the same namespaces as
 * the container's first process (pid, mount, uts, ipc, net), its cgroup, capabilities,
 * no_new_privs, rlimits, the user and cwd given, env added, the exit status; a pty with -t.
 * Negative twins: a process of the host (not exec'd) differs in each of the namespaces
 * compared; a process file with other capabilities shows them.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readlinkSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { assertOneLineError } from '../helpers/exec.js';
import { busyboxRootfs } from '../helpers/mounts.js';
import { tempDir, toolPath } from '../helpers/paths.js';
import { runOnPty } from '../helpers/pty.js';
import { cleanup, runtimes, stateOf, waitForStatus, writeBundle, type Runtime } from '../helpers/runtimes.js';

let work: { path: string; cleanup: () => Promise<void> };
let all: Runtime[];
let ours: Runtime;
let bundle: string;
const ID = 'exec-box';
const NAMESPACES = ['pid', 'mnt', 'uts', 'ipc', 'net'];

before(async () => {
  work = await tempDir('cp-exec-');
  const { rootfs } = await busyboxRootfs(work.path);
  all = runtimes(work.path);
  ours = all[0] as Runtime;
  bundle = await writeBundle(join(work.path, 'box'), rootfs, ['sleep', '120'], (c) => {
    c.hostname = 'box';
    (c.process as NonNullable<typeof c.process>).rlimits = [{ type: 'RLIMIT_NOFILE', hard: 512, soft: 256 }];
  });
  for (const runtime of all) {
    const started = await runtime.run(['run', '-d', '--bundle', bundle, ID]);
    assert.equal(started.status, 0, `${runtime.name}: ${started.stderr}`);
    await waitForStatus(runtime, ID, 'running');
  }
});

after(async () => {
  for (const runtime of all ?? []) await cleanup(runtime);
  await work?.cleanup();
});

/** What a process shows of itself: namespaces as seen from the host are compared separately. */
const PROBE = 'id; pwd; echo "FOO=$FOO"; hostname; ulimit -n; ulimit -Hn; grep -E "^(CapEff|CapBnd|NoNewPrivs)" /proc/self/status; cat /proc/1/cmdline | tr "\\0" " "; echo; exit 3';

describe('exec beside runc exec', () => {
  test('user, cwd, env, hostname, rlimits, capabilities, no_new_privs, PID 1 of the container, the exit status', async () => {
    const [mine, theirs] = await Promise.all(all.map((r) => r.run(['exec', '-u', '1000:1000', '--cwd', '/tmp', '-e', 'FOO=bar', ID, 'sh', '-c', PROBE])));
    assert.equal(theirs?.status, 3, theirs?.stderr);
    assert.equal(mine?.status, 3, mine?.stderr);
    // runc exec gives the soft limit the hard one's value (512 512); the config says 256 512, as the container's first process has them.
    const withoutLimits = (text: string | undefined) => (text ?? '').split('\n').filter((_, i) => i !== 4 && i !== 5).join('\n');
    assert.equal(withoutLimits(mine?.stdout), withoutLimits(theirs?.stdout));
    assert.match(mine?.stdout ?? '', /^uid=1000\(lab\) gid=1000\(lab\)\n\/tmp\nFOO=bar\nbox\n256\n512\n/);
    assert.match(mine?.stdout ?? '', /sleep 120/);
    const root = await ours.run(['exec', ID, 'sh', '-c', PROBE]);
    assert.notEqual(root.stdout, mine?.stdout, 'negative twin: another user and cwd show');
    assert.match(root.stdout, /^uid=0\(root\) gid=0\(root\)\n\/\n/);
  });

  test("every namespace of the container's first process, and its cgroup; a host process has none of them", async () => {
    for (const runtime of all) {
      const pid = (await stateOf(runtime, ID))?.pid as number;
      const script = `${NAMESPACES.map((ns) => `readlink /proc/self/ns/${ns}`).join('; ')}; cat /proc/self/cgroup | grep -E ':(memory|pids):'`;
      const result = await runtime.run(['exec', ID, 'sh', '-c', script]);
      assert.equal(result.status, 0, result.stderr);
      const lines = result.stdout.trim().split('\n');
      const expected = NAMESPACES.map((ns) => readlinkSync(`/proc/${pid}/ns/${ns}`));
      assert.deepEqual(lines.slice(0, NAMESPACES.length), expected, `${runtime.name}: the container's namespaces`);
      const host = NAMESPACES.map((ns) => readlinkSync(`/proc/self/ns/${ns}`));
      for (const [i, ns] of NAMESPACES.entries()) assert.notEqual(host[i], expected[i], `negative twin: the host's ${ns} namespace differs`);
      const cgroups = lines.slice(NAMESPACES.length).map((l) => l.replace(/^\d+:/, ''));
      const theirs = (await import('node:fs')).readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n').filter((l) => /:(memory|pids):/.test(l)).map((l) => l.replace(/^\d+:/, ''));
      assert.deepEqual(cgroups, theirs, `${runtime.name}: the container's cgroup`);
    }
  });

  test('--process FILE: its args, env and capabilities; bad input is one line, exit 1', async () => {
    const file = join(work.path, 'process.json');
    await writeFile(file, JSON.stringify({ terminal: false, user: { uid: 0, gid: 0 }, args: ['sh', '-c', 'echo $GREETING; grep CapEff /proc/self/status'], env: ['PATH=/bin', 'GREETING=hello'], cwd: '/', capabilities: { bounding: ['CAP_CHOWN'], effective: ['CAP_CHOWN'], permitted: ['CAP_CHOWN'] }, noNewPrivileges: true }));
    const [mine, theirs] = await Promise.all(all.map((r) => r.run(['exec', '--process', file, ID])));
    assert.equal(theirs?.status, 0, theirs?.stderr);
    assert.equal(mine?.stdout, theirs?.stdout);
    assert.equal(mine?.stdout, 'hello\nCapEff:\t0000000000000001\n');
    assertOneLineError(await ours.run(['exec', ID, 'nosuch']), 'oci-runtime', 127, /nosuch: command not found in the container/);
    assertOneLineError(await ours.run(['exec', 'nope', 'true']), 'oci-runtime', 1, /container nope does not exist/);
    assertOneLineError(await ours.run(['exec', ID]), 'oci-runtime', 1, /no command given/);
    assertOneLineError(await ours.run(['exec', '-u', 'ghost', ID, 'id']), 'oci-runtime', 1, /user "ghost": no such user in the rootfs's \/etc\/passwd/);
    assert.match((await ours.run(['exec', '-u', 'lab', ID, 'id'])).stdout, /^uid=1000\(lab\) gid=1000\(lab\) groups=.*10\(wheel\)/, 'a name, as ns-enter -u takes it');
  });

  test('-t: a new pty of the container, its size ours; runc exec -t the oracle', async () => {
    const shell = (command: string) => `${command} exec -t ${ID} sh -c 'tty; stty size; echo done'`;
    const mine = await runOnPty(shell(`${process.execPath} ${toolPath('oci-runtime')} --root ${ours.root}`), { rows: 33, cols: 101 });
    const theirs = await runOnPty(shell(`runc --root ${(all[1] as Runtime).root}`), { rows: 33, cols: 101 });
    assert.equal(theirs.status, 0, theirs.output);
    assert.equal(mine.status, 0, mine.output);
    assert.match(mine.output, /^\/dev\/pts\/\d+\r\n33 101\r\ndone\r\n$/);
    assert.equal(mine.output.replace(/pts\/\d+/, 'pts/N'), theirs.output.replace(/pts\/\d+/, 'pts/N'));
    const plain = await runOnPty(`${process.execPath} ${toolPath('oci-runtime')} --root ${ours.root} exec ${ID} sh -c 'tty; echo done'`);
    assert.match(plain.output, /not a tty/, 'negative twin: without -t there is no pty');
  });

  test('exec into a container that is not running: created or stopped', async () => {
    assert.equal((await ours.run(['create', '--bundle', bundle, 'exec-created'])).status, 0);
    assertOneLineError(await ours.run(['exec', 'exec-created', 'true']), 'oci-runtime', 1, /not running \(it is created\)/);
    assert.equal((await ours.run(['delete', '--force', 'exec-created'])).status, 0);
  });
});
