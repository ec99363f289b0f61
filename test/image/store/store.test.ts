import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { digestOf } from '../../../lib/core/digest.js';
import { ClobberError, DigestMismatchError, NotFoundError, UnsupportedError } from '../../../lib/core/errors.js';
import { OciLayout } from '../../../lib/image/store/oci-layout.js';
import { DirLayout } from '../../../lib/image/transport/dir.js';
import { MEDIA_TYPES, REF_NAME_ANNOTATION } from '../../../lib/image/model.js';
import { withTempDir } from '../../helpers/paths.js';
import { currentHolder, STALE_HOLDER_MS } from '../../../lib/core/holder.js';
import { snapshotStore } from '../../helpers/store-snapshot.js';
import { StoreWriteError } from '../../../lib/image/store/errors.js';
import { ociSchema } from '../../helpers/oci-schema.js';
import { mustExec } from '../../helpers/exec.js';

const withTemp = (fn: (dir: string) => Promise<void>) => withTempDir('cp-store-', fn);

test('a new store is an OCI layout the image-spec schemas and umoci accept', () =>
  withTemp(async (dir) => {
    const store = join(dir, 'store');
    const layout = await OciLayout.open(store, { create: true });
    ociSchema('image-layout-schema.json')(JSON.parse(await readFile(join(store, 'oci-layout'), 'utf8')));
    const config = await layout.putBytes(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } })), MEDIA_TYPES.ociConfig);
    const manifest = await layout.putBytes(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociManifest, config, layers: [] })), MEDIA_TYPES.ociManifest);
    await layout.tag('lab/empty:1', { ...manifest, platform: { os: 'linux', architecture: 'amd64' } });
    await layout.tag('lab/empty:1', manifest);
    const index = await layout.readIndex();
    ociSchema('image-index-schema.json')(index);
    assert.equal(index.manifests.length, 1, 'a name names one image');
    assert.equal((await layout.resolve('lab/empty:1')).annotations?.[REF_NAME_ANNOTATION], 'lab/empty:1');
    await assert.rejects(layout.resolve('nope'), (e: unknown) => e instanceof NotFoundError && /no image named "nope" \(it has: lab\/empty:1\)/.test(e.message));
    assert.match(await mustExec('umoci', ['ls', '--layout', store]), /lab\/empty:1/);
  }));

test('a transaction is all or nothing: staged blobs are invisible until commit, and abort leaves nothing', () =>
  withTemp(async (dir) => {
    const layout = await OciLayout.open(join(dir, 'store'), { create: true });
    const before = await snapshotStore(layout.root);
    const a = Buffer.from('layer a');
    const txn = await layout.begin();
    const writer = await txn.blobWriter({ digest: digestOf(a), size: a.length });
    await writer.write(a);
    await writer.commit();
    assert.equal(await layout.hasBlob(digestOf(a)), false, 'not in the store before commit');
    assert.equal(await txn.hasBlob(digestOf(a), a.length), true);
    await txn.abort();
    assert.deepEqual(await snapshotStore(layout.root), before);

    const again = await layout.begin();
    await again.putBytes(a, 'x');
    await again.commit();
    assert.equal(await layout.hasBlob(digestOf(a), a.length), true);
    assert.deepEqual((await snapshotStore(layout.root)).files.filter((f) => f.startsWith('.')), [], 'no staging dir left');
  }));

test('a blob that does not match its digest or size is refused and leaves no file', () =>
  withTemp(async (dir) => {
    const layout = await OciLayout.open(join(dir, 'store'), { create: true });
    const before = await snapshotStore(layout.root);
    const claimed = digestOf('the real content');
    await assert.rejects(
      layout.putBlob((async function* () {
        yield Buffer.from('something else!!');
      })(), { digest: claimed, size: 16 }),
      (e: unknown) => e instanceof DigestMismatchError && e.message.startsWith(`blob ${claimed}: content has digest sha256:`),
    );
    await assert.rejects(
      layout.putBlob((async function* () {
        yield Buffer.from('too long for the size');
      })(), { digest: claimed, size: 4 }),
      /more than the expected 4 bytes/,
    );
    assert.deepEqual(await snapshotStore(layout.root), before);
  }));

test('what a killed pull left (a staging dir of a dead process) is swept on the next open', () =>
  withTemp(async (dir) => {
    const store = join(dir, 'store');
    await OciLayout.open(store, { create: true });
    const child = await mustExec('sh', ['-c', 'echo $$']);
    const stale = join(store, `.staging-${child.trim()}-deadbeef`);
    await mkdir(stale);
    await writeFile(join(stale, 'x.part'), 'half a layer');
    await OciLayout.open(store, { create: true });
    assert.deepEqual((await snapshotStore(store)).files.filter((f) => f.startsWith('.')), []);
  }));

test('staging directories with a holder record: a dead holder\'s goes, an unseen holder\'s stays until its heartbeat is stale', () =>
  withTemp(async (dir) => {
    const store = join(dir, 'store');
    await OciLayout.open(store, { create: true });
    const child = Number((await mustExec('sh', ['-c', 'echo $$'])).trim());
    const me = currentHolder();
    const staging = async (name: string, holder: object, age = 0) => {
      await mkdir(join(store, name));
      await writeFile(join(store, name, 'holder.json'), JSON.stringify(holder));
      const when = new Date(Date.now() - age);
      await utimes(join(store, name, 'holder.json'), when, when);
    };
    await staging('.staging-1-dead', { ...me, pid: child });
    await staging('.staging-2-unseen', { ...me, pidNamespace: 'pid:[1]' });
    await staging('.staging-3-silent', { ...me, pidNamespace: 'pid:[1]' }, STALE_HOLDER_MS + 60_000);
    await OciLayout.open(store, { create: true });
    assert.deepEqual((await snapshotStore(store)).files.filter((f) => f.startsWith('.') && f.endsWith('/')), ['.staging-2-unseen/']);
  }));

test('open refuses what is not an OCI layout', () =>
  withTemp(async (dir) => {
    await assert.rejects(OciLayout.open(dir), (e: unknown) => e instanceof NotFoundError && /not an OCI image layout/.test(e.message));
    await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"9"}');
    await assert.rejects(OciLayout.open(dir), UnsupportedError);
  }));

test("dir: layouts: a foreign non-empty directory is refused; a failed write removes a directory it created", () =>
  withTemp(async (dir) => {
    const foreign = join(dir, 'foreign');
    await mkdir(foreign);
    await writeFile(join(foreign, 'notes.txt'), 'mine');
    await assert.rejects(DirLayout.create(foreign), ClobberError);
    const fresh = join(dir, 'fresh');
    const layout = await DirLayout.create(fresh);
    const txn = await layout.begin();
    await txn.putBytes(Buffer.from('x'), 'x');
    await layout.abort(txn);
    assert.deepEqual(await snapshotStore(fresh), { files: [], index: '' });
  }));

test('putStream: a blob named by its digest at its end, and a failing source is its own error, not a write error, leaving nothing', () =>
  withTemp(async (dir) => {
    const store = await OciLayout.open(join(dir, 'store'), { create: true });
    const before = await snapshotStore(join(dir, 'store'));
    async function* chunks(fail: boolean) {
      yield Buffer.from('layer ');
      // A file of the upper dir that went away: an errno error, but not the store's.
      if (fail) throw Object.assign(new Error("ENOENT: no such file or directory, lstat '/upper/gone'"), { code: 'ENOENT', syscall: 'lstat', path: '/upper/gone' });
      yield Buffer.from('bytes');
    }
    await assert.rejects(store.transaction((txn) => txn.putStream(chunks(true), MEDIA_TYPES.ociLayer)), (err: Error) => !(err instanceof StoreWriteError) && /lstat '\/upper\/gone'/.test(err.message));
    assert.deepEqual(await snapshotStore(join(dir, 'store')), before);
    const descriptor = await store.transaction((txn) => txn.putStream(chunks(false), MEDIA_TYPES.ociLayer));
    assert.deepEqual(descriptor, { mediaType: MEDIA_TYPES.ociLayer, digest: digestOf('layer bytes'), size: 11 });
    assert.equal(await readFile(store.blobPath(descriptor.digest), 'utf8'), 'layer bytes');
  }));
