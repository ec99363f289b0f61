/**
 * img-store ls / tag / rm / gc: podman's images, tag, rmi and image prune for our store. The
 * names are checked against umoci and skopeo reading the same layout; gc against a pull, a
 * commit's transaction and mounts that use the store at the same time.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { assertOneLineError, exec, mustExec, tool } from '../../helpers/exec.js';
import { tempDir } from '../../helpers/paths.js';
import { writeRandomImage } from '../../helpers/images.js';
import { busyboxRootfs, mountsUnder, unmountAll } from '../../helpers/mounts.js';
import { OciLayout } from '../../../lib/image/store/oci-layout.js';
import { collectGarbage } from '../../../lib/image/store/gc.js';
import { cachedTrees } from '../../../lib/layer/store-trees.js';
import { digestOf } from '../../../lib/core/digest.js';
import type { ImageManifest } from '../../../lib/image/model.js';

interface Row {
  name: string;
  id: string;
  digest: string;
  size: number;
  created?: string;
}

async function store(args: string[], storePath: string) {
  return tool('img-store', [...args, '--store', storePath]);
}

async function rows(storePath: string): Promise<Row[]> {
  const result = await store(['ls', '--format', 'json'], storePath);
  assert.equal(result.status, 0, result.stderr);
  return JSON.parse(result.stdout) as Row[];
}

async function umociNames(storePath: string): Promise<string[]> {
  return (await mustExec('umoci', ['ls', '--layout', storePath])).split('\n').filter(Boolean).sort();
}

async function fetchInto(storePath: string, source: string, name: string): Promise<void> {
  const result = await tool('img-fetch', [source, '--store', storePath, '--name', name], { timeoutMs: 120_000 });
  assert.equal(result.status, 0, result.stderr);
}

/** Every blob the named image needs is in the store and has its digest. */
async function assertImageWhole(storePath: string, name: string): Promise<void> {
  const layout = await OciLayout.open(storePath);
  const descriptor = await layout.resolve(name);
  const manifest = await layout.readJson<ImageManifest>(descriptor);
  for (const blob of [manifest.config, ...manifest.layers]) {
    const data = await readFile(layout.blobPath(blob.digest)).catch(() => undefined);
    assert.ok(data, `${name}: blob ${blob.digest} is missing`);
    assert.equal(digestOf(data), blob.digest, `${name}: blob ${blob.digest} is corrupt`);
  }
}

async function blobNames(storePath: string): Promise<string[]> {
  return (await readdir(join(storePath, 'blobs', 'sha256'))).sort();
}

describe('img-store', () => {
  let work: { path: string; cleanup: () => Promise<void> };
  let source: string;
  let counter = 0;
  const freshStore = async () => {
    const path = join(work.path, `store-${counter++}`);
    await fetchInto(path, `oci:${source}:app`, 'lab/app:1');
    await fetchInto(path, `oci:${source}:other`, 'lab/other:1');
    return path;
  };

  before(async () => {
    work = await tempDir('cp-img-store-');
    source = join(work.path, 'source');
    await writeRandomImage(source, 'app', [64 << 10, 32 << 10]);
    await writeRandomImage(source, 'other', [16 << 10]);
  });
  after(async () => {
    await unmountAll(work.path);
    await work?.cleanup();
  });

  test('ls: a row per name with the config digest as id, the manifest digest, the size of its blobs and created; the table as podman images', async () => {
    const path = await freshStore();
    const listed = await rows(path);
    assert.deepEqual(listed.map((r) => r.name), ['lab/app:1', 'lab/other:1']);
    const layout = await OciLayout.open(path);
    for (const row of listed) {
      const manifest = await layout.readJson<ImageManifest>(await layout.resolve(row.name));
      assert.equal(row.id, manifest.config.digest);
      assert.equal(row.digest, (await layout.resolve(row.name)).digest);
      assert.equal(row.size, (await layout.resolve(row.name)).size + manifest.config.size + manifest.layers.reduce((s, l) => s + l.size, 0));
      assert.match(row.created ?? '', /^\d{4}-\d\d-\d\dT/);
    }
    const table = (await store(['ls'], path)).stdout.split('\n');
    assert.match(table[0] as string, /^NAME\s+ID\s+CREATED\s+SIZE$/);
    assert.match(table[1] as string, new RegExp(`^lab/app:1\\s+${listed[0]?.id.slice(7, 19)}\\s+\\S+\\s+\\d+(\\.\\d+)? KiB$`));
  });

  test('tag and rm: umoci ls and skopeo inspect of the store see the same names as img-store ls (and a removed name is gone for them too)', async () => {
    const path = await freshStore();
    const tagged = await store(['tag', 'lab/app:1', 'lab/copy'], path);
    assert.equal(tagged.status, 0, tagged.stderr);
    const afterTag = (await rows(path)).map((r) => r.name).sort();
    assert.deepEqual(afterTag, ['lab/app:1', 'lab/other:1', 'localhost/lab/copy:latest']);
    assert.deepEqual(await umociNames(path), afterTag);
    const inspected = JSON.parse(await mustExec('skopeo', ['inspect', `oci:${path}:localhost/lab/copy:latest`])) as { Digest: string };
    assert.equal(inspected.Digest, (await rows(path)).find((r) => r.name === 'lab/app:1')?.digest);

    const removed = await store(['rm', 'lab/app:1'], path);
    assert.equal(removed.status, 0, removed.stderr);
    assert.equal(removed.stdout, 'Untagged: lab/app:1\n', 'another name keeps the image: only untagged');
    const afterRm = (await rows(path)).map((r) => r.name).sort();
    assert.deepEqual(await umociNames(path), afterRm);
    // The negative twin: the name is gone for the oracles too, and the lists differ from before.
    assert.notDeepEqual(afterRm, afterTag);
    const gone = await exec('skopeo', ['inspect', `oci:${path}:lab/app:1`]);
    assert.notEqual(gone.status, 0, 'skopeo still finds the removed name');
  });

  test('rm by an id that several names share is refused (one line, exit 2), as podman; --force removes every name', async () => {
    const path = await freshStore();
    assert.equal((await store(['tag', 'lab/app:1', 'lab/twin:1'], path)).status, 0);
    const id = (await rows(path)).find((r) => r.name === 'lab/app:1')?.id.slice(7, 19) as string;
    assertOneLineError(await store(['rm', id], path), 'img-store', 2, /has 2 names \(lab\/app:1, localhost\/lab\/twin:1\).*--force/);
    assert.equal((await rows(path)).length, 3, 'nothing was removed');
    const forced = await store(['rm', '--force', id], path);
    assert.equal(forced.status, 0, forced.stderr);
    assert.match(forced.stdout, /^Untagged: lab\/app:1\nUntagged: localhost\/lab\/twin:1\nDeleted: sha256:[a-f0-9]{64}\n$/);
    assert.deepEqual((await rows(path)).map((r) => r.name), ['lab/other:1']);
  });

  test('bad input: one line, exit 2 for the command line, 1 for what is not there; nothing changes', async () => {
    const path = await freshStore();
    const before = await readFile(join(path, 'index.json'), 'utf8');
    assertOneLineError(await store([], path), 'img-store', 2, /missing a subcommand: ls, tag, rm, gc/);
    assertOneLineError(await store(['prune'], path), 'img-store', 2, /unknown subcommand "prune"/);
    assertOneLineError(await store(['tag', 'lab/app:1'], path), 'img-store', 2, /tag takes SOURCE NEW-NAME, got "lab\/app:1"/);
    assertOneLineError(await store(['tag', 'lab/app:1', 'Bad Name'], path), 'img-store', 2, /invalid/);
    assertOneLineError(await store(['tag', 'lab/app:1', `lab/x@sha256:${'a'.repeat(64)}`], path), 'img-store', 2, /a tag, not a digest/);
    assertOneLineError(await store(['rm', 'lab/app:1', 'lab/nothing:1'], path), 'img-store', 1, /no image named or with the id "lab\/nothing:1"/);
    assertOneLineError(await store(['ls', '--format', 'yaml'], path), 'img-store', 2, /format/);
    assertOneLineError(await store(['ls'], join(work.path, 'no-such-store')), 'img-store', 1, /not an OCI image layout/);
    assert.equal(await readFile(join(path, 'index.json'), 'utf8'), before, 'a refused rm removed nothing (all or nothing)');
  });

  test('gc removes what no name reaches, and nothing a name reaches: blobs, cached layer dirs, flat trees', async () => {
    const path = await freshStore();
    for (const [name, flags] of [['lab/app:1', ['--layers']], ['lab/app:1', []], ['lab/other:1', ['--layers']]] as const) {
      const unpacked = await tool('img-unpack', ['--store', path, '--image', name, ...flags]);
      assert.equal(unpacked.status, 0, unpacked.stderr);
    }
    const otherOnly = await imageBlobs(path, 'lab/other:1');
    const appTrees = (await readdir(join(path, 'layers'))).length;
    // Where blobs came from (img-push's mount hints): the record of a removed blob goes with it.
    const source = `${JSON.stringify([{ registry: '127.0.0.1:5000', repository: 'lab/x' }])}\n`;
    const appBlob = (await imageBlobs(path, 'lab/app:1'))[0] as string;
    await mkdir(join(path, 'sources'), { recursive: true });
    for (const digest of [otherOnly[0] as string, appBlob]) await writeFile(join(path, 'sources', `${digest.slice(7)}.json`), source);
    assert.equal((await store(['rm', 'lab/other:1'], path)).status, 0);
    const gc = await store(['gc', '--format', 'json'], path);
    assert.equal(gc.status, 0, gc.stderr);
    const report = JSON.parse(gc.stdout) as { blobs: string[]; removed: string[] };
    assert.deepEqual(report.blobs.sort(), otherOnly.sort(), 'exactly the blobs only lab/other:1 had');
    assert.equal(report.removed.length, 1, `one layer tree goes: ${report.removed.join(', ')}`);
    await assertImageWhole(path, 'lab/app:1');
    assert.equal((await readdir(join(path, 'layers'))).length, appTrees - 2, 'the tree and its fingerprint');
    assert.equal((await readdir(join(path, 'rootfs'))).length, 2, "lab/app:1's flat tree and fingerprint stay");
    assert.deepEqual(await readdir(join(path, 'sources')), [`${appBlob.slice(7)}.json`], 'the kept blob\'s source record stays, the removed one\'s goes');
    const again = JSON.parse((await store(['gc', '--format', 'json'], path)).stdout) as { blobs: string[]; removed: string[] };
    assert.deepEqual([again.blobs, again.removed], [[], []], 'a second gc finds nothing');
    assert.equal((await tool('img-unpack', ['--store', path, '--image', 'lab/app:1', '--layers'])).status, 0, 'the kept trees are reused');
  });

  test("a kill -9'd pull's staging dir is collected; a live transaction's is not, and a blob it reuses survives rm + gc", async () => {
    const path = await freshStore();
    const script = `import { OciLayout } from ${JSON.stringify(new URL('../../../lib/image/store/oci-layout.js', import.meta.url).href)};
const layout = await OciLayout.open(${JSON.stringify(path)}, { create: true });
const txn = await layout.begin();
await txn.putBytes(Buffer.from('half a pull'), 'application/octet-stream');
console.log(txn.stagingDir);
setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const [line] = (await once(child.stdout, 'data')) as [Buffer];
    const deadStaging = line.toString().trim();
    child.kill('SIGKILL');
    await once(child, 'close');
    clearTimeout(timer);
    assert.ok(existsSync(deadStaging));

    const layout = await OciLayout.open(path);
    const layer = (await layout.readJson<ImageManifest>(await layout.resolve('lab/other:1'))).layers[0] as ImageManifest['layers'][number];
    const reused = layer.digest;
    const live = await layout.begin();
    assert.ok(await live.hasBlob(reused), 'the live transaction finds (and claims) the layer');
    assert.equal((await store(['rm', 'lab/other:1'], path)).status, 0);
    const report = await collectGarbage(layout, [cachedTrees(layout)]);
    const staged = existsSync(live.stagingDir);
    const configDescriptor = await live.putBytes(Buffer.from('{"rootfs":{"type":"layers","diff_ids":[]}}'), 'application/vnd.oci.image.config.v1+json');
    const manifest = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: configDescriptor, layers: [layer] };
    const descriptor = await live.putBytes(Buffer.from(JSON.stringify(manifest)), manifest.mediaType);
    await layout.commitAndTag(live, { name: 'lab/reuser:1', descriptor });
    assert.deepEqual(report.staging, [deadStaging.split('/').pop()]);
    assert.ok(!existsSync(deadStaging), "the dead pull's staging dir is gone");
    assert.ok(staged, "the live transaction's staging dir was kept");
    assert.ok(report.blobs.includes(reused), 'gc took the unnamed layer from blobs/ (the claim keeps it for the transaction)');
    await assertImageWhole(path, 'lab/reuser:1');
  });

  test('gc while img-fetch pulls images whose blobs a removed name left: every pull is whole', async () => {
    const path = await freshStore();
    const rounds = 6;
    for (let round = 0; round < rounds; round++) {
      // The blobs are there, unnamed: the pulls skip them ("already in the store") while gc would take them.
      assert.equal((await store(['rm', '--force', ...(round === 0 ? ['lab/other:1'] : [`lab/again:${round - 1}`])], path)).status, 0);
      const [pulled, collected] = await Promise.all([
        tool('img-fetch', [`oci:${source}:other`, '--store', path, '--name', `lab/again:${round}`], { timeoutMs: 120_000 }),
        Promise.all([store(['gc'], path), store(['gc'], path)]),
      ]);
      assert.equal(pulled.status, 0, pulled.stderr);
      for (const result of collected) assert.equal(result.status, 0, result.stderr);
      await assertImageWhole(path, `lab/again:${round}`);
    }
    assert.equal((await store(['gc'], path)).status, 0);
    for (const name of ['lab/app:1', `lab/again:${rounds - 1}`]) await assertImageWhole(path, name);
  });

  test('rm of an image an ovl-mount container uses is refused in one line naming it, as podman rmi; another name of it, an unused image and --force go', async () => {
    const path = await freshStore();
    const unpacked = await tool('img-unpack', ['--store', path, '--image', 'lab/other:1', '--layers']);
    assert.equal(unpacked.status, 0, unpacked.stderr);
    const name = `cp-user-${process.pid}-${counter}`;
    const mounted = await tool('ovl-mount', ['--name', name], { input: unpacked.stdout });
    assert.equal(mounted.status, 0, mounted.stderr);
    try {
      const before = await readFile(join(path, 'index.json'), 'utf8');
      assertOneLineError(await store(['rm', 'lab/other:1'], path), 'img-store', 2, new RegExp(`image lab/other:1 is in use by container ${name} \\(ovl-mount.*--force`));
      assert.equal(await readFile(join(path, 'index.json'), 'utf8'), before, 'nothing was removed');
      assert.equal((await store(['tag', 'lab/other:1', 'lab/other:2'], path)).status, 0);
      assert.equal((await store(['rm', 'localhost/lab/other:2'], path)).status, 0, 'a name whose image another name keeps may go');
      // The negative twin: an image no container uses is removed.
      assert.equal((await store(['rm', 'lab/app:1'], path)).status, 0);
      const forced = await store(['rm', '--force', 'lab/other:1'], path);
      assert.equal(forced.status, 0, forced.stderr);
      assert.deepEqual(await rows(path), []);
    } finally {
      await tool('ovl-mount', ['--unmount'], { input: mounted.stdout });
    }
  });

  test('rm of an image a detached container (ns-enter -d) runs on is refused naming it; once it is deleted, the image goes', async () => {
    const path = join(work.path, `store-${counter++}`);
    const { layout } = await busyboxRootfs(join(work.path, `bb-${counter}`));
    await fetchInto(path, `oci:${layout}:busybox`, 'lab/bb:1');
    const unpacked = await tool('img-unpack', ['--store', path, '--image', 'lab/bb:1']);
    assert.equal(unpacked.status, 0, unpacked.stderr);
    const id = `cp-rmi-${process.pid}`;
    try {
      const started = await tool('ns-enter', ['-d', '--name', id, '--', 'sleep', '300'], { input: unpacked.stdout });
      assert.equal(started.status, 0, started.stderr);
      assertOneLineError(await store(['rm', 'lab/bb:1'], path), 'img-store', 2, new RegExp(`image lab/bb:1 is in use by detached container ${id}`));
    } finally {
      await tool('oci-runtime', ['delete', '--force', id]);
    }
    // The negative twin: the same rm with the container gone.
    const removed = await store(['rm', 'lab/bb:1'], path);
    assert.equal(removed.status, 0, removed.stderr);
  });

  test('gc keeps what containers and mounts use: a container of a removed image, a tree bound in another mount namespace; a dead container dir goes', async () => {
    const path = await freshStore();
    const unpacked = await tool('img-unpack', ['--store', path, '--image', 'lab/other:1', '--layers']);
    assert.equal(unpacked.status, 0, unpacked.stderr);
    const mounted = await tool('ovl-mount', ['--name', 'keeper'], { input: unpacked.stdout });
    assert.equal(mounted.status, 0, mounted.stderr);
    const flat = await tool('img-unpack', ['--store', path, '--image', 'lab/app:1']);
    assert.equal(flat.status, 0, flat.stderr);
    const flatTree = (JSON.parse(flat.stdout) as { rootfs: { path: string } }).rootfs.path;
    const target = join(work.path, `bound-${counter}`);
    await mkdir(target);
    const binder = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', `mount --bind "$0" "$1" && echo ready && exec sleep 60`, flatTree, target], { stdio: ['ignore', 'pipe', 'inherit'] });
    const timer = setTimeout(() => binder.kill('SIGKILL'), 90_000);
    try {
      await once(binder.stdout, 'data');
      await mkdir(join(path, 'containers', 'dead', 'upper'), { recursive: true });
      await mkdir(join(path, 'containers', 'unmounted', 'upper'), { recursive: true });
      await writeFile(join(path, 'containers', 'unmounted', 'container.json'), JSON.stringify({ lower: ['/nonexistent'] }));
      // --force: the container keeper uses lab/other:1 (rm refuses that without it).
      assert.equal((await store(['rm', '--force', 'lab/other:1', 'lab/app:1'], path)).status, 0);
      const report = JSON.parse((await store(['gc', '--format', 'json'], path)).stdout) as { blobs: string[]; removed: string[] };
      assert.deepEqual(report.removed, [join(path, 'containers', 'dead')], 'only the dead container dir');
      assert.ok(existsSync(flatTree), 'the tree bound in the other namespace stays');
      const layout = await OciLayout.open(path);
      const keeperImage = (JSON.parse(await readFile(join(path, 'containers', 'keeper', 'container.json'), 'utf8')) as { image: string }).image;
      const manifest = await layout.readJson<ImageManifest>({ digest: keeperImage });
      for (const blob of [manifest.config, ...manifest.layers]) assert.ok(await layout.hasBlob(blob.digest), 'the container keeps its image');
    } finally {
      binder.kill('SIGKILL');
      clearTimeout(timer);
      await once(binder, 'close').catch(() => undefined);
      await tool('ovl-mount', ['--unmount'], { input: mounted.stdout });
    }
    // The negative twin: with the namespace gone, the flat tree is collected.
    const report = JSON.parse((await store(['gc', '--format', 'json'], path)).stdout) as { removed: string[] };
    assert.ok(report.removed.includes(flatTree), `unbound, the flat tree goes: ${report.removed.join(', ')}`);
    assert.deepEqual(mountsUnder(path), []);
  });
});

async function imageBlobs(storePath: string, name: string): Promise<string[]> {
  const layout = await OciLayout.open(storePath);
  const descriptor = await layout.resolve(name);
  const manifest = await layout.readJson<ImageManifest>(descriptor);
  const all = new Set(await blobNames(storePath));
  const others = new Set<string>();
  for (const other of (await layout.readIndex()).manifests.filter((m) => m.digest !== descriptor.digest)) {
    const m = await layout.readJson<ImageManifest>(other);
    for (const d of [other.digest, m.config.digest, ...m.layers.map((l) => l.digest)]) others.add(d);
  }
  return [descriptor.digest, manifest.config.digest, ...manifest.layers.map((l) => l.digest)].filter((d) => all.has(d.slice(7)) && !others.has(d));
}
