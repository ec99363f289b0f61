/**
 * Cgroups: the limit and device files, where a container's cgroup goes (under its caller's,
 * as runc places it), and, on the real kernel with the lab busybox image, ns-enter and runc
 * side by side: the device rules, a caller in a limited cgroup, the cgroup namespace, a name
 * in use. This machine's v2 tree has no controllers (they are bound to v1), so the v2 path is
 * checked against a directory laid out like cgroupfs. Every cgroup a test makes is removed,
 * also when it fails; the paths come from what the code reports, never hard-coded v1 paths.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cgroupViews, createCgroup, hierarchies, limitWrites, neededControllers, planCgroup, removeCgroupDirs, type Hierarchy } from '../../lib/run/cgroups.js';
import { deviceMakingCapability, deviceWrites, refuseUnfilteredDevices } from '../../lib/run/cgroup-devices.js';
import { HostError, UnsupportedError, UsageError } from '../../lib/core/errors.js';
import { runcDefaultConfig } from '../../lib/run/spec.js';
import type { RuntimeConfig } from '../../lib/run/runtime-spec.js';
import { exec, tool } from '../helpers/exec.js';
import { busyboxRootfs } from '../helpers/mounts.js';
import { tempDir, toolPath } from '../helpers/paths.js';

test('the limits as v1 and v2 files', () => {
  const resources = { memory: { limit: 64 << 20 }, pids: { limit: 20 }, cpu: { quota: 50000, period: 100000, shares: 1024 } };
  assert.deepEqual(neededControllers(resources), ['memory', 'pids', 'cpu']);
  assert.deepEqual(limitWrites(1, resources), [
    ['memory', 'memory.limit_in_bytes', String(64 << 20)],
    ['pids', 'pids.max', '20'],
    ['cpu', 'cpu.cfs_period_us', '100000'],
    ['cpu', 'cpu.cfs_quota_us', '50000'],
    ['cpu', 'cpu.shares', '1024'],
  ]);
  assert.deepEqual(limitWrites(2, resources), [
    ['memory', 'memory.max', String(64 << 20)],
    ['pids', 'pids.max', '20'],
    ['cpu', 'cpu.max', '50000 100000'],
    ['cpu', 'cpu.weight', '39'],
  ]);
  assert.deepEqual(limitWrites(2, { pids: { limit: -1 }, memory: { limit: 100, swap: 300 } }), [['memory', 'memory.max', '100'], ['memory', 'memory.swap.max', '200'], ['pids', 'pids.max', 'max']]);
  assert.throws(() => limitWrites(1, { memory: { kernel: 5 } }), (err: unknown) => err instanceof UnsupportedError && /^linux\.resources\.memory\.kernel: /.test(err.message));
});

test('memory swappiness and disableOOMKiller as v1 files; refused on v2, which has no such control', () => {
  assert.deepEqual(limitWrites(1, { memory: { limit: 100, swappiness: 10, disableOOMKiller: true } }), [['memory', 'memory.limit_in_bytes', '100'], ['memory', 'memory.swappiness', '10'], ['memory', 'memory.oom_control', '1']]);
  assert.deepEqual(limitWrites(1, { memory: { limit: 100, disableOOMKiller: false } }), [['memory', 'memory.limit_in_bytes', '100']], 'negative twin: the OOM killer left on');
  assert.throws(() => limitWrites(2, { memory: { swappiness: 10 } }), (err: unknown) => err instanceof UnsupportedError && /memory\.swappiness: cgroup v2 has no such control/.test(err.message));
});

test("the device rules as v1 writes: the config's in order, then runc's allowed devices", () => {
  const writes = deviceWrites([{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 10, minor: 229, access: 'rw' }, { allow: false, type: 'b', major: 8, access: 'm' }]);
  assert.deepEqual(writes.slice(0, 3), [['devices.deny', 'a'], ['devices.allow', 'c 10:229 rw'], ['devices.deny', 'b 8:* m']]);
  assert.deepEqual(writes.slice(3).map(([, line]) => line), ['c *:* m', 'b *:* m', 'c 1:3 rwm', 'c 1:8 rwm', 'c 1:7 rwm', 'c 5:0 rwm', 'c 1:5 rwm', 'c 1:9 rwm', 'c 136:* rwm', 'c 5:2 rwm', 'c 10:200 rwm']);
  assert.throws(() => deviceWrites([{ allow: true, type: 'u', access: 'rwm' }]), UnsupportedError);
  assert.throws(() => deviceWrites([{ allow: true, type: 'c', access: 'rwx' }]), UnsupportedError);
});

test('cgroup v2 without an eBPF device filter: a config that could make and open devices is refused, in one line saying why', () => {
  const config = runcDefaultConfig({ rootless: false });
  assert.equal(deviceMakingCapability(config), undefined);
  (config.process as NonNullable<RuntimeConfig['process']>).capabilities = { bounding: ['CAP_MKNOD'] };
  assert.equal(deviceMakingCapability(config), 'CAP_MKNOD');
  const v2: Hierarchy[] = [{ version: 2, mountPoint: '/sys/fs/cgroup', controllers: ['memory', 'pids'], own: '/user.slice/session' }];
  assert.throws(() => planCgroup({ path: 'container-parts/x', resources: { devices: [{ allow: false, access: 'rwm' }] }, deviceCapability: 'CAP_SYS_ADMIN' }, v2), (err: unknown) => err instanceof UnsupportedError && /CAP_SYS_ADMIN with cgroup v2 .*eBPF/.test(err.message));
  assert.doesNotThrow(() => planCgroup({ path: 'container-parts/x', resources: { devices: [{ allow: false, access: 'rwm' }] } }, v2));
  assert.doesNotThrow(() => refuseUnfilteredDevices(undefined));
});

test("this machine's hierarchies are read from the mount table, each with the caller's own cgroup", () => {
  const found = hierarchies();
  assert.ok(found.length > 0);
  const memory = found.find((h) => h.controllers.includes('memory'));
  if (memory?.version === 1) assert.match(readFileSync('/proc/self/cgroup', 'utf8'), new RegExp(`:memory:${memory.own.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\n`));
  const info = 'x 1 0:1 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\nz 1 0:3 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\nw 1 0:4 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\ny 1 0:2 / /nonexistent/unified rw - cgroup2 cgroup2 rw\n';
  const own = '5:cpuacct,cpu:/c\n4:memory:/a/b\n1:name=systemd:/s\n0::/u\n';
  assert.deepEqual(hierarchies(info, own), [
    { version: 1, mountPoint: '/sys/fs/cgroup/memory', controllers: ['memory'], own: '/a/b' },
    { version: 1, mountPoint: '/sys/fs/cgroup/cpu,cpuacct', controllers: ['cpu', 'cpuacct'], own: '/c' },
    { version: 1, mountPoint: '/sys/fs/cgroup/systemd', controllers: ['name=systemd'], own: '/s' },
    { version: 2, mountPoint: '/nonexistent/unified', controllers: [], own: '/u' },
  ]);
});

test("a relative path goes under the caller's own cgroup (v2: beside it, as runc), an absolute one from the root", () => {
  const hybrid: Hierarchy[] = [
    { version: 1, mountPoint: '/cg/memory', controllers: ['memory'], own: '/caller/limited' },
    { version: 1, mountPoint: '/cg/pids', controllers: ['pids'], own: '/' },
    { version: 2, mountPoint: '/cg/unified', controllers: [], own: '/u/leaf' },
  ];
  const plan = planCgroup({ path: 'container-parts/box', resources: { memory: { limit: 1 } } }, hybrid);
  assert.equal(plan.version, 1);
  assert.deepEqual(plan.dirs.map((d) => d.dir), ['/cg/memory/caller/limited/container-parts/box', '/cg/pids/container-parts/box', '/cg/unified/u/container-parts/box']);
  assert.deepEqual(cgroupViews({ version: plan.version, dirs: plan.dirs }), [{ dir: '/cg/memory/caller/limited/container-parts/box', name: 'memory' }, { dir: '/cg/pids/container-parts/box', name: 'pids' }]);
  const absolute = planCgroup({ path: '/machine/box', resources: {} }, hybrid);
  assert.deepEqual(absolute.dirs.map((d) => d.dir), ['/cg/memory/machine/box', '/cg/pids/machine/box', '/cg/unified/machine/box']);
});

test('a real cgroup (v1 here): made with the limits, holds a process, removed after', async (t) => {
  const v1 = hierarchies().filter((h) => h.version === 1);
  if (!['memory', 'pids'].every((c) => v1.some((h) => h.controllers.includes(c)))) return t.skip('no v1 memory and pids hierarchies on this host');
  const cgroup = createCgroup(planCgroup({ path: `container-parts-test/${process.pid}`, resources: { memory: { limit: 32 << 20 }, pids: { limit: 5 } } }));
  const sleeper = spawn('sleep', ['30'], { stdio: 'ignore' });
  try {
    assert.equal(cgroup.version, 1);
    const memoryDir = cgroup.dirs.find((d) => d.hierarchy.controllers.includes('memory'))?.dir as string;
    assert.ok(memoryDir.startsWith(join(cgroup.dirs.find((d) => d.dir === memoryDir)?.hierarchy.mountPoint as string, hierarchies().find((h) => h.controllers.includes('memory'))?.own as string)), 'under our own memory cgroup');
    assert.equal(readFileSync(join(memoryDir, 'memory.limit_in_bytes'), 'utf8').trim(), String(32 << 20));
    cgroup.addProcess(sleeper.pid as number);
    assert.ok(readFileSync(join(memoryDir, 'cgroup.procs'), 'utf8').split('\n').includes(String(sleeper.pid)));
    assert.equal(cgroup.oomKilled(), false);
    assert.throws(() => createCgroup(planCgroup({ path: `container-parts-test/${process.pid}`, resources: { pids: { limit: 5 } } })), (err: unknown) => err instanceof UsageError && /is in use by processes/.test(err.message), 'a cgroup with processes is never shared');
  } finally {
    sleeper.kill('SIGKILL');
    await new Promise((r) => sleeper.once('close', r));
    await cgroup.remove();
  }
  for (const path of cgroup.paths) assert.ok(!existsSync(path), `${path} removed`);
  for (const path of cgroup.paths) assert.ok(!existsSync(join(path, '..')), 'the parent it made is removed too');
});

test('a cgroupsPath whose parent another run removes meanwhile: the parent is made again; a parent with another container in it stays (as under runc, a parent that was there stays)', async (t) => {
  const pids = hierarchies().find((h) => h.version === 1 && h.controllers.includes('pids'));
  if (!pids) return t.skip('no v1 pids hierarchy');
  const path = `cp-test-parent-${process.pid}`;
  const first = createCgroup(planCgroup({ path: `${path}/a`, resources: { pids: { limit: 5 } } }, [pids]));
  const plan = planCgroup({ path: `${path}/b`, resources: { pids: { limit: 5 } } }, [pids]);
  try {
    await first.remove();
    assert.ok(!existsSync(join(pids.mountPoint, pids.own, path)), 'the first run removed the parent it made');
    const second = createCgroup(plan);
    const third = createCgroup(planCgroup({ path: `${path}/c`, resources: { pids: { limit: 5 } } }, [pids]));
    await second.remove();
    assert.ok(existsSync(third.paths[0] as string), "the parent stays while another run's cgroup is in it");
    await third.remove();
    assert.ok(!existsSync(third.paths[0] as string));
  } finally {
    await removeCgroupDirs([join(pids.mountPoint, pids.own, path), ...['a', 'b', 'c'].map((n) => join(pids.mountPoint, pids.own, path, n))]);
  }
});

test('v2: controllers enabled down the path, limits in the unified files (a directory standing in for cgroupfs)', async () => {
  const fake = await tempDir('cp-cgroup2-');
  try {
    await writeFile(join(fake.path, 'cgroup.subtree_control'), '');
    const hierarchy: Hierarchy = { version: 2, mountPoint: fake.path, controllers: ['memory', 'pids', 'cpu'], own: '/' };
    // cgroupfs makes the control files when a dir is made; pre-make the dirs with them here.
    await mkdir(join(fake.path, 'container-parts', 'c1'), { recursive: true });
    const cgroup = createCgroup(planCgroup({ path: 'container-parts/c1', resources: { memory: { limit: 1 << 20 }, pids: { limit: 9 } } }, [hierarchy]));
    assert.equal(cgroup.version, 2);
    assert.equal(readFileSync(join(fake.path, 'cgroup.subtree_control'), 'utf8'), '+memory +pids');
    assert.equal(readFileSync(join(fake.path, 'container-parts', 'cgroup.subtree_control'), 'utf8'), '+memory +pids');
    assert.equal(readFileSync(join(fake.path, 'container-parts', 'c1', 'memory.max'), 'utf8'), String(1 << 20));
    assert.equal(readFileSync(join(fake.path, 'container-parts', 'c1', 'pids.max'), 'utf8'), '9');
  } finally {
    await fake.cleanup();
  }
});

test('no hierarchy with the controller: a one-line error naming it', () => {
  assert.throws(() => planCgroup({ path: 'x/y', resources: { pids: { limit: 3 } } }, [{ version: 2, mountPoint: '/nonexistent', controllers: [], own: '/' }]), (err: unknown) => err instanceof HostError && /no cgroup hierarchy has the pids controller/.test(err.message));
  assert.throws(() => planCgroup({ path: '../escape', resources: { pids: { limit: 3 } } }), UnsupportedError);
});

describe('ns-enter and runc side by side on the real cgroups', () => {
  let work: { path: string; cleanup: () => Promise<void> };
  let rootfs: string;

  before(async () => {
    work = await tempDir('cp-cgroups-');
    ({ rootfs } = await busyboxRootfs(work.path));
  });

  after(async () => {
    await work.cleanup();
  });

  /** A bundle for both runtimes: oci-spec's config on the busybox rootfs, edited by `edit`. */
  async function bundle(name: string, flags: string[], edit: (config: RuntimeConfig) => void = () => undefined): Promise<string> {
    const dir = join(work.path, name);
    const made = await tool('oci-spec', ['--bundle', dir, ...flags], { input: JSON.stringify({ documentVersion: 1, rootfs: { mode: 'flat', path: rootfs } }) });
    assert.equal(made.status, 0, made.stderr);
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as RuntimeConfig;
    edit(config);
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
    return dir;
  }

  /** Runs the bundle under runc, then under ns-enter (each after `wrap`, a command that execs its arguments). */
  async function both(dir: string, wrap: string[] = []): Promise<{ runc: string; ours: string }> {
    const run = ([program, ...args]: string[]) => exec(program as string, args, { timeoutMs: 60_000 });
    const runc = await run([...wrap, 'runc', 'run', '--bundle', dir, `cp-cg-${process.pid}`]);
    const ours = await run([...wrap, process.execPath, toolPath('ns-enter'), '--bundle', dir]);
    assert.equal(ours.status, runc.status, `same exit status (runc: ${runc.stderr}; ns-enter: ${ours.stderr})`);
    return { runc: runc.stdout, ours: ours.stdout };
  }

  const DEVICE_PROBE = 'mount -t tmpfs t /tmp && mknod /tmp/fuse c 10 229 && mknod /tmp/rng c 10 183 && for d in fuse rng; do (exec 3<>/tmp/$d) 2>/dev/null && echo "$d opened" || echo "$d refused"; done; (exec 3</dev/null) && echo null opened';

  test('--cap-add SYS_ADMIN,MKNOD: a container that makes c 10 229 and c 10 183 cannot open them (the default deny-all rule), as under runc', async () => {
    const dir = await bundle('devices', ['--cap-add', 'SYS_ADMIN,MKNOD', '--', 'sh', '-c', DEVICE_PROBE]);
    const { runc, ours } = await both(dir);
    assert.equal(runc, 'fuse refused\nrng refused\nnull opened\n');
    assert.equal(ours, runc);
  });

  test('negative twin: a rule that allows c 10:229 lets both open it, and only it', async () => {
    const dir = await bundle('devices-allowed', ['--cap-add', 'SYS_ADMIN,MKNOD', '--', 'sh', '-c', DEVICE_PROBE], (config) => {
      config.linux?.resources?.devices?.push({ allow: true, type: 'c', major: 10, minor: 229, access: 'rw' });
    });
    const { runc, ours } = await both(dir);
    assert.equal(runc, 'fuse opened\nrng refused\nnull opened\n');
    assert.equal(ours, runc);
  });

  test('a caller in a limited cgroup: the container nests under it, so --memory 1g is held to the caller\'s 200 MB, as under runc', async (t) => {
    const memory = hierarchies().find((h) => h.controllers.includes('memory'));
    if (!memory || memory.version !== 1) return t.skip('no v1 memory hierarchy');
    const limited = join(memory.mountPoint, memory.own, `cp-test-caller-${process.pid}`);
    await mkdir(limited);
    try {
      writeFileSync(join(limited, 'memory.limit_in_bytes'), String(200 << 20));
      const probe = "grep -E '^hierarchical_memory_limit ' /sys/fs/cgroup/memory/memory.stat; cat /sys/fs/cgroup/memory/memory.limit_in_bytes";
      const dir = await bundle('caller', ['--memory', '1g', '--', 'sh', '-c', probe]);
      const inLimited = ['/bin/sh', '-c', `echo $$ > ${join(limited, 'cgroup.procs')} && exec "$@"`, 'sh'];
      const { runc, ours } = await both(dir, inLimited);
      assert.equal(runc, `hierarchical_memory_limit ${200 << 20}\n${1 << 30}\n`);
      assert.equal(ours, runc);
      const outside = await both(dir);
      assert.notEqual(outside.ours, ours, 'negative twin: outside the limited cgroup the 1g limit is the one that holds');
      assert.equal(outside.ours, outside.runc);
    } finally {
      await removeCgroupDirs([limited]);
    }
  });

  test("with a cgroup namespace the container's cgroup is its root: /proc/self/cgroup, the limit, no other cgroups listed, as under runc", async () => {
    const probe = "cat /proc/self/cgroup; cat /sys/fs/cgroup/memory/memory.limit_in_bytes; ls /sys/fs/cgroup/memory | grep -v '\\.'; ls /sys/fs/cgroup";
    const dir = await bundle('cgroupns', ['--memory', '100m', '--', 'sh', '-c', probe], (config) => config.linux?.namespaces?.push({ type: 'cgroup' }));
    const { runc, ours } = await both(dir);
    assert.match(runc, /^\d+:memory:\/$/m);
    assert.match(runc, new RegExp(`^${100 << 20}$`, 'm'));
    assert.equal(ours, runc);
    const without = await both(await bundle('no-cgroupns', ['--memory', '100m', '--', 'sh', '-c', probe]));
    assert.equal(without.ours.split('\n').length, without.runc.split('\n').length);
    assert.doesNotMatch(without.ours, /^\d+:memory:\/$/m, 'negative twin: without the namespace the host path shows');
  });

  test('--memory kills a process that allocates past it (137); --pids-limit stops a fork loop; the cgroup is gone after', async () => {
    const run = async (args: string[]) => {
      const result = await tool('ns-enter', ['--verbose', '--rootfs', rootfs, ...args], { timeoutMs: 60_000 });
      const reported = /^ns-enter: cgroup: (.*)$/m.exec(result.stderr)?.[1]?.split(' ') ?? [];
      assert.ok(reported.length > 0, 'the run reports its cgroup');
      return { ...result, cgroups: reported };
    };
    const memory = await run(['--name', 'memtest', '--memory', '16m', '--', 'dd', 'if=/dev/zero', 'of=/dev/null', 'bs=64M', 'count=1']);
    assert.equal(memory.status, 137, memory.stderr);
    assert.match(memory.stderr, /went over its memory limit/);
    const roomy = await run(['--memory', '256m', '--', 'dd', 'if=/dev/zero', 'of=/dev/null', 'bs=64M', 'count=1']);
    assert.equal(roomy.status, 0, roomy.stderr);
    const pids = await run(['--name', 'pidtest', '--pids-limit', '8', '--', 'sh', '-c', 'for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 1 & done; wait']);
    assert.match(pids.stderr, /can't fork/);
    // Inside, /sys/fs/cgroup/cpu is the container's own cgroup, as under runc.
    const cpus = await run(['--name', 'cputest', '--cpus', '0.5', '--', 'sh', '-c', 'cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us']);
    assert.equal(cpus.stdout.trim(), '50000');
    for (const result of [memory, roomy, pids, cpus]) for (const path of result.cgroups) assert.ok(!existsSync(path), `${path} removed`);
  });

  test('six runs at once: all run, none says EBUSY, nothing is left', async () => {
    const runs = await Promise.all(Array.from({ length: 6 }, (_, i) => tool('ns-enter', ['--verbose', '--rootfs', rootfs, '--name', `cp-many-${process.pid}-${i}`, '--pids-limit', '20', '--', 'true'], { timeoutMs: 60_000 })));
    for (const run of runs) assert.equal(run.status, 0, run.stderr);
    for (const run of runs) assert.doesNotMatch(run.stderr, /warning|EBUSY|cannot/);
    const reported = runs.flatMap((run) => /^ns-enter: cgroup: (.*)$/m.exec(run.stderr)?.[1]?.split(' ') ?? []);
    assert.equal(reported.length, 6 * hierarchies().length);
    for (const path of reported) assert.ok(!existsSync(path), `${path} removed`);
  });

  test('two runs with one name: the second is refused in one line while the first runs, and the first ends cleanly', async () => {
    const name = `cp-name-${process.pid}`;
    const first = spawn(process.execPath, [toolPath('ns-enter'), '--rootfs', rootfs, '--name', name, '--pids-limit', '50', '--', 'sh', '-c', 'echo started; read line'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let firstErr = '';
    first.stderr.on('data', (c: Buffer) => (firstErr += c.toString()));
    const closed = new Promise<number | null>((r) => first.once('close', r));
    try {
      await new Promise<void>((resolve) => first.stdout.once('data', () => resolve()));
      const second = await tool('ns-enter', ['--rootfs', rootfs, '--name', name, '--pids-limit', '9', '--', 'true']);
      assert.equal(second.status, 2);
      assert.match(second.stderr, new RegExp(`^ns-enter: container name "${name}" is in use by a running container \\(ns-enter pid ${first.pid}\\)[^\\n]*\\n$`));
    } finally {
      first.stdin.end('go\n');
    }
    assert.equal(await closed, 0, firstErr);
    assert.equal(firstErr, '', 'no EBUSY, nothing on stderr');
    const again = await tool('ns-enter', ['--rootfs', rootfs, '--name', name, '--', 'true']);
    assert.equal(again.status, 0, again.stderr);
  });
});
