/**
 * What a run leaves on the host, on every exit path: ns-enter killed with -9 (the next run
 * sweeps its cgroups, staging dir and name record; a live run's are never touched), a signal
 * at each step of start-up (sent when ns-enter reports the step, not on a timer), staging dirs
 * of unpredictable names that another user's dirs cannot block. The paths are the ones
 * ns-enter reports with --verbose.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCgroup, planCgroup, removeCgroupDirs } from '../../lib/run/cgroups.js';
import { runStateDir } from '../../lib/run/run-record.js';
import { tool } from '../helpers/exec.js';
import { busyboxRootfs } from '../helpers/mounts.js';
import { tempDir, toolPath } from '../helpers/paths.js';
import { currentHolder } from '../../lib/core/holder.js';

let work: { path: string; cleanup: () => Promise<void> };
let rootfs: string;
const made: string[] = [];

before(async () => {
  work = await tempDir('cp-runrec-');
  ({ rootfs } = await busyboxRootfs(work.path));
});

after(async () => {
  // Whatever a failed test left: its cgroups and staging dirs (rmdir only).
  await removeCgroupDirs(made.filter((p) => p.startsWith('/sys/fs/cgroup')).sort((a, b) => a.length - b.length)).catch(() => undefined);
  for (const dir of made.filter((p) => !p.startsWith('/sys/fs/cgroup'))) for (const path of [join(dir, '0'), dir]) if (existsSync(path)) rmdirSync(path);
  await work.cleanup();
});

interface Started {
  child: ChildProcessWithoutNullStreams;
  stderr: () => string;
  closed: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the first stderr line matching `pattern`. */
  line(pattern: RegExp): Promise<string>;
}

/** ns-enter --verbose on the busybox rootfs with a staged (noexec) tmpfs and a limit, so it makes a staging dir and a cgroup. */
function start(name: string, command: string): Started {
  const child = spawn(process.execPath, [toolPath('ns-enter'), '--verbose', '--rootfs', rootfs, '--name', name, '--pids-limit', '50', '--tmpfs', '/scratch:noexec', '--', 'sh', '-c', command], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  const waiters: Array<{ pattern: RegExp; resolve: (line: string) => void }> = [];
  const serve = () => {
    for (const waiter of [...waiters]) {
      const found = stderr.split('\n').find((l) => waiter.pattern.test(l));
      if (found === undefined) continue;
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve(found);
    }
  };
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    serve();
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('close', (code, signal) => {
    clearTimeout(timer);
    resolve({ code, signal });
  }));
  const line = (pattern: RegExp) => new Promise<string>((resolve) => {
    waiters.push({ pattern, resolve });
    serve();
  });
  return { child, stderr: () => stderr, closed, line };
}

/** The run's cgroup dirs and staging dir, from its --verbose lines. */
async function leftovers(run: Started): Promise<{ cgroups: string[]; staging: string }> {
  const cgroups = (await run.line(/^ns-enter: cgroup: /)).replace(/^ns-enter: cgroup: /, '').split(' ');
  const staging = /(\/[^ ']*\/ns-enter-[^/ ']+)\/0/.exec(await run.line(/^ns-enter: exec: /))?.[1] as string;
  assert.ok(cgroups.length > 0 && staging, 'the run reported its cgroups and staging dir');
  made.push(...cgroups, staging);
  return { cgroups, staging };
}

/** A pid no process has now (pid_max is far above the pids in use). */
function deadPid(): number {
  let pid = 4_000_000;
  while (existsSync(`/proc/${pid}`)) pid++;
  return pid;
}

function firstLine(run: Started): Promise<void> {
  return new Promise((resolve) => run.child.stdout.once('data', () => resolve()));
}

describe('what a run leaves behind', () => {
  test('kill -9 of ns-enter leaves its cgroups, staging dir and record; the next run sweeps them, a live run is not touched', async () => {
    const dead = start(`cp-dead-${process.pid}`, 'echo started; sleep 30');
    const { cgroups, staging } = await leftovers(dead);
    await firstLine(dead);
    const record = join(runStateDir(), `cp-dead-${process.pid}.run.json`);
    assert.ok(statSync(staging).isDirectory());
    assert.equal(statSync(staging).mode & 0o777, 0o700, 'a private staging dir');
    assert.match(staging, new RegExp(`/ns-enter-${dead.child.pid}\\.\\d+-[A-Za-z0-9]{6}$`), 'an unpredictable name that carries its owner');
    dead.child.kill('SIGKILL');
    await dead.closed;
    for (const path of [...cgroups, staging, record]) assert.ok(existsSync(path), `${path} is left by the killed run`);

    const live = start(`cp-live-${process.pid}`, 'echo started; read line');
    const kept = await leftovers(live);
    await firstLine(live);
    const next = await tool('ns-enter', ['--rootfs', rootfs, '--pids-limit', '9', '--tmpfs', '/s:noexec', '--', 'true']);
    assert.equal(next.status, 0, next.stderr);
    for (const path of [...cgroups, staging, record]) assert.ok(!existsSync(path), `${path} was swept`);
    for (const path of [...kept.cgroups, kept.staging]) assert.ok(existsSync(path), `${path} of the live run is kept`);
    live.child.stdin.end('go\n');
    assert.deepEqual(await live.closed, { code: 0, signal: null }, live.stderr());
    for (const path of [...kept.cgroups, kept.staging]) assert.ok(!existsSync(path), `${path} removed when the live run ended`);
  });

  for (const step of ['cgroup', 'exec']) {
    test(`SIGTERM when ns-enter reports its ${step} step: one line, exit 143 (or the container's own end), nothing left`, async () => {
      const run = start(`cp-term-${step}-${process.pid}`, 'true');
      await run.line(new RegExp(`^ns-enter: ${step}: `));
      run.child.kill('SIGTERM');
      const { code } = await run.closed;
      const { cgroups, staging } = await leftovers(run);
      assert.doesNotMatch(run.stderr(), /on the line above/);
      if (code !== 0) {
        assert.equal(code, 143, run.stderr());
        assert.match(run.stderr().trim().split('\n').pop() as string, /^ns-enter: stopped by SIGTERM (before|while) the container (was made|started|was starting); nothing was left behind$/);
      }
      for (const path of [...cgroups, staging, join(runStateDir(), `cp-term-${step}-${process.pid}.run.json`)]) assert.ok(!existsSync(path), `${path} removed`);
    });
  }

  test("a dead run whose container's processes outlived it: its name stays taken (one line), other runs are not held up; once they are gone it is swept", async () => {
    const name = `cp-outlived-${process.pid}`;
    const cgroup = createCgroup(planCgroup({ path: `container-parts-${name}`, resources: { pids: { limit: 5 } } }));
    made.push(...cgroup.made);
    const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
    const record = join(runStateDir(), `${name}.run.json`);
    const claimTemp = join(runStateDir(), `other.run.json.${deadPid()}.tmp`);
    try {
      cgroup.addProcess(sleeper.pid as number);
      mkdirSync(runStateDir(), { recursive: true });
      writeFileSync(record, JSON.stringify({ owner: { ...currentHolder(), pid: deadPid(), startTime: '1' }, name, cgroups: cgroup.made }));
      writeFileSync(claimTemp, '{}');
      const other = await tool('ns-enter', ['--rootfs', rootfs, '--pids-limit', '9', '--', 'true']);
      assert.equal(other.status, 0, other.stderr);
      assert.ok(existsSync(record), 'the record of a run whose processes live on is kept');
      assert.ok(!existsSync(claimTemp), "a dead claimer's temp file is swept");
      const same = await tool('ns-enter', ['--rootfs', rootfs, '--name', name, '--', 'true']);
      assert.equal(same.status, 2);
      assert.match(same.stderr, new RegExp(`^ns-enter: container name "${name}": processes of a run that died \\(ns-enter pid \\d+\\) are still in its cgroup [^\\n]*\\n$`));
    } finally {
      sleeper.kill('SIGKILL');
      await new Promise((r) => sleeper.once('close', r));
    }
    const again = await tool('ns-enter', ['--rootfs', rootfs, '--name', name, '--', 'true']);
    assert.equal(again.status, 0, again.stderr);
    assert.ok(!existsSync(record));
    for (const path of cgroup.paths) assert.ok(!existsSync(path), `${path} swept`);
  });

  test('a name that could lead out of the state dir or the cgroup tree is refused in one line, before anything is made', async () => {
    for (const name of ['../../escape', '.hidden', 'a/b', '']) {
      const run = await tool('ns-enter', ['--rootfs', rootfs, '--name', name, '--', 'true']);
      assert.equal(run.status, 2, run.stderr);
      assert.match(run.stderr, /^ns-enter: container name "[^"]*": use letters, digits, _ \. - [^\n]*\n$/);
    }
    assert.ok(!existsSync(join(runStateDir(), '..', '..', 'escape.run.json')));
  });

  test("another user's dirs in the temp dir, named like ours, neither block a run nor are swept", async () => {
    const foreign = [join(tmpdir(), `ns-enter-staging-${process.pid + 1}`), join(tmpdir(), 'ns-enter-1.1-AAAAAA')];
    for (const dir of foreign) {
      mkdirSync(dir);
      made.push(dir);
      chownSync(dir, 65534, 65534);
    }
    // Ours, from an earlier version that named them by pid: swept when that pid is gone.
    const legacy = join(tmpdir(), `ns-enter-staging-${deadPid()}`);
    mkdirSync(join(legacy, '0'), { recursive: true });
    made.push(legacy);
    const run = await tool('ns-enter', ['--rootfs', rootfs, '--tmpfs', '/s:noexec', '--', 'true']);
    assert.equal(run.status, 0, run.stderr);
    for (const dir of foreign) assert.ok(existsSync(dir), `${dir} is not ours to remove`);
    assert.ok(!existsSync(legacy), `${legacy} of a dead run was swept`);
    for (const dir of foreign) rmdirSync(dir);
  });
});
