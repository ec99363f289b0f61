/**
 * A run's record and staging dir in process (run-record.test.ts has them with ns-enter killed
 * by -9): claiming a name (refused when a live run holds it, taken over from a dead one), the
 * record's updates and release, what a sweep removes (dead runs, claims and sweeps cut short)
 * and leaves (live ones, a dead run whose processes outlived it), and the staging dirs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from '../../lib/core/errors.js';
import { currentHolder } from '../../lib/core/holder.js';
import { claimName, isAlive, makeStagingDir, removeStagingDir, runStateDir, sweepDeadRuns, sweepStagingDirs } from '../../lib/run/run-record.js';
import { withTempDir } from '../helpers/paths.js';

/** The pid of a process that has exited. */
const deadPid = () => spawnSync('true').pid as number;
const deadOwner = () => ({ ...currentHolder(), pid: deadPid(), startTime: '1' });
const withDir = (fn: (dir: string) => Promise<void> | void) => withTempDir('cp-run-record-', async (dir) => fn(dir));

test('isAlive: this process, or one of this boot we cannot see; a dead pid, a reused pid or another boot is gone', () => {
  assert.equal(isAlive(currentHolder()), true);
  assert.equal(isAlive({ ...currentHolder(), startTime: 'not mine' }), false);
  assert.equal(isAlive(deadOwner()), false);
  assert.equal(isAlive({ ...currentHolder(), pidNamespace: 'pid:[1]' }), true, 'another PID namespace of this boot');
  assert.equal(isAlive({ ...currentHolder(), pidNamespace: 'pid:[1]', bootId: 'another boot' }), false);
  assert.equal(runStateDir({}), '/run/container-parts', 'as root');
});

test('a name is claimed with a complete record, updated whole, released; names that could lead elsewhere are refused before anything is made', () =>
  withDir(async (dir) => {
    const state = join(dir, 'state');
    for (const name of ['', '.hidden', '-x', '_x', 'a/b', '../up', 'a b', 'x'.repeat(129)]) {
      await assert.rejects(claimName(name, state), (e: unknown) => e instanceof UsageError && e.message === `container name ${JSON.stringify(name)}: use letters, digits, _ . - (up to 128, not starting with . - _)`, name);
    }
    assert.equal(existsSync(state), false, 'nothing made');
    const claim = await claimName(`a${'x'.repeat(127)}`, state);
    claim.release();
    const box = await claimName('box.1_a-b', state);
    assert.equal(statSync(state).mode & 0o777, 0o700);
    const file = join(state, 'box.1_a-b.run.json');
    assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), { owner: currentHolder(), name: 'box.1_a-b', cgroups: [] });
    assert.equal(statSync(file).mode & 0o777, 0o600);
    box.update(['/sys/fs/cgroup/x']);
    assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')).cgroups, ['/sys/fs/cgroup/x']);
    assert.deepEqual(box.record.cgroups, ['/sys/fs/cgroup/x']);
    assert.deepEqual(readdirSync(state), ['box.1_a-b.run.json'], 'no temp file left');
    await assert.rejects(claimName('box.1_a-b', state), (e: unknown) => e instanceof UsageError && e.message === `container name "box.1_a-b" is in use by a running container (ns-enter pid ${process.pid})` && e.hint === 'choose another --name, or wait for it to end');
    box.release();
    assert.deepEqual(readdirSync(state), []);
  }));

test('a dead run\'s name is taken over (its empty cgroups removed); one whose processes outlived it stays taken, in one line', () =>
  withDir(async (dir) => {
    const state = join(dir, 'state');
    mkdirSync(state);
    const cgroup = join(dir, 'cg', 'parent', 'child');
    mkdirSync(cgroup, { recursive: true });
    const owner = deadOwner();
    writeFileSync(join(state, 'gone.run.json'), JSON.stringify({ owner, name: 'gone', cgroups: [join(dir, 'cg', 'parent'), cgroup] }));
    const claim = await claimName('gone', state);
    assert.equal(existsSync(join(dir, 'cg', 'parent')), false, 'its cgroups, deepest first');
    assert.deepEqual(JSON.parse(readFileSync(join(state, 'gone.run.json'), 'utf8')).owner, currentHolder());
    claim.release();
    const busy = join(dir, 'busy');
    mkdirSync(busy);
    writeFileSync(join(busy, 'cgroup.procs'), '4242\n');
    writeFileSync(join(state, 'stuck.run.json'), JSON.stringify({ owner, name: 'stuck', cgroups: [busy] }));
    await assert.rejects(claimName('stuck', state), (e: unknown) => e instanceof UsageError && e.message === `container name "stuck": processes of a run that died (ns-enter pid ${owner.pid}) are still in its cgroup ${busy}` && e.hint === 'kill them, or choose another --name');
    assert.ok(existsSync(join(state, 'stuck.run.json')), 'its record stays');
    assert.ok(existsSync(busy));
    const other = await claimName('other', state);
    other.release();
    assert.deepEqual(readdirSync(state).sort(), ['stuck.run.json'], 'others are not held up, and the stuck one is put back');
  }));

test('a sweep: dead records, garbled ones, claims and sweeps cut short go; live ones and a live claimer\'s temp file stay', () =>
  withDir(async (dir) => {
    const owner = deadOwner();
    const files: Record<string, string> = {
      'dead.run.json': JSON.stringify({ owner, name: 'dead', cgroups: [] }),
      'garbled.run.json': '{',
      'live.run.json': JSON.stringify({ owner: currentHolder(), name: 'live', cgroups: [] }),
      [`cut.run.json.${owner.pid}.tmp`]: '{}',
      [`mine.run.json.${process.pid}.tmp`]: '{}',
      [`swept.run.json.sweep.${owner.pid}`]: JSON.stringify({ owner, name: 'swept', cgroups: [] }),
      [`back.run.json.sweep.${owner.pid}`]: JSON.stringify({ owner: currentHolder(), name: 'back', cgroups: [] }),
      'unrelated.txt': '',
    };
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
    await sweepDeadRuns(dir);
    assert.deepEqual(readdirSync(dir).sort(), ['back.run.json', 'live.run.json', `mine.run.json.${process.pid}.tmp`, 'unrelated.txt']);
    await sweepDeadRuns(join(dir, 'missing'));
  }));

test('staging dirs: private, named after their owner; a sweep removes only dead owners\' (mount points and /etc files, never other content)', () =>
  withDir(async (dir) => {
    const saved = process.env.TMPDIR;
    process.env.TMPDIR = dir;
    let mine: string;
    try {
      mine = makeStagingDir();
    } finally {
      if (saved === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = saved;
    }
    assert.equal(statSync(mine).mode & 0o777, 0o700);
    assert.match(mine, new RegExp(`/ns-enter-${process.pid}\\.${currentHolder().startTime}-[A-Za-z0-9]{6}$`));
    const pid = deadPid();
    const dead = join(dir, `ns-enter-${pid}.123-abcdef`);
    mkdirSync(join(dead, '0'), { recursive: true });
    mkdirSync(join(dead, 'etc'));
    writeFileSync(join(dead, 'etc', 'hosts'), 'x');
    const legacy = join(dir, `ns-enter-staging-${pid}`);
    mkdirSync(join(legacy, '1'), { recursive: true });
    const kept = join(dir, `ns-enter-${pid}.456-ghijkl`);
    mkdirSync(join(kept, 'etc'), { recursive: true });
    writeFileSync(join(kept, 'etc', 'not-ours'), 'x');
    writeFileSync(join(kept, 'content'), 'x');
    const reused = join(dir, `ns-enter-${process.ppid}.999-mnopqr`);
    mkdirSync(reused);
    const file = join(dir, `ns-enter-${pid}.1-stuvwx`);
    writeFileSync(file, '');
    sweepStagingDirs(dir);
    assert.equal(existsSync(dead), false);
    assert.equal(existsSync(legacy), false);
    assert.equal(existsSync(mine), true, 'our own');
    assert.equal(existsSync(reused), false, 'a live pid that started at another time: the owner is gone');
    assert.ok(existsSync(join(kept, 'content')) && existsSync(join(kept, 'etc', 'not-ours')), 'content that is not a mount point or an /etc file stays');
    assert.ok(existsSync(file), 'not a dir');
    removeStagingDir(mine);
    assert.equal(existsSync(mine), false);
    sweepStagingDirs(join(dir, 'missing'));
  }));

test('a staging dir\'s file mount point (a noexec bind of a file) goes when it is empty; a numbered file with content stays, and so does its dir', () =>
  withDir(async (dir) => {
    const emptyPoint = join(dir, 'empty');
    mkdirSync(emptyPoint);
    writeFileSync(join(emptyPoint, '0'), '');
    removeStagingDir(emptyPoint);
    assert.equal(existsSync(emptyPoint), false);
    const withContent = join(dir, 'content');
    mkdirSync(withContent);
    writeFileSync(join(withContent, '0'), 'not a mount point');
    removeStagingDir(withContent);
    assert.equal(readFileSync(join(withContent, '0'), 'utf8'), 'not a mount point');
  }));
