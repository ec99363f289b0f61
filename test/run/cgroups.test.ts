/**
 * Cgroup limits: the real v1 hierarchy of this machine (hybrid layout), and the v2 file
 * protocol. This machine's v2 tree has no controllers (they are bound to v1), so the v2 path
 * is checked against a directory laid out like cgroupfs; ns-enter's tests cover the kernel.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createCgroup, hierarchies, limitWrites, neededControllers } from '../../lib/run/cgroups.js';
import { HostError, UnsupportedError } from '../../lib/core/errors.js';
import { tempDir } from '../helpers/paths.js';

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

test("this machine's hierarchies are read from the mount table", () => {
  const found = hierarchies();
  assert.ok(found.length > 0);
  const info = 'x 1 0:1 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\ny 1 0:2 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n';
  assert.deepEqual(hierarchies(info)[0], { version: 1, mountPoint: '/sys/fs/cgroup/memory', controllers: ['memory'] });
});

test('a real cgroup (v1 here): made with the limits, holds a process, removed after', async (t) => {
  const v1 = hierarchies().filter((h) => h.version === 1);
  if (!['memory', 'pids'].every((c) => v1.some((h) => h.controllers.includes(c)))) return t.skip('no v1 memory and pids hierarchies on this host');
  const name = `container-parts-test/${process.pid}`;
  const cgroup = await createCgroup(name, { memory: { limit: 32 << 20 }, pids: { limit: 5 } });
  const sleeper = spawn('sleep', ['30'], { stdio: 'ignore' });
  try {
    assert.equal(cgroup.version, 1);
    const memoryDir = cgroup.paths.find((p) => p.includes('/memory/')) as string;
    assert.equal(readFileSync(join(memoryDir, 'memory.limit_in_bytes'), 'utf8').trim(), String(32 << 20));
    cgroup.addProcess(sleeper.pid as number);
    assert.ok(readFileSync(join(memoryDir, 'cgroup.procs'), 'utf8').split('\n').includes(String(sleeper.pid)));
    assert.equal(cgroup.oomKilled(), false);
  } finally {
    sleeper.kill('SIGKILL');
    await new Promise((r) => sleeper.once('close', r));
    await cgroup.remove();
  }
  for (const path of cgroup.paths) assert.ok(!existsSync(path), `${path} removed`);
  for (const path of cgroup.paths) assert.ok(!existsSync(join(path, '..')), 'the parent it made is removed too');
});

test('v2: controllers enabled down the path, limits in the unified files (a directory standing in for cgroupfs)', async () => {
  const fake = await tempDir('cp-cgroup2-');
  try {
    await writeFile(join(fake.path, 'cgroup.subtree_control'), '');
    const hierarchy = { version: 2 as const, mountPoint: fake.path, controllers: ['memory', 'pids', 'cpu'] };
    // cgroupfs makes the control files when a dir is made; pre-make the dirs with them here.
    await mkdir(join(fake.path, 'container-parts', 'c1'), { recursive: true });
    const cgroup = await createCgroup('container-parts/c1', { memory: { limit: 1 << 20 }, pids: { limit: 9 } }, [hierarchy]);
    assert.equal(cgroup.version, 2);
    assert.equal(readFileSync(join(fake.path, 'cgroup.subtree_control'), 'utf8'), '+memory +pids');
    assert.equal(readFileSync(join(fake.path, 'container-parts', 'cgroup.subtree_control'), 'utf8'), '+memory +pids');
    assert.equal(readFileSync(join(fake.path, 'container-parts', 'c1', 'memory.max'), 'utf8'), String(1 << 20));
    assert.equal(readFileSync(join(fake.path, 'container-parts', 'c1', 'pids.max'), 'utf8'), '9');
  } finally {
    await fake.cleanup();
  }
});

test('no hierarchy with the controller: a one-line error naming it', async () => {
  await assert.rejects(createCgroup('x/y', { pids: { limit: 3 } }, [{ version: 2, mountPoint: '/nonexistent', controllers: [] }]), (err: unknown) => err instanceof HostError && /no cgroup hierarchy has the pids controller/.test(err.message));
  await assert.rejects(createCgroup('../escape', { pids: { limit: 3 } }), UnsupportedError);
});
