/**
 * podman's /etc/hosts, /etc/hostname, /etc/resolv.conf and /run/.containerenv, its env
 * (container=, HOME, HOSTNAME) and its ping sysctl, inside a running container: under ns-enter
 * and under runc with oci-spec's bundle. Issue 19.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hostsFile } from '../../lib/run/etc-files.js';
import { assertOneLineError, exec, tool } from '../helpers/exec.js';
import { busyboxRootfs } from '../helpers/mounts.js';
import { tempDir } from '../helpers/paths.js';

const SCRIPT = [
  'grep -q "box" /etc/hosts && echo hosts-has-box',
  // busybox has no getent: the address /etc/hosts gives the container's own hostname
  'echo "resolves=$(sed -n "s/^\\([0-9.]*\\)[[:space:]]*$(hostname)$/\\1/p" /etc/hosts)"',
  'cat /etc/hostname',
  'test -e /run/.containerenv && echo containerenv',
  // An earlier run may have left the empty mount point runc and bwrap make: no nameserver is what counts.
  'grep -q nameserver /etc/resolv.conf 2>/dev/null && echo resolv || echo no-resolv',
  'echo "$container $HOSTNAME $HOME"',
  'cat /proc/sys/net/ipv4/ping_group_range',
].join('; ');
const EXPECTED = 'hosts-has-box\nresolves=127.0.0.1\nbox\ncontainerenv\nno-resolv\ncontainer-parts box /root\n0\t0\n';

let work: { path: string; cleanup: () => Promise<void> };
let box: { rootfs: string; layout: string; bundle: string };

before(async () => {
  work = await tempDir('cp-etc-files-');
  box = await busyboxRootfs(work.path);
});
after(() => work?.cleanup());

describe("podman's /etc files, env and ping sysctl inside the container", () => {
  test('ns-enter: hosts names the hostname, hostname, .containerenv, no resolv.conf without a network, env, ping_group_range', async () => {
    const result = await tool('ns-enter', ['--rootfs', box.rootfs, '--hostname', 'box', '--', 'sh', '-c', SCRIPT], { timeoutMs: 60_000 });
    assert.equal(result.stdout, EXPECTED, result.stderr);
    assert.deepEqual(readdirSync(tmpdir()).filter((d) => d.startsWith(`ns-enter-`) && readdirSync(join(tmpdir(), d), { withFileTypes: true }).length > 0 && d.includes(String(process.pid))), [], 'the run removed its files');
  });

  test('ns-enter --net host: the host\'s resolv.conf, no ping sysctl of its own', async () => {
    const result = await tool('ns-enter', ['--rootfs', box.rootfs, '--net', 'host', '--', 'sh', '-c', 'cat /etc/resolv.conf'], { timeoutMs: 60_000 });
    assert.equal(result.stdout, readFileSync('/etc/resolv.conf', 'utf8'), result.stderr);
  });

  test('runc on our bundle: the same', async () => {
    const spec = await tool('oci-spec', ['--bundle', box.bundle, '--hostname', 'box', '--', 'sh', '-c', SCRIPT]);
    assert.equal(spec.status, 0, spec.stderr);
    const name = `cp-etc-${process.pid}`;
    const run = await exec('runc', ['run', '-b', box.bundle, name], { timeoutMs: 60_000 });
    await exec('runc', ['delete', '-f', name]);
    assert.equal(run.stdout, EXPECTED, run.stderr);
  });

  test('negative twin: a bundle from runc spec alone has none of them', async () => {
    const spec = await tool('oci-spec', []);
    const config = JSON.parse(spec.stdout) as { mounts: Array<{ destination: string }>; process: { env: string[] } };
    assert.ok(!config.mounts.some((m) => m.destination.startsWith('/etc/')));
    assert.ok(!config.process.env.some((e) => e.startsWith('container=')));
  });

  test('hosts: the host\'s entries reformatted, localhost added when the host has none, the hostname last', () => {
    assert.equal(hostsFile('# c\n127.0.0.1 localhost\n10.0.0.1   db  db.lan # x\n', 'box'), '127.0.0.1\tlocalhost\n10.0.0.1\tdb db.lan\n127.0.0.1\tbox\n');
    assert.equal(hostsFile('', undefined), '127.0.0.1\tlocalhost\n::1\tlocalhost\n');
  });
});

describe('sysctl', () => {
  test('--sysctl kernel.shmmax is set in the container and not on the host', async () => {
    const before = readFileSync('/proc/sys/kernel/shmmax', 'utf8');
    const result = await tool('ns-enter', ['--rootfs', box.rootfs, '--sysctl', 'kernel.shmmax=123456', '--', 'cat', '/proc/sys/kernel/shmmax'], { timeoutMs: 60_000 });
    assert.equal(result.stdout, '123456\n', result.stderr);
    assert.equal(readFileSync('/proc/sys/kernel/shmmax', 'utf8'), before);
  });

  test('a sysctl of the host, or of a namespace the container shares, is refused in one line', async () => {
    const host = await tool('ns-enter', ['--rootfs', box.rootfs, '--sysctl', 'vm.swappiness=1', '--', 'true']);
    assert.equal(host.status, 2);
    assert.match(host.stderr, /^ns-enter: --sysctl vm\.swappiness: not a namespaced sysctl .*: it would change the host\n$/);
    const shared = await tool('ns-enter', ['--rootfs', box.rootfs, '--net', 'host', '--sysctl', 'net.ipv4.ip_forward=1', '--', 'true']);
    assert.equal(shared.status, 2);
    assert.equal(shared.stderr, "ns-enter: --sysctl net.ipv4.ip_forward: the container shares the host's network namespace, so it would change the host\n");
  });

  test('sysctls of the network, IPC and UTS namespaces are set in the container only; a value the kernel refuses is one line naming the file and the reason, exit 1', async () => {
    const host = ['/proc/sys/net/ipv4/ip_forward', '/proc/sys/kernel/msgmax', '/proc/sys/kernel/domainname'].map((f) => readFileSync(f, 'utf8'));
    const set = ['--sysctl', 'net.ipv4.ip_forward=1', '--sysctl', 'kernel.msgmax=4242', '--sysctl', 'kernel.domainname=cp.test'];
    const result = await tool('ns-enter', ['--rootfs', box.rootfs, ...set, '--', 'cat', '/proc/sys/net/ipv4/ip_forward', '/proc/sys/kernel/msgmax', '/proc/sys/kernel/domainname'], { timeoutMs: 60_000 });
    assert.equal(result.stdout, '1\n4242\ncp.test\n', result.stderr);
    assert.deepEqual(['/proc/sys/net/ipv4/ip_forward', '/proc/sys/kernel/msgmax', '/proc/sys/kernel/domainname'].map((f) => readFileSync(f, 'utf8')), host);
    const refused = await tool('ns-enter', ['--rootfs', box.rootfs, '--sysctl', 'net.ipv4.ping_group_range=abc', '--', 'echo', 'ran'], { timeoutMs: 60_000 });
    assertOneLineError(refused, 'ns-enter', 1, /^ns-enter: linux\.sysctl: cannot set net\.ipv4\.ping_group_range: \/proc\/sys\/net\/ipv4\/ping_group_range: Invalid argument\n$/);
  });
});
