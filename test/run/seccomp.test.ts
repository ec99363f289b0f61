/**
 * Seccomp by default (issue 19): oci-spec writes containers-common's default profile as podman
 * does (podman itself is the oracle, field for field), ns-enter compiles it once into a cached
 * BPF program that bubblewrap loads, and a call the profile denies is denied inside, under
 * ns-enter and under runc with our bundle; `--security-opt seccomp=unconfined|FILE` as podman.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RuntimeConfig } from '../../lib/run/runtime-spec.js';
import { exec, tool } from '../helpers/exec.js';
import { busyboxRootfs } from '../helpers/mounts.js';
import { tempDir } from '../helpers/paths.js';
import { podmanOracle, type PodmanOracle } from '../helpers/podman.js';

/** Debian's containers.conf adds these to podman 4's default capabilities; we keep podman 4's upstream list. */
const DEBIAN_EXTRA_CAPS = ['--cap-add', 'AUDIT_WRITE,MKNOD,NET_RAW'];
/** swapon(2) is denied by the profile whatever the capabilities: EPERM with it, EINVAL (not a swap file) without. */
const SWAPON = 'grep "^Seccomp:" /proc/self/status; swapon /dev/null 2>&1 | sed "s/.*: //"';

let work: { path: string; cleanup: () => Promise<void> };
let box: { rootfs: string; layout: string; bundle: string };
let podman: PodmanOracle;

before(async () => {
  work = await tempDir('cp-seccomp-');
  box = await busyboxRootfs(work.path);
  podman = await podmanOracle(join(work.path, 'podman'), box.layout, 'busybox');
});

after(async () => {
  await podman?.cleanup();
  await work?.cleanup();
});

async function ociSpec(flags: string[]): Promise<RuntimeConfig> {
  const result = await tool('oci-spec', [...flags, '--', 'sh'], { cwd: box.bundle });
  assert.equal(result.status, 0, result.stderr);
  return JSON.parse(result.stdout) as RuntimeConfig;
}

describe('linux.seccomp against podman 4.3', () => {
  const matrix: Array<{ name: string; flags: string[]; debianCaps: boolean }> = [
    { name: 'the defaults', flags: [], debianCaps: true },
    { name: '--cap-add SYS_ADMIN,SYS_PTRACE', flags: ['--cap-add', 'SYS_ADMIN,SYS_PTRACE'], debianCaps: true },
    { name: '--cap-drop ALL', flags: ['--cap-drop', 'ALL'], debianCaps: false },
    { name: '--security-opt seccomp=unconfined', flags: ['--security-opt', 'seccomp=unconfined'], debianCaps: true },
  ];
  for (const { name, flags, debianCaps } of matrix) {
    test(`${name}: the same profile as podman's config`, async () => {
      const theirs = await podman.config(flags, ['sh']);
      const ours = await ociSpec([...flags, ...(debianCaps ? DEBIAN_EXTRA_CAPS : [])]);
      assert.deepEqual(ours.linux?.seccomp, theirs.linux?.seccomp);
    });
  }

  test('negative twin: without the capabilities Debian adds, the profile differs (the AUDIT_WRITE socket rule)', async () => {
    const theirs = await podman.config([], ['sh']);
    const ours = await ociSpec([]);
    assert.notDeepEqual(ours.linux?.seccomp, theirs.linux?.seccomp);
    assert.ok(ours.linux?.seccomp?.syscalls?.some((r) => r.names.includes('socket') && r.action === 'SCMP_ACT_ERRNO'));
  });

  test('seccomp sits after the namespaces and before the masked paths, as podman writes it; a bare oci-spec has none', async () => {
    const ours = await ociSpec([]);
    const keys = Object.keys(ours.linux ?? {});
    assert.ok(keys.indexOf('namespaces') < keys.indexOf('seccomp') && keys.indexOf('seccomp') < keys.indexOf('maskedPaths'), keys.join(','));
    const bare = await tool('oci-spec', [], { cwd: work.path });
    assert.equal((JSON.parse(bare.stdout) as RuntimeConfig).linux?.seccomp, undefined);
  });

  test('--security-opt seccomp=FILE that does not exist: one line naming it, exit 2', async () => {
    const result = await tool('oci-spec', ['--security-opt', 'seccomp=/nonexistent.json'], { cwd: box.bundle });
    assert.equal(result.status, 2);
    assert.equal(result.stderr, 'oci-spec: seccomp profile /nonexistent.json: cannot read: no such file\n');
  });
});

describe('the profile is in force inside the container', () => {
  const cache = () => join(work.path, 'cache', 'container-parts', 'seccomp');
  const nsEnter = (flags: string[], script: string) =>
    tool('ns-enter', ['--rootfs', box.rootfs, ...flags, '--', 'sh', '-c', script], { env: { XDG_CACHE_HOME: join(work.path, 'cache') }, timeoutMs: 60_000 });

  test('ns-enter: Seccomp 2, and swapon is denied even with CAP_SYS_ADMIN', async () => {
    const result = await nsEnter(['--cap-add', 'SYS_ADMIN'], SWAPON);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout, 'Seccomp:\t2\nOperation not permitted\n');
  });

  test('negative twin: with --security-opt seccomp=unconfined, Seccomp 0 and swapon reaches the kernel', async () => {
    const result = await nsEnter(['--cap-add', 'SYS_ADMIN', '--security-opt', 'seccomp=unconfined'], SWAPON);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout, 'Seccomp:\t0\nInvalid argument\n');
  });

  test('runc on our bundle: the same', async () => {
    for (const [flags, expected] of [[[], 'Seccomp:\t2\nOperation not permitted\n'], [['--security-opt', 'seccomp=unconfined'], 'Seccomp:\t0\nInvalid argument\n']] as const) {
      const spec = await tool('oci-spec', ['--bundle', box.bundle, '--cap-add', 'SYS_ADMIN', ...flags, '--', 'sh', '-c', SWAPON]);
      assert.equal(spec.status, 0, spec.stderr);
      const name = `cp-seccomp-${process.pid}`;
      const run = await exec('runc', ['run', '-b', box.bundle, name], { timeoutMs: 60_000 });
      await exec('runc', ['delete', '-f', name]);
      assert.equal(run.stdout, expected, run.stderr);
    }
  });

  test('--security-opt seccomp=FILE: a profile that denies unshare makes `unshare -U true` fail; the default allows it (as podman)', async () => {
    const profile = join(work.path, 'no-unshare.json');
    await writeFile(profile, JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['unshare'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }] }));
    const denied = await nsEnter(['--security-opt', `seccomp=${profile}`], 'unshare -U true 2>&1; echo $?');
    assert.match(denied.stdout, /Operation not permitted\n1\n$/, denied.stderr);
    const allowed = await nsEnter([], 'unshare -U true; echo $?');
    assert.equal(allowed.stdout, '0\n', allowed.stderr);
  });

  test('the compiled filter is made once per profile and cached: a second run does not compile again', async () => {
    await nsEnter([], 'true');
    const files = readdirSync(cache()).filter((f) => f.endsWith('.bpf'));
    const before = new Map(files.map((f) => [f, statSync(join(cache(), f)).mtimeMs]));
    const again = await nsEnter([], 'true');
    assert.equal(again.status, 0, again.stderr);
    const after = readdirSync(cache()).filter((f) => f.endsWith('.bpf'));
    assert.deepEqual(after.sort(), [...before.keys()].sort());
    for (const f of after) assert.equal(statSync(join(cache(), f)).mtimeMs, before.get(f));
    assert.equal(readdirSync(cache()).filter((f) => f.endsWith('.tmp')).length, 0, 'no temp file left');
  });
});

describe('--privileged, as podman run --privileged', () => {
  const SCRIPT = 'grep -E "^(CapEff|CapBnd|Seccomp):" /proc/self/status | cut -f2 | tr "\\n" " "; test -c /dev/loop-control && echo host-devices || echo own-dev; grep -c " /proc/keys " /proc/self/mounts';
  const hostBounding = () => /^CapBnd:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];

  test('ns-enter: every capability of the bounding set, no seccomp, the host\'s devices, nothing masked', async () => {
    const result = await tool('ns-enter', ['--rootfs', box.rootfs, '--privileged', '--', 'sh', '-c', SCRIPT], { timeoutMs: 60_000 });
    assert.equal(result.stdout, `${hostBounding()} ${hostBounding()} 0 host-devices\n0\n`, result.stderr);
  });

  test('negative twin: without it, the default capabilities, seccomp 2, a /dev of its own', async () => {
    const result = await tool('ns-enter', ['--rootfs', box.rootfs, '--', 'sh', '-c', SCRIPT], { timeoutMs: 60_000 });
    assert.match(result.stdout, /^0+[0-9a-f]+ 0+[0-9a-f]+ 2 own-dev\n[01]\n$/, result.stderr);
    assert.ok(!result.stdout.startsWith(`${hostBounding()} `));
  });

  test('runc on our bundle: the same', async () => {
    const spec = await tool('oci-spec', ['--bundle', box.bundle, '--privileged', '--', 'sh', '-c', SCRIPT]);
    assert.equal(spec.status, 0, spec.stderr);
    const name = `cp-privileged-${process.pid}`;
    const run = await exec('runc', ['run', '-b', box.bundle, name], { timeoutMs: 60_000 });
    await exec('runc', ['delete', '-f', name]);
    assert.equal(run.stdout, `${hostBounding()} ${hostBounding()} 0 host-devices\n0\n`, run.stderr);
  });
});

describe('the cache of compiled filters', () => {
  test('a cached program cut short is compiled again, not handed to bwrap', async () => {
    const cacheDir = join(work.path, 'cache2');
    const env = { XDG_CACHE_HOME: cacheDir };
    const first = await tool('ns-enter', ['--rootfs', box.rootfs, '--', 'true'], { env, timeoutMs: 60_000 });
    assert.equal(first.status, 0, first.stderr);
    const dir = join(cacheDir, 'container-parts', 'seccomp');
    const [file] = readdirSync(dir).filter((f) => f.endsWith('.bpf'));
    assert.ok(file);
    const whole = statSync(join(dir, file)).size;
    await writeFile(join(dir, file), Buffer.alloc(13));
    const again = await tool('ns-enter', ['--rootfs', box.rootfs, '--', 'sh', '-c', 'grep "^Seccomp:" /proc/self/status'], { env, timeoutMs: 60_000 });
    assert.equal(again.stdout, 'Seccomp:\t2\n', again.stderr);
    assert.equal(statSync(join(dir, file)).size, whole);
  });
});
