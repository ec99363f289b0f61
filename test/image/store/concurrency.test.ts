/**
 * Many img-fetch processes on one store: every name lands in index.json, every blob is whole,
 * and a holder in another PID namespace (a CI container sharing the store) is not taken for dead.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { once } from 'node:events';
import { tool, type ExecResult } from '../../helpers/exec.js';
import { REPO, tempDir, toolPath } from '../../helpers/paths.js';
import { writeRandomImage } from '../../helpers/images.js';
import { OciLayout } from '../../../lib/image/store/oci-layout.js';
import { digestOf } from '../../../lib/core/digest.js';
import { REF_NAME_ANNOTATION } from '../../../lib/image/model.js';

const UNSHARE = ['-pf', '--mount-proc'];

async function names(store: string): Promise<string[]> {
  const index = JSON.parse(await readFile(join(store, 'index.json'), 'utf8')) as { manifests: Array<{ annotations?: Record<string, string> }> };
  return index.manifests.map((m) => m.annotations?.[REF_NAME_ANNOTATION] ?? '').sort();
}

/** Every blob's content has the digest it is named by; nothing but the layout is left. */
async function assertStoreSound(store: string): Promise<void> {
  const dir = join(store, 'blobs', 'sha256');
  for (const hex of await readdir(dir)) {
    const hash = createHash('sha256').update(await readFile(join(dir, hex))).digest('hex');
    assert.equal(hash, hex, `blob ${hex} is corrupt`);
  }
  assert.deepEqual((await readdir(store)).sort(), ['blobs', 'index.json', 'oci-layout']);
}

function assertFetched(result: ExecResult): void {
  assert.equal(result.status, 0, `img-fetch failed: ${result.stderr}`);
}

describe('concurrent pulls into one store', () => {
  let work: { path: string; cleanup: () => Promise<void> };
  let layout: string;

  before(async () => {
    work = await tempDir('cp-concurrency-');
    layout = join(work.path, 'layout');
    await writeRandomImage(layout, 'app', [64 << 10, 32 << 10]);
  });
  after(async () => {
    await work?.cleanup();
  });

  test('16 parallel img-fetch of different names: all 16 names are in index.json, every blob whole', async () => {
    const store = join(work.path, 'store-16');
    const wanted = Array.from({ length: 16 }, (_, i) => `lab/app:${i}`);
    const results = await Promise.all(wanted.map((name) => tool('img-fetch', [`oci:${layout}:app`, '--store', store, '--name', name], { timeoutMs: 180_000 })));
    for (const result of results) assertFetched(result);
    assert.deepEqual(await names(store), [...wanted].sort());
    await assertStoreSound(store);
  });

  test('a pull in another PID namespace leaves the staging directory of a live pull here alone', async () => {
    const store = join(work.path, 'store-pidns');
    const layoutStore = await OciLayout.open(store, { create: true });
    const txn = await layoutStore.begin();
    const blob = Buffer.from('a layer of the pull that is still running');
    await txn.putBytes(blob, 'application/octet-stream');
    const result = await unshared(['img-fetch', `oci:${layout}:app`, '--store', store, '--name', 'lab/app:ns']);
    const stagingLeft = await stat(txn.stagingDir).then(() => true, () => false);
    await txn.commit().catch(() => undefined);
    assertFetched(result);
    assert.ok(stagingLeft, 'the pull in the other namespace swept a live staging directory');
    assert.ok(await layoutStore.hasBlob(digestOf(blob), blob.length), 'the live pull could not commit');
  });

  test('an index.json lock held in another PID namespace is waited for, not broken', async () => {
    const store = join(work.path, 'store-lock');
    await OciLayout.open(store, { create: true });
    const holder = spawn('unshare', [...UNSHARE, process.execPath, '--input-type=module', '-e', holdLockScript(join(store, 'index.json.lock'))], { stdio: ['pipe', 'pipe', 'inherit'] });
    const timer = setTimeout(() => holder.kill('SIGKILL'), 120_000);
    try {
      await once(holder.stdout, 'data');
      let finished = false;
      const fetching = tool('img-fetch', [`oci:${layout}:app`, '--store', store, '--name', 'lab/app:waited'], { timeoutMs: 120_000 }).finally(() => (finished = true));
      // The fetch cannot tag while the lock is held, however long it has had.
      await new Promise((r) => setTimeout(r, 1500));
      const finishedWhileHeld = finished;
      holder.stdin.end();
      const result = await fetching;
      assert.equal(finishedWhileHeld, false, 'img-fetch broke a live lock held in another PID namespace');
      assertFetched(result);
      assert.deepEqual(await names(store), ['lab/app:waited']);
    } finally {
      clearTimeout(timer);
      holder.kill('SIGKILL');
    }
  });

  test('leftovers are swept: an empty lock file at once, an unseen holder once its heartbeat is stale, old temp files', async () => {
    const store = join(work.path, 'store-leftovers');
    await OciLayout.open(store, { create: true });
    await writeFile(join(store, 'index.json.lock'), '');
    const temp = join(store, '.index.json.0123456789ab.tmp');
    await writeFile(temp, '');
    const old = new Date(Date.now() - 10 * 60_000);
    await utimes(temp, old, old);
    assertFetched(await tool('img-fetch', [`oci:${layout}:app`, '--store', store, '--name', 'one']));
    const foreign = { pid: 1, pidNamespace: 'pid:[1]', bootId: 'another-boot', startTime: '1' };
    await writeFile(join(store, 'index.json.lock'), JSON.stringify(foreign));
    await utimes(join(store, 'index.json.lock'), old, old);
    assertFetched(await tool('img-fetch', [`oci:${layout}:app`, '--store', store, '--name', 'two'], { timeoutMs: 60_000 }));
    assert.deepEqual(await names(store), ['one', 'two']);
    await assertStoreSound(store);
  });
});

function unshared(args: string[]): Promise<ExecResult> {
  const [name, ...rest] = args as [string, ...string[]];
  return new Promise((resolve, reject) => {
    const child = spawn('unshare', [...UNSHARE, process.execPath, toolPath(name), ...rest], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('error', reject);
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
    });
  });
}

/** Takes the lock with the store's own code, says so, and holds it until stdin closes. */
function holdLockScript(lockPath: string): string {
  const lockModule = join(REPO, 'dist', 'lib', 'core', 'lock.js');
  return `const { withLock } = await import(${JSON.stringify(lockModule)});
await withLock(${JSON.stringify(lockPath)}, () => new Promise((done) => { process.stdout.write('locked\\n'); process.stdin.on('end', done).resume(); }));`;
}
