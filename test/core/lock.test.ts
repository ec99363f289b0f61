/**
 * The store's lock (index.json.lock) in process: one holder at a time, its record in the lock
 * while it holds, released whatever the work does, and only its own lock released; a lock whose
 * holder is dead (or that is no record) is broken, one whose holder is alive or unseen and fresh
 * is waited for; breakers take turns, and a turn left by a dead breaker is taken over once old.
 * (test/image/store/concurrency.test.ts has the same across processes and PID namespaces.)
 */
import { test, mock, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs, { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { link, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { withLock } from '../../lib/core/lock.js';
import { currentHolder, HEARTBEAT_MS } from '../../lib/core/holder.js';
import { withTempDir } from '../helpers/paths.js';

const withTemp = (fn: (dir: string) => Promise<void>) => withTempDir('cp-lock-', fn);
const settle = (ms = 30) => new Promise((resolve) => setTimeout(resolve, ms));
const ago = (ms: number) => new Date(Date.now() - ms);

/** Starts withLock on `lock` and says when its work began; the work ends when `finish` is called. */
function contender(lock: string): { started: () => boolean; finish: () => void; done: Promise<string> } {
  let began = false;
  let finish!: () => void;
  const ended = new Promise<void>((resolve) => (finish = resolve));
  const done = withLock(lock, async () => {
    began = true;
    await ended;
    return 'result';
  });
  return { started: () => began, finish, done };
}

/** Waits until `ready` or fails after a bound (never hangs). */
async function until(ready: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 1000 && !ready(); i++) await settle(10);
  assert.ok(ready(), what);
}

test('one holder at a time: the lock holds its record while the work runs, and nothing else is left in the directory (nor an fd open)', () =>
  withTemp(async (dir) => {
    const fds = readdirSync('/proc/self/fd').length;
    const lock = join(dir, 'index.json.lock');
    const first = contender(lock);
    await until(first.started, 'the first takes the lock');
    assert.deepEqual(readdirSync(dir), ['index.json.lock'], 'no temp file beside it');
    assert.deepEqual(JSON.parse(readFileSync(lock, 'utf8')), currentHolder());
    const second = contender(lock);
    await settle(100);
    assert.equal(second.started(), false, 'the second waits while the first holds');
    first.finish();
    assert.equal(await first.done, 'result');
    await until(second.started, 'the second goes on once the first released');
    second.finish();
    await second.done;
    assert.deepEqual(readdirSync(dir), []);
    assert.equal(readdirSync('/proc/self/fd').length, fds, 'every lock file read was closed');
  }));

test('work that fails releases the lock and fails with its own error', () =>
  withTemp(async (dir) => {
    const lock = join(dir, 'index.json.lock');
    await assert.rejects(withLock(lock, async () => Promise.reject(new Error('the work failed'))), { message: 'the work failed' });
    assert.deepEqual(readdirSync(dir), []);
    assert.equal(await withLock(lock, async () => 42), 42);
  }));

test('a lock of a dead holder, or that is no record, is broken at once; the breaker leaves nothing', () =>
  withTemp(async (dir) => {
    const lock = join(dir, 'index.json.lock');
    const dead = [JSON.stringify({ ...currentHolder(), startTime: 'another process' }), '', '{"pid":', JSON.stringify({ pid: 0, pidNamespace: 'x', bootId: 'y', startTime: 'z' })];
    for (const text of dead) {
      await writeFile(lock, text);
      assert.equal(await withLock(lock, async () => readFileSync(lock, 'utf8')), JSON.stringify(currentHolder()), JSON.stringify(text));
      assert.deepEqual(readdirSync(dir), []);
    }
  }));

test('a live holder\'s lock, and an unseen holder\'s with a fresh heartbeat, are waited for; an unseen one gone stale is broken', () =>
  withTemp(async (dir) => {
    const lock = join(dir, 'index.json.lock');
    for (const record of [currentHolder(), { ...currentHolder(), pidNamespace: 'pid:[1]' }, { ...currentHolder(), bootId: 'another boot' }]) {
      await writeFile(lock, JSON.stringify(record));
      const waiter = contender(lock);
      await settle(100);
      assert.equal(waiter.started(), false, JSON.stringify(record));
      await rm(lock);
      await until(waiter.started, 'goes on once the lock is gone');
      waiter.finish();
      await waiter.done;
    }
    await writeFile(lock, JSON.stringify({ ...currentHolder(), pidNamespace: 'pid:[1]' }));
    await utimes(lock, ago(120_000), ago(120_000));
    assert.equal(await withLock(lock, async () => 'broken'), 'broken');
    // A holder we can see is judged by whether it lives, never by its heartbeat (which a stopped clock or a suspended process lets go stale).
    await writeFile(lock, JSON.stringify(currentHolder()));
    await utimes(lock, ago(120_000), ago(120_000));
    const patient = contender(lock);
    await settle(100);
    assert.equal(patient.started(), false, 'a live holder with a stale heartbeat is waited for');
    await rm(lock);
    await until(patient.started, 'goes on once the lock is gone');
    patient.finish();
    await patient.done;
  }));

test('breakers take turns: while another\'s turn is fresh the lock is left alone; a turn older than 10 s is taken over', () =>
  withTemp(async (dir) => {
    const lock = join(dir, 'index.json.lock');
    const turn = `${lock}.break`;
    await writeFile(lock, '');
    await writeFile(turn, '');
    const waiter = contender(lock);
    await settle(100);
    assert.equal(waiter.started(), false, 'another breaker has the turn');
    assert.equal(readFileSync(lock, 'utf8'), '', 'and the lock it judges is still there');
    await utimes(turn, ago(11_000), ago(11_000));
    await until(waiter.started, 'the old turn is taken over and the lock broken');
    waiter.finish();
    await waiter.done;
    assert.deepEqual(readdirSync(dir), []);
  }));

test('only its own lock is released: one put in its place (another file, or the same file rewritten) stays', () =>
  withTemp(async (dir) => {
    const lock = join(dir, 'index.json.lock');
    const mine = JSON.stringify(currentHolder());
    // Another file with the same text (a new inode: the old one is kept, so its number is not reused), and the same file with other text.
    await withLock(lock, async () => {
      await link(lock, join(dir, 'old'));
      await rm(lock);
      await writeFile(lock, mine);
    });
    assert.equal(readFileSync(lock, 'utf8'), mine, 'a new file with the same record stays');
    await rm(lock);
    await rm(join(dir, 'old'));
    await withLock(lock, async () => writeFile(lock, JSON.stringify({ ...currentHolder(), pid: 1 })));
    assert.equal(JSON.parse(readFileSync(lock, 'utf8')).pid, 1, 'the same inode with another record stays');
    await rm(lock);
    await withLock(lock, async () => rm(lock));
    assert.deepEqual(readdirSync(dir), [], 'a lock that went meanwhile is fine');
  }));

test('the holder touches its lock every heartbeat while it holds, and no more after it released', () =>
  withTemp(async (dir) => {
    const lock = join(dir, 'index.json.lock');
    mock.timers.enable({ apis: ['setInterval'] });
    try {
      await withLock(lock, async () => {
        await utimes(lock, ago(100_000), ago(100_000));
        const before = statSync(lock).mtimeMs;
        mock.timers.tick(HEARTBEAT_MS);
        await until(() => statSync(lock).mtimeMs > before, 'touched');
        assert.ok(Date.now() - statSync(lock).mtimeMs < 60_000, 'a fresh heartbeat');
      });
      await writeFile(lock, 'after');
      await utimes(lock, ago(100_000), ago(100_000));
      const after = statSync(lock).mtimeMs;
      mock.timers.tick(HEARTBEAT_MS * 3);
      await settle(50);
      assert.equal(statSync(lock).mtimeMs, after, 'the heartbeat stopped');
    } finally {
      mock.timers.reset();
    }
  }));

/**
 * Runs `before` when lock.ts calls node:fs's `name` with a path that `matches`, once, then the
 * real call (lock.ts imports it by name; syncBuiltinESMExports() makes the binding follow): how a
 * test gets between two steps of the breaker, as another process could. lock.ts's calls are
 * synchronous (no thread-pool round trip on the uncontended path), so are these.
 */
function interpose(t: TestContext, name: 'writeFileSync' | 'linkSync', matches: (path: string) => boolean, before: () => void, after?: () => void): void {
  const fsSync = fs as unknown as Record<string, (...args: unknown[]) => unknown>;
  const real = fsSync[name] as (...args: unknown[]) => unknown;
  let done = false;
  fsSync[name] = (...args: unknown[]) => {
    const path = String(name === 'linkSync' ? args[1] : args[0]);
    if (done || !matches(path)) return real(...args);
    done = true;
    before();
    try {
      return real(...args);
    } finally {
      after?.();
    }
  };
  syncBuiltinESMExports();
  t.after(() => {
    fsSync[name] = real;
    syncBuiltinESMExports();
  });
}

test('a breaker removes only the very lock it judged: one that took its place meanwhile (a live holder\'s) stays', (t) =>
  withTemp(async (dir) => {
    const lock = join(dir, 'index.json.lock');
    await writeFile(lock, JSON.stringify({ ...currentHolder(), startTime: 'a dead process' }));
    const live = JSON.stringify(currentHolder());
    // Between the judgement (dead) and the removal, the dead holder's lock goes and a live holder's takes its place.
    interpose(t, 'writeFileSync', (path) => path.endsWith('.break'), () => {
      rmSync(lock);
      writeFileSync(lock, live);
    });
    const waiter = contender(lock);
    await settle(150);
    assert.equal(waiter.started(), false, 'the new holder is waited for');
    assert.equal(readFileSync(lock, 'utf8'), live, 'its lock is still there');
    await rm(lock);
    await until(waiter.started, 'goes on once it released');
    waiter.finish();
    await waiter.done;
    assert.deepEqual(readdirSync(dir), []);
  }));

test('a lock that goes while it is being judged or broken is simply taken', (t) =>
  withTemp(async (dir) => {
    const lock = join(dir, 'index.json.lock');
    await writeFile(lock, '');
    interpose(t, 'writeFileSync', (path) => path.endsWith('.break'), () => rmSync(lock));
    assert.equal(await withLock(lock, async () => 'taken after the breaker found it gone'), 'taken after the breaker found it gone');
    assert.deepEqual(readdirSync(dir), []);
  }));

test('a lock released between our attempt and the judgement is simply taken', (t) =>
  withTemp(async (dir) => {
    const lock = join(dir, 'index.json.lock');
    await writeFile(lock, JSON.stringify(currentHolder()));
    interpose(t, 'linkSync', (path) => path === lock, () => undefined, () => rmSync(lock));
    assert.equal(await withLock(lock, async () => 'taken'), 'taken');
    assert.deepEqual(readdirSync(dir), []);
  }));

test('a contender waits between its tries, more each time (no busy loop on a held lock)', (t) =>
  withTemp(async (dir) => {
    const lock = join(dir, 'index.json.lock');
    await writeFile(lock, JSON.stringify(currentHolder()));
    const fsSync = fs as unknown as Record<string, (...args: unknown[]) => unknown>;
    const real = fsSync.linkSync as (...args: unknown[]) => unknown;
    let tries = 0;
    fsSync.linkSync = (...args: unknown[]) => (tries++, real(...args));
    syncBuiltinESMExports();
    t.after(() => {
      fsSync.linkSync = real;
      syncBuiltinESMExports();
    });
    const waiter = contender(lock);
    await settle(300);
    // Waits of 10, 20, 30 … ms: about 8 tries in 300 ms, fewer on a loaded machine, never more.
    assert.ok(tries >= 1 && tries <= 12, `${tries} tries in 300 ms`);
    assert.equal(waiter.started(), false);
    await rm(lock);
    await until(waiter.started, 'goes on once the lock is gone');
    waiter.finish();
    await waiter.done;
  }));
