/**
 * README promises of ns-enter, each checked on what the container sees: SIGHUP, SIGQUIT,
 * SIGUSR1 and SIGUSR2 sent to ns-enter reach the container's process (each sent only once the
 * previous one arrived: events, not sleeps), and a bundle's process.oomScoreAdj is the
 * container's /proc/self/oom_score_adj, as under runc.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exec, tool } from '../helpers/exec.js';
import { tempDir, toolPath } from '../helpers/paths.js';
import { busyboxRootfs } from '../helpers/mounts.js';

let work: { path: string; cleanup: () => Promise<void> };
let rootfs: string;
before(async () => {
  work = await tempDir('cp-signals-');
  rootfs = (await busyboxRootfs(join(work.path, 'busybox'))).rootfs;
});
after(async () => {
  await work?.cleanup();
});

test('SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 sent to ns-enter reach the container, in order; then SIGTERM ends it', async () => {
  const signals = ['HUP', 'QUIT', 'USR1', 'USR2'] as const;
  const script = `for s in ${signals.join(' ')}; do trap "echo got-$s" $s; done; trap "echo got-TERM; exit 7" TERM; echo ready; while :; do sleep 0.05; done`;
  const child = spawn(process.execPath, [toolPath('ns-enter'), '--rootfs', rootfs, '--', 'sh', '-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const waiters: Array<() => void> = [];
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString();
    for (const wake of waiters.splice(0)) wake();
  });
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  /** Resolves when `line` is in the output; fails after `ms` with what was seen. */
  const seen = (line: string, ms = 30_000) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "${line}" within ${ms} ms; stdout: ${JSON.stringify(out)} stderr: ${JSON.stringify(err)}`)), ms);
      const check = () => (out.split('\n').includes(line) ? (clearTimeout(timer), resolve()) : waiters.push(check));
      check();
    });
  try {
    await seen('ready');
    for (const signal of signals) {
      child.kill(`SIG${signal}`);
      await seen(`got-${signal}`);
    }
    child.kill('SIGTERM');
    assert.equal(await exited, 7, err);
    assert.deepEqual(out.trim().split('\n'), ['ready', ...signals.map((s) => `got-${s}`), 'got-TERM']);
  } finally {
    child.kill('SIGKILL');
  }
});

test("a bundle's process.oomScoreAdj is the container's oom_score_adj, under ns-enter as under runc; without it, the default", async () => {
  const read = async (oomScoreAdj: number | undefined, name: string) => {
    const bundle = join(work.path, `bundle-${name}`);
    const spec = await tool('oci-spec', ['--bundle', bundle, '--', 'cat', '/proc/self/oom_score_adj']);
    assert.equal(spec.status, 0, spec.stderr);
    const config = JSON.parse(await readFile(join(bundle, 'config.json'), 'utf8')) as { root: { path: string }; process: { oomScoreAdj?: number } };
    config.root.path = rootfs;
    if (oomScoreAdj !== undefined) config.process.oomScoreAdj = oomScoreAdj;
    await writeFile(join(bundle, 'config.json'), JSON.stringify(config));
    const ours = await tool('ns-enter', ['--bundle', bundle], { timeoutMs: 60_000 });
    assert.equal(ours.status, 0, ours.stderr);
    const id = `cp-oom-${process.pid}-${name}`;
    const theirs = await exec('runc', ['run', '-b', bundle, id], { timeoutMs: 60_000 });
    await exec('runc', ['delete', '-f', id]);
    assert.equal(theirs.status, 0, theirs.stderr);
    return { ours: ours.stdout.trim(), theirs: theirs.stdout.trim() };
  };
  const host = (await readFile('/proc/self/oom_score_adj', 'utf8')).trim();
  const set = await read(321, 'set');
  assert.deepEqual(set, { ours: '321', theirs: '321' });
  const unset = await read(undefined, 'unset');
  assert.equal(unset.ours, unset.theirs, 'without oomScoreAdj: what runc gives');
  assert.notEqual(unset.ours, '321');
  assert.ok(unset.ours === host || unset.ours === '0', `inherited (${host}) or 0, got ${unset.ours}`);
});
