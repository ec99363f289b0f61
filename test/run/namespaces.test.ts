/**
 * ns-enter on the real kernel: the lab busybox image (built with the lab script, unpacked by
 * umoci) runs in new namespaces; runc runs the same bundles side by side as the oracle.
 * Every mount a test makes is unmounted in after(), also when a test failed.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { assertOneLineError, exec, mustExec, tool } from '../helpers/exec.js';
import { busyboxRootfs, mountsUnder, unmountLeftovers } from '../helpers/mounts.js';
import { tempDir, toolPath } from '../helpers/paths.js';
import { planExecution } from '../../lib/run/bwrap-plan.js';
import { UnsupportedError } from '../../lib/core/errors.js';
import type { RuntimeConfig } from '../../lib/run/runtime-spec.js';

let work: { path: string; cleanup: () => Promise<void> };
let rootfs: string;
let layout: string;
const PODMAN_CAPS_MASK = '00000000800405fb';

before(async () => {
  work = await tempDir('cp-ns-');
  ({ rootfs, layout } = await busyboxRootfs(work.path));
});

after(async () => {
  await unmountLeftovers(work.path);
  await work.cleanup();
});

function run(args: string[], input?: string) {
  return tool('ns-enter', ['--rootfs', rootfs, ...args], { input });
}

/** A config like runc spec's, for the busybox rootfs, as the executor's tests build it. */
async function runcSpecConfig(dir: string, args: string[]): Promise<RuntimeConfig> {
  await mkdir(dir, { recursive: true });
  await mustExec('runc', ['spec', '--bundle', dir]);
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as RuntimeConfig;
  config.root = { path: rootfs, readonly: true };
  (config.process as NonNullable<RuntimeConfig['process']>).terminal = false;
  (config.process as NonNullable<RuntimeConfig['process']>).args = args;
  await writeFile(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  return config;
}

/** The bundle under runc and under ns-enter: both succeed with the same output, which is returned. */
async function sameAsRunc(bundle: string, name: string, env: Record<string, string> = {}): Promise<string> {
  const runc = await exec('runc', ['run', '-b', bundle, `cp-ns-${name}-${process.pid}`]);
  const ours = await tool('ns-enter', ['--bundle', bundle], { env });
  assert.equal(runc.status, 0, runc.stderr);
  assert.equal(ours.status, 0, ours.stderr);
  assert.equal(ours.stdout, runc.stdout);
  return ours.stdout;
}

/** Gives the config's process a capability (bounding, effective, permitted: root's sets). */
function addCapability(config: RuntimeConfig, capability: string): void {
  const caps = (config.process as NonNullable<RuntimeConfig['process']>).capabilities as Record<string, string[]>;
  for (const set of ['bounding', 'effective', 'permitted']) caps[set]?.push(capability);
}

describe('ns-enter', () => {
  test('the one-line pipeline on the lab busybox image: os-release, PID 1, --rm removes the container', async () => {
    const store = join(work.path, 'store');
    const dist = (name: string) => `node ${toolPath(name)}`;
    const pipeline = `${dist('img-fetch')} oci:${layout}:busybox --store ${store} -q | ${dist('img-unpack')} --layers | ${dist('ovl-mount')} | ${dist('ns-enter')} --rm -- sh -c 'cat /etc/os-release; echo pid=$$'`;
    const result = await exec('bash', ['-o', 'pipefail', '-c', pipeline]);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /^NAME="container-parts lab busybox"$/m);
    assert.match(result.stdout, /^pid=1$/m);
    assert.deepEqual(mountsUnder(store), [], '--rm unmounted the overlay');
    assert.deepEqual(existsSync(join(store, 'containers')) ? readdirSync(join(store, 'containers')) : [], [], '--rm removed the container dirs');
  });

  test('PID 1, own hostname, only its own processes, a private network with lo only, host files out of reach', async () => {
    const marker = join(work.path, 'host-only-marker');
    await writeFile(marker, 'secret');
    const result = await run(['--hostname', 'box', '--', 'sh', '-c', `echo pid=$$; hostname; ls /proc | grep -E '^[0-9]+$' | wc -l; cat /proc/net/dev | tail -n +3 | cut -d: -f1; ls ${marker} 2>&1; ls /.oldroot 2>&1; cat /proc/1/cmdline | tr '\\0' ' '`]);
    assert.equal(result.status, 0, result.stderr);
    const lines = result.stdout.trim().split('\n').map((l) => l.trim());
    assert.equal(lines[0], 'pid=1');
    assert.equal(lines[1], 'box');
    assert.notEqual(lines[1], hostname());
    assert.match(lines[2] ?? '', /^[1-4]$/, `only the container's processes in /proc (1 to 4), got ${lines[2]}`);
    assert.equal(lines[3], 'lo');
    assert.match(lines[4] as string, /No such file or directory/);
    assert.match(lines[5] as string, /No such file or directory/, 'the old root is detached');
    assert.match(lines[6] as string, /^sh -c /);
    const hostNet = await run(['--net', 'host', '--', 'sh', '-c', 'cat /proc/net/dev | wc -l']);
    assert.ok(Number(hostNet.stdout.trim()) > 3, '--net host shares the host interfaces');
  });

  test('/proc, /sys, /dev: masked and read-only paths, a private /dev with pts, shm, mqueue', async () => {
    const result = await run(['--', 'sh', '-c', [
      'ls /dev | tr "\\n" " "; echo',
      'ls /dev/pts | tr "\\n" " "; echo',
      'touch /sys/x 2>&1 | grep -c "Read-only"',
      '(echo 1 > /proc/sys/kernel/ns_last_pid) 2>&1 | grep -c "Read-only"',
      'ls /proc/acpi 2>&1 | wc -l',
      'wc -c < /proc/keys',
      'mount | grep -E " /dev/(shm|mqueue|pts) " | cut -d" " -f1,3,5 | tr "\\n" ";"',
    ].join('; ')]);
    assert.equal(result.status, 0, result.stderr);
    const [dev, pts, sysRo, sysrqRo, acpi, keys, mounts] = result.stdout.trim().split('\n');
    for (const node of ['null', 'zero', 'full', 'random', 'urandom', 'tty', 'pts', 'shm', 'mqueue', 'ptmx']) assert.ok(dev?.split(' ').includes(node), `/dev has ${node}: ${dev}`);
    assert.ok(!dev?.split(' ').includes('sda') && !dev?.split(' ').includes('vda'), 'no host disks');
    assert.equal(pts?.trim(), 'ptmx');
    assert.equal(sysRo, '1');
    assert.equal(sysrqRo, '1');
    assert.equal(acpi, '0');
    assert.equal(keys, '0');
    assert.match(mounts as string, /devpts \/dev\/pts devpts;/);
    assert.match(mounts as string, /\/dev\/shm tmpfs;/);
    assert.match(mounts as string, /mqueue \/dev\/mqueue mqueue;/);
  });

  test("capabilities: podman's default set (--cap-add/--cap-drop change it), no_new_privs; -u with names", async () => {
    const root = await run(['--', 'sh', '-c', 'grep -E "^(CapBnd|CapEff|NoNewPrivs)" /proc/self/status']);
    assert.equal(root.status, 0, root.stderr);
    assert.match(root.stdout, new RegExp(`CapEff:\\s+${PODMAN_CAPS_MASK}`));
    assert.match(root.stdout, new RegExp(`CapBnd:\\s+${PODMAN_CAPS_MASK}`));
    assert.match(root.stdout, /NoNewPrivs:\s+1/);
    const changed = await run(['--cap-drop', 'CHOWN', '--cap-add', 'NET_ADMIN', '--', 'sh', '-c', 'grep CapEff /proc/self/status; chown 1000 /tmp 2>&1']);
    // podman's set less CHOWN (bit 0) plus NET_ADMIN (bit 12).
    assert.match(changed.stdout, /CapEff:\s+00000000800415fa/);
    assert.match(changed.stdout, /Operation not permitted/);
    const user = await run(['-u', 'lab', '--', 'sh', '-c', 'id; grep -E "^Cap(Eff|Bnd)" /proc/self/status; touch /root/x 2>&1']);
    assert.equal(user.status, 1);
    assert.match(user.stdout, /^uid=1000\(lab\) gid=1000\(lab\) groups=.*10\(wheel\)/m);
    assert.match(user.stdout, /CapEff:\s+0000000000000000/);
    assert.match(user.stdout, /Permission denied/);
    const group = await run(['-u', 'nobody:wheel', '--', 'id']);
    assert.match(group.stdout, /^uid=65534\(nobody\) gid=10\(wheel\)/);
    const unknown = await run(['-u', 'ghost', '--', 'id']);
    assert.equal(unknown.status, 1);
    assert.match(unknown.stderr, /^ns-enter: user "ghost": no such user in the rootfs's \/etc\/passwd/);
  });

  test('exit status, death by signal (128+N), stdin passes through', async () => {
    assert.equal((await run(['--', 'sh', '-c', 'exit 7'])).status, 7);
    assert.equal((await run(['--init', '--', 'sh', '-c', 'kill -TERM $$'])).status, 143);
    assert.equal((await run(['--', 'sh', '-c', 'kill -KILL $$; sleep 1; exit 3'])).status, 3, 'PID 1 does not die of a signal it sent itself (the kernel protects init)');
    const echoed = await run(['--', 'cat'], 'hi\n');
    assert.equal(echoed.stdout, 'hi\n');
    const missing = await run(['--', '/bin/nope']);
    assert.notEqual(missing.status, 0);
  });

  test('SIGTERM and SIGINT sent to ns-enter reach the container; --init forwards them and reaps zombies', async () => {
    const started = (args: string[]) => {
      const child = spawn(process.execPath, [toolPath('ns-enter'), '--rootfs', rootfs, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_EXTRA_CA_CERTS: '' } });
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      const ready = new Promise<void>((resolve) => child.stdout.on('data', () => out.includes('ready') && resolve()));
      const done = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
      return { child, ready, done, out: () => out };
    };
    const trapped = started(['--', 'sh', '-c', 'trap "echo got TERM; exit 3" TERM; echo ready; while :; do sleep 0.1; done']);
    await trapped.ready;
    trapped.child.kill('SIGTERM');
    assert.equal(await trapped.done, 3);
    assert.match(trapped.out(), /got TERM/);
    const init = started(['--init', '--', 'sh', '-c', 'sleep 0.2 & echo ready; exec sleep 60']);
    await init.ready;
    init.child.kill('SIGINT');
    assert.equal(await init.done, 130);
    // The orphan's /proc entry goes only when it is reaped (a zombie keeps it): wait for that, not for a time.
    const orphan = '(sleep 0.1 & echo $! > /tmp/orphan); pid=$(cat /tmp/orphan); i=0; while [ -d /proc/$pid ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; [ -d /proc/$pid ] && echo "not reaped: $(cat /proc/$pid/stat)"; ps -o stat,comm | grep -c "^Z"';
    const zombies = await run(['--init', '--', 'sh', '-c', orphan]);
    assert.equal(zombies.stdout.trim(), '0', 'the orphan was reaped by the init');
  });

  test('-t gives the command a terminal (driven with script(1))', async () => {
    const command = `${process.execPath} ${toolPath('ns-enter')} --rootfs ${rootfs} -t -- sh -c 'test -t 0 && test -t 1 && echo has-a-tty; echo TERM=$TERM'`;
    const result = await exec('script', ['-qec', command, '/dev/null']);
    assert.equal(result.status, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /has-a-tty/);
    assert.match(result.stdout, /TERM=xterm/);
    const noTty = await run(['-t', '--', 'true']);
    assert.equal(noTty.status, 1);
    assert.match(noTty.stderr, /^ns-enter: process\.terminal: true needs a terminal on stdin/);
  });

  test("a document piped in uses up stdin: the command reads the terminal instead, as the tutorial's shell does; without one, stdin is at its end", async () => {
    const doc = join(work.path, 'flat-doc.json');
    await writeFile(doc, JSON.stringify({ documentVersion: 1, rootfs: { mode: 'flat', path: rootfs } }));
    const command = `cat ${doc} | ${process.execPath} ${toolPath('ns-enter')} -- sh -c 'test -t 0 && echo stdin-is-a-tty; read line; echo "read: $line"'`;
    const result = await exec('script', ['-qec', command, '/dev/null'], { input: 'typed\n' });
    assert.equal(result.status, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /stdin-is-a-tty/);
    assert.match(result.stdout, /read: typed/);
    const noTerminal = await tool('ns-enter', ['--', 'sh', '-c', 'test -t 0 || echo no-tty; read line || echo at-end'], { input: JSON.stringify({ documentVersion: 1, rootfs: { mode: 'flat', path: rootfs } }) });
    assert.equal(noTerminal.status, 0, noTerminal.stderr);
    assert.equal(noTerminal.stdout, 'no-tty\nat-end\n');
  });

  test('-v SRC:DST[:ro], --tmpfs, -e, -w, --read-only', async () => {
    const shared = join(work.path, 'shared');
    await mkdir(shared, { recursive: true });
    await writeFile(join(shared, 'in'), 'from host\n');
    const result = await run(['-v', `${shared}:/data`, '-v', `${shared}:/ro:ro`, '--tmpfs', '/scratch', '-e', 'GREETING=hi', '-w', '/data', '--', 'sh', '-c',
      'cat in; echo out > /data/out; touch /ro/x 2>&1 | grep -c Read-only; touch /scratch/t && mount | grep -c " /scratch type tmpfs"; echo $GREETING; pwd']);
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(result.stdout.trim().split('\n'), ['from host', '1', '1', 'hi', '/data']);
    assert.equal(readFileSync(join(shared, 'out'), 'utf8'), 'out\n');
    const readOnly = await run(['--read-only', '--', 'sh', '-c', 'touch /x 2>&1']);
    assert.match(readOnly.stdout, /Read-only file system/);
  });

  test('noexec is carried out: tmpfs mounts (--tmpfs, /dev/shm) and noexec binds of a dir or a file refuse to run files, as under runc; nothing is left staged', async () => {
    const shared = join(work.path, 'noexec-src');
    await mkdir(shared, { recursive: true });
    await writeFile(join(shared, 'tool'), '#!/bin/sh\necho ran\n', { mode: 0o755 });
    const bundle = join(work.path, 'noexec-bundle');
    const script = 'for d in /scratch /dev/shm; do cp /src/tool $d/t; chmod +x $d/t; $d/t 2>/dev/null || echo "$d: refused"; done; /src/tool 2>/dev/null || echo "/src: refused"; /one-tool 2>/dev/null || echo "/one-tool: refused"; head -1 /one-tool; grep -c noexec /proc/self/mountinfo >/dev/null && echo listed';
    const config = await runcSpecConfig(bundle, ['sh', '-c', script]);
    config.root = { path: rootfs, readonly: false };
    const binds = [{ destination: '/src', type: 'bind', source: shared, options: ['rbind', 'ro', 'noexec'] }, { destination: '/one-tool', type: 'bind', source: join(shared, 'tool'), options: ['rbind', 'noexec'] }];
    config.mounts = [...(config.mounts ?? []), { destination: '/scratch', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'noexec', 'mode=1777'] }, ...binds];
    await writeFile(join(bundle, 'config.json'), JSON.stringify(config));
    // A TMPDIR of this run's own: the staging dir ns-enter makes there must be gone after it.
    const staging = join(work.path, 'noexec-tmp');
    await mkdir(staging);
    assert.equal(await sameAsRunc(bundle, 'noexec', { TMPDIR: staging }), '/scratch: refused\n/dev/shm: refused\n/src: refused\n/one-tool: refused\n#!/bin/sh\nlisted\n');
    assert.deepEqual(readdirSync(staging), []);
  });

  test('--bundle: a runc spec config gives the same output under runc and ns-enter', async () => {
    const bundle = join(work.path, 'runc-bundle');
    const script = 'id; hostname; grep -E "^Cap(Eff|Bnd)|NoNewPrivs" /proc/self/status; echo pid=$$; ls /; ulimit -n; touch /x 2>&1';
    await runcSpecConfig(bundle, ['sh', '-c', script]);
    const runc = await exec('runc', ['run', '-b', bundle, `cp-ns-test-${process.pid}`]);
    const ours = await tool('ns-enter', ['--bundle', bundle]);
    assert.equal(ours.status, runc.status, ours.stderr);
    assert.equal(ours.stdout, runc.stdout);
    assert.match(ours.stdout, /Read-only file system/);
  });

  test('a config field the executor cannot carry out is an error naming it', async () => {
    const bundle = join(work.path, 'unsupported');
    const config = await runcSpecConfig(bundle, ['true']);
    const cases: Array<[(c: RuntimeConfig) => void, RegExp]> = [
      [(c) => ((c.linux as NonNullable<RuntimeConfig['linux']>).sysctl = { 'kernel.panic': '1' }), /^linux\.sysctl: kernel\.panic is not namespaced/],
      [(c) => ((c.linux as NonNullable<RuntimeConfig['linux']>).seccomp = { defaultAction: 'SCMP_ACT_ALLOW', listenerPath: '/run/agent.sock' }), /^linux\.seccomp\.listenerPath: /],
      [(c) => ((c.process as NonNullable<RuntimeConfig['process']>).noNewPrivileges = false), /^process\.noNewPrivileges: /],
      [(c) => (c.mounts as NonNullable<RuntimeConfig['mounts']>).push({ destination: '/n', type: 'nfs', source: 'x:/y' }), /^mounts\[7\]\.type: nfs /],
      [(c) => ((c.process as NonNullable<RuntimeConfig['process']>).capabilities = { bounding: ['CAP_KILL'], effective: [] }), /^process\.capabilities\.effective: /],
      [(c) => ((c.linux as NonNullable<RuntimeConfig['linux']>).namespaces = [{ type: 'pid' }]), /^linux\.namespaces: a mount namespace is required/],
      [(c) => ((c as Record<string, unknown>).vm = {}), /^vm: not supported/],
    ];
    for (const [edit, message] of cases) {
      const copy = structuredClone(config);
      edit(copy);
      assert.throws(() => planExecution(copy, { stdinIsTerminal: false }), (err: unknown) => err instanceof UnsupportedError && message.test(err.message), String(message));
    }
    const copy = structuredClone(config);
    // Issue 19: namespaced sysctls are carried out; one of the host's is refused in one line.
    (copy.linux as NonNullable<RuntimeConfig['linux']>).sysctl = { 'vm.swappiness': '1' };
    await writeFile(join(bundle, 'config.json'), JSON.stringify(copy));
    const result = await tool('ns-enter', ['--bundle', bundle]);
    assert.equal(result.status, 1);
    assert.match(result.stderr, /^ns-enter: linux\.sysctl: vm\.swappiness is not namespaced: it would change the host \(runc refuses it too\)\n$/);
  });

  test('a missing bwrap names the package', async () => {
    const result = await tool('ns-enter', ['--rootfs', rootfs, '--', 'true'], { env: { PATH: '/nonexistent' } });
    assert.equal(result.status, 1);
    assert.match(result.stderr, /^ns-enter: bwrap not found \(apt-get install bubblewrap\)\n$/);
  });

  test('nothing of the host inside: no /dev/.ns-enter, no fd of ns-enter open, no host file reachable with CAP_SYS_ADMIN, as under runc; --init runs from a private copy', async () => {
    const bundle = join(work.path, 'no-host-files');
    const script = [
      'ls -a /dev/.ns-enter 2>&1 | sed "s/^ls: //"',
      'readlink /proc/1/exe',
      // With SYS_ADMIN: a host file bound in could be remounted read-write and written.
      'grep -c -E " /dev/[^ ]+ [^ ]+ ro," /proc/self/mountinfo',
      'for f in /proc/[0-9]*/exe /proc/[0-9]*/fd/*; do readlink $f; done 2>/dev/null | grep -v -E "^(/bin/|/dev/|pipe:|socket:|anon_inode:|/proc/)" | sort -u | tr "\\n" " "; echo',
    ].join('; ');
    const config = await runcSpecConfig(bundle, ['sh', '-c', script]);
    addCapability(config, 'CAP_SYS_ADMIN');
    await writeFile(join(bundle, 'config.json'), JSON.stringify(config));
    assert.equal(await sameAsRunc(bundle, 'host'), '/dev/.ns-enter: No such file or directory\n/bin/busybox\n0\n\n');
    const fds = await run(['--', 'sh', '-c', 'ls /proc/1/fd; true']);
    assert.equal(fds.stdout, '0\n1\n2\n', "no fd of ns-enter's (bwrap's status fds, the helper) is left open");
    const init = await run(['--init', '--', 'sh', '-c', 'readlink /proc/1/exe; ls /proc/1/fd | tr "\\n" " "']);
    assert.equal(init.status, 0, init.stderr);
    assert.equal(init.stdout, '/memfd:ns-enter-init (deleted)\n0 1 2 ');
  });

  test('HOME from the user passwd entry, else /; a missing working directory is made; as runc does', async () => {
    const bundle = join(work.path, 'home');
    const config = await runcSpecConfig(bundle, ['sh', '-c', 'echo "HOME=$HOME"; pwd']);
    config.root = { path: rootfs, readonly: false };
    const proc = config.process as NonNullable<RuntimeConfig['process']>;
    proc.env = (proc.env ?? []).filter((e) => !e.startsWith('HOME='));
    const none = { bounding: [], effective: [], permitted: [], inheritable: [], ambient: [] };
    const cases: Array<[string, number, string]> = [['root', 0, 'HOME=/root'], ['lab', 1000, 'HOME=/home/lab'], ['unlisted', 4242, 'HOME=/']];
    for (const [name, uid, home] of cases) {
      const outputs: string[] = [];
      for (const runtime of ['runc', 'ns-enter']) {
        // Each runtime makes its own missing working directory.
        proc.cwd = `/made-by/${runtime}/${name}`;
        proc.user = { uid, gid: uid };
        if (uid !== 0) proc.capabilities = none;
        await writeFile(join(bundle, 'config.json'), JSON.stringify(config));
        const result = runtime === 'runc' ? await exec('runc', ['run', '-b', bundle, `cp-ns-home-${process.pid}`]) : await tool('ns-enter', ['--bundle', bundle]);
        assert.equal(result.status, 0, `${runtime} ${name}: ${result.stderr}`);
        outputs.push(result.stdout.replace(runtime, 'RUNTIME'));
      }
      assert.equal(outputs[1], outputs[0], name);
      assert.equal(outputs[1], `${home}\n/made-by/RUNTIME/${name}\n`);
    }
    const flags = await run(['-w', '/nonexistent/deeper', '--', 'pwd']);
    assert.equal(flags.status, 0, flags.stderr);
    assert.equal(flags.stdout, '/nonexistent/deeper\n');
  });

  test('every start-up message starts with ns-enter: and names the mistake: a missing command, one not executable', async () => {
    const missing = await run(['--', 'ip2']);
    assert.equal(missing.status, 127);
    assert.match(missing.stderr, /^ns-enter: ip2: command not found in the container \(PATH=[^)]+\)\n$/);
    const path = await run(['--', '/bin/nope']);
    assert.equal(path.status, 127);
    assert.equal(path.stderr, 'ns-enter: /bin/nope: no such file in the container\n');
    const notExecutable = await run(['--', '/etc/passwd']);
    assert.equal(notExecutable.status, 126);
    assert.match(notExecutable.stderr, /^ns-enter: \/etc\/passwd: not executable in the container: Permission denied\n$/);
  });

  test('--tmpfs DST:exec and DST:dev are carried out as runc carries them out; noexec and nodev refuse (the negative twin)', async () => {
    const bundle = join(work.path, 'tmpfs-options');
    const script = 'cp /bin/busybox /x/true && /x/true && echo x-exec; mknod /y/null c 1 3 && echo hi > /y/null && echo y-dev';
    const config = await runcSpecConfig(bundle, ['sh', '-c', `${script} 2>/dev/null; true`]);
    addCapability(config, 'CAP_MKNOD');
    const withOptions = (x: string[], y: string[]) => {
      const copy = structuredClone(config);
      copy.mounts = [...(copy.mounts ?? []), { destination: '/x', type: 'tmpfs', source: 'tmpfs', options: x }, { destination: '/y', type: 'tmpfs', source: 'tmpfs', options: y }];
      return writeFile(join(bundle, 'config.json'), JSON.stringify(copy));
    };
    await withOptions(['rw', 'exec'], ['rw', 'dev']);
    const runc = await exec('runc', ['run', '-b', bundle, `cp-ns-tmpfs-${process.pid}`]);
    const ours = await tool('ns-enter', ['--bundle', bundle]);
    assert.equal(ours.stdout, runc.stdout, ours.stderr);
    assert.equal(ours.stdout, 'x-exec\ny-dev\n');
    await withOptions(['rw', 'noexec'], ['rw', 'nodev']);
    const twin = await tool('ns-enter', ['--bundle', bundle]);
    assert.equal(twin.stdout, '', twin.stderr);
    const flags = await run(['--cap-add', 'MKNOD', '--tmpfs', '/x:rw,exec', '--tmpfs', '/y:dev', '--', 'sh', '-c', script]);
    assert.equal(flags.stdout, 'x-exec\ny-dev\n', flags.stderr);
  });

  test("podman's flags without a counterpart and a command without -- each get one line saying what to do instead", async () => {
    const hint = 'ns-enter: unexpected argument "ls" (put the command after --, e.g. -- sh -c "id")\n';
    for (const line of [['ls'], ['ls', '-la'], ['--rm', 'ls', '-la'], ['-e', 'A=1', 'ls', '--color']]) {
      const result = await run(line);
      assertOneLineError(result, 'ns-enter', 2, /unexpected argument "ls"/);
      assert.equal(result.stderr, hint, line.join(' '));
    }
    const cases: Array<[string[], RegExp]> = [
      // -d works now (issue 16: a detached container oci-runtime finds, test/runtime/detached.test.ts); oci-spec still refuses it.
      [['--restart', 'always'], /^ns-enter: --restart is not supported \(.*supervisor/],
      // --privileged works now (issue 19, test/run/seccomp.test.ts); --label and --device are refused.
      [['--label', 'a=b'], /^ns-enter: --label is not supported: .*\(use --annotation KEY=VALUE\)$/m],
      [['--device', '/dev/fuse'], /^ns-enter: --device is not supported yet: .*--privileged/],
      [['-p', '8080:80'], /^ns-enter: -p\/--publish is not supported \(.*--net host/],
    ];
    for (const [flags, message] of cases) assertOneLineError(await run([...flags, '--', 'true']), 'ns-enter', 2, message);
  });

  test('--explain prints unshare, mount and pivot_root commands and runs nothing', async () => {
    const result = await run(['--explain', '--memory', '64m', '--', 'sh']);
    assert.equal(result.status, 0, result.stderr);
    for (const expected of [/^unshare --mount --uts --ipc --pid --fork --net/m, /pivot_root \. \.oldroot/, /mount -t proc proc/, /memory\.limit_in_bytes/, /setpriv --reuid 0/, /bwrap .*--unshare-pid/]) assert.match(result.stdout, expected);
  });
});

