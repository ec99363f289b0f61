/**
 * Interrupted unpacks leave nothing (issue 12, item 9): SIGINT and SIGTERM mid-unpack remove
 * the temp tree before img-unpack dies of the signal; after kill -9 the next unpack into the
 * same directory sweeps the dead one's tree, but never the tree of a live (here: stopped)
 * unpack; owners in another pid namespace are alive until their record is stale.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, utimesSync, watch, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { mustExec, tool } from '../helpers/exec.js';
import { tempDir, toolPath } from '../helpers/paths.js';
import { writeImage } from '../helpers/tar-writer.js';
import { ustar, type UstarEntry } from '../helpers/ustar.js';
import { STALE_MS, sweepTempTrees } from '../../lib/layer/temp-trees.js';

let work: { path: string; cleanup: () => Promise<void> };
let layout: string;
const children = new Set<ChildProcess>();

before(async () => {
  work = await tempDir('cp-interrupt-');
  layout = join(work.path, 'layout');
  await writeImage(layout, 'small', [{ tar: ustar([{ name: 'etc/', type: 'dir' }, { name: 'etc/hostname', type: 'file', content: 'small\n' }]) }]);
});

after(async () => {
  for (const child of children) child.kill('SIGKILL');
  await work?.cleanup();
});

/**
 * An image `tag` whose one layer blob is a FIFO fed by the test: `feed('half')` writes the
 * first half of the gzip stream (the unpack writes files, then waits for more), `feed('rest')`
 * the rest. So the test interrupts an unpack that is surely in the middle, with no timing.
 */
async function pausedImage(tag: string): Promise<{ feed(part: 'half' | 'rest'): Promise<void> }> {
  const entries: UstarEntry[] = [];
  for (let d = 0; d < 100; d++) {
    entries.push({ name: `d${d}/`, type: 'dir' });
    for (let f = 0; f < 50; f++) entries.push({ name: `d${d}/f${f}`, type: 'file', content: `${tag} ${d}/${f} ${'x'.repeat(f * 7)}\n` });
  }
  const tar = ustar(entries);
  await writeImage(layout, tag, [{ tar }]);
  const blob = gzipSync(tar);
  const path = join(layout, 'blobs', 'sha256', createHash('sha256').update(blob).digest('hex'));
  rmSync(path);
  await mustExec('mkfifo', [path]);
  const writer = createWriteStream(path);
  const write = (data: Buffer) => new Promise<void>((resolve, reject) => writer.write(data, (err) => (err ? reject(err) : resolve())));
  const half = Math.floor(blob.length / 2);
  writer.on('error', () => undefined);
  return {
    feed: async (part) => {
      if (part === 'half') return write(blob.subarray(0, half));
      await write(blob.subarray(half));
      writer.end();
    },
  };
}

function startUnpack(dest: string, tag: string): { child: ChildProcess; exited: Promise<{ status: number | null; signal: NodeJS.Signals | null }> } {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  const child = spawn(process.execPath, [toolPath('img-unpack'), '--store', layout, '--image', tag, '--dest', dest], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(child);
  const timer = setTimeout(() => child.kill('SIGKILL'), 300_000);
  const exited = new Promise<{ status: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ status, signal });
    }),
  );
  return { child, exited };
}

/** Resolves, on a file system event in `dir`, once `holds` gives a value (checked at once too). */
function when(dir: string, holds: () => string | undefined): Promise<string> {
  return new Promise((resolve) => {
    const watcher = watch(dir, () => check());
    const check = () => {
      const value = holds();
      if (value === undefined) return;
      watcher.close();
      resolve(value);
    };
    check();
  });
}

/** The temp tree an unpack into `parent` (of `name`) is building, once something is written inside it. */
async function tempTreeWithContent(parent: string, name = '[^.]+'): Promise<string> {
  const pattern = new RegExp(`^\\.${name}\\.unpacking-\\w{6}$`);
  const temp = await when(parent, () => readdirSync(parent).find((n) => pattern.test(n)));
  const path = join(parent, temp);
  await when(path, () => (readdirSync(path).length > 0 ? path : undefined));
  return path;
}

function leftovers(parent: string): string[] {
  return readdirSync(parent).filter((n) => n.includes('.unpacking-'));
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  test(`${signal} mid-unpack: the temp tree and its record are removed, and img-unpack dies of the signal`, { timeout: 300_000 }, async () => {
    const parent = join(work.path, `by-${signal}`);
    mkdirSync(parent);
    const image = await pausedImage(`by-${signal}`);
    const { child, exited } = startUnpack(join(parent, 'rootfs'), `by-${signal}`);
    await image.feed('half');
    await tempTreeWithContent(parent);
    child.kill(signal);
    const result = await exited;
    assert.equal(result.signal, signal, `exit ${result.status}`);
    assert.deepEqual(leftovers(parent), []);
    assert.ok(!existsSync(join(parent, 'rootfs')));
  });
}

test('kill -9: the next unpack sweeps the dead owner\'s tree, never a live one\'s', { timeout: 300_000 }, async () => {
  const parent = join(work.path, 'by-sigkill');
  mkdirSync(parent);
  const killedImage = await pausedImage('killed');
  const killed = startUnpack(join(parent, 'killed'), 'killed');
  await killedImage.feed('half');
  const dead = await tempTreeWithContent(parent);
  killed.child.kill('SIGKILL');
  await killed.exited;
  assert.ok(existsSync(dead) && existsSync(`${dead}.owner`), 'kill -9 cannot be cleaned up after by the process itself');

  // A live unpack, waiting for the rest of its layer while the sweep runs.
  const aliveImage = await pausedImage('alive');
  const alive = startUnpack(join(parent, 'alive'), 'alive');
  await aliveImage.feed('half');
  const aliveTemp = await tempTreeWithContent(parent, 'alive');
  const swept = await tool('img-unpack', ['--store', layout, '--image', 'small', '--dest', join(parent, 'next')]);
  assert.equal(swept.status, 0, swept.stderr);
  assert.ok(!existsSync(dead) && !existsSync(`${dead}.owner`), 'the dead owner\'s tree is swept');
  assert.ok(existsSync(aliveTemp) && existsSync(`${aliveTemp}.owner`), 'the live owner\'s tree is left alone');
  await aliveImage.feed('rest');
  const done = await alive.exited;
  assert.equal(done.status, 0);
  assert.equal(readdirSync(join(parent, 'alive')).length, 100);
  assert.deepEqual(leftovers(parent), []);
});

test('the sweep: dead owners go; another pid namespace or boot is alive until stale; a tree without a record goes once stale', async () => {
  const parent = join(work.path, 'records');
  mkdirSync(parent);
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const me = {
    pid: process.pid,
    pidNamespace: readlinkSync('/proc/self/ns/pid'),
    bootId: readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(),
    startTime: stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19],
  };
  const make = (name: string, record?: object, ageMs = 0) => {
    const temp = join(parent, `.${name}.unpacking-${name.padEnd(6, 'x').slice(0, 6)}`);
    mkdirSync(join(temp, 'etc'), { recursive: true });
    if (record) writeFileSync(`${temp}.owner`, JSON.stringify(record));
    const then = new Date(Date.now() - ageMs);
    utimesSync(temp, then, then);
    if (record) utimesSync(`${temp}.owner`, then, then);
    return temp;
  };
  const live = make('live', me);
  const reused = make('reused', { ...me, startTime: '1' });
  // Another boot may be another machine sharing the store: alive until stale, like another namespace.
  const rebooted = make('boot', { ...me, bootId: 'another-boot' });
  const rebootedStale = make('oldboot', { ...me, bootId: 'another-boot' }, STALE_MS + 60_000);
  const gone = make('gone', { ...me, pid: 2 ** 22 + 1 });
  const elsewhere = make('nsfresh', { ...me, pidNamespace: 'pid:[1]' });
  const elsewhereStale = make('nsstale', { ...me, pidNamespace: 'pid:[1]' }, STALE_MS + 60_000);
  const legacy = make('legacy');
  const legacyStale = make('oldlegacy', undefined, STALE_MS + 60_000);
  writeFileSync(join(parent, '.orphan.unpacking-orphan.owner'), '{}');
  const swept = sweepTempTrees(parent).sort();
  assert.deepEqual(swept, [reused, rebootedStale, gone, elsewhereStale, legacyStale].sort());
  for (const kept of [live, rebooted, elsewhere, legacy]) assert.ok(existsSync(kept) && (kept === legacy || existsSync(`${kept}.owner`)), kept);
  assert.ok(!existsSync(join(parent, '.orphan.unpacking-orphan.owner')), 'a record without its tree goes');
});
