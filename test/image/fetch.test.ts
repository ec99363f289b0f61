/**
 * img-fetch end to end against a real registry (Debian's docker-registry from scripts/), with
 * skopeo and umoci as the oracles: they read what we write, we read what they write.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { arch } from 'node:os';
import { readFile, stat, open, readdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { exec, mustExec, tool, type ExecResult, assertOneLineError } from '../helpers/exec.js';
import { tempDir, toolPath } from '../helpers/paths.js';
import { pushBusybox, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { registryBlobData, skopeoPush, writeMultiArchIndex, writeRandomImage } from '../helpers/images.js';
import { startProxy } from '../helpers/proxy.js';
import { snapshotStore } from '../helpers/store-snapshot.js';
import { parseDocument } from '../../lib/cli/pipe.js';
import type { ImageSection } from '../../lib/cli/document.js';

const HOST_ARCH = arch() === 'x64' ? 'amd64' : arch();

function imageOf(result: ExecResult): ImageSection {
  assert.equal(result.status, 0, `img-fetch failed: ${result.stderr}`);
  const doc = parseDocument(result.stdout);
  assert.ok(doc.image, 'no image section');
  return doc.image;
}

describe('img-fetch from a real registry', () => {
  let registry: TestRegistry;
  let work: { path: string; cleanup: () => Promise<void> };
  let busyboxRef: string;
  let busyboxLayout: string;

  before(async () => {
    work = await tempDir('cp-fetch-');
    registry = await startRegistry();
    busyboxRef = `${registry.host}/lab/busybox:latest`;
    busyboxLayout = join(work.path, 'bb', 'layout');
    await pushBusybox(join(work.path, 'bb'), [`docker://${busyboxRef}`]);
  });
  after(async () => {
    await registry?.stop();
    await work?.cleanup();
  });

  const fetch = (args: string[], options: { input?: string; env?: NodeJS.ProcessEnv } = {}) => tool('img-fetch', args, options);

  test('anonymous pull: the store is an OCI layout that skopeo and umoci read', async () => {
    const store = join(work.path, 'store-anon');
    const image = imageOf(await fetch([`docker://${busyboxRef}`, '--tls-verify=false', '--store', store]));
    assert.equal(image.reference, busyboxRef);
    assert.equal(image.store, store);
    assert.equal(image.layers.length, 2);
    const remote = JSON.parse(await mustExec('skopeo', ['inspect', '--tls-verify=false', `docker://${busyboxRef}`])) as { Digest: string; Layers: string[] };
    assert.equal(image.digest, remote.Digest);
    assert.deepEqual(image.layers.map((l) => l.digest), remote.Layers);
    for (const layer of image.layers) assert.equal((await stat(join(store, 'blobs', 'sha256', layer.digest.slice(7)))).size, layer.size);

    const ours = JSON.parse(await mustExec('skopeo', ['inspect', `oci:${store}:${busyboxRef}`])) as { Digest: string; Layers: string[] };
    assert.equal(ours.Digest, remote.Digest);
    await mustExec('skopeo', ['copy', '-q', `oci:${store}:${busyboxRef}`, `oci:${join(work.path, 'skopeo-copy')}:copied`]);
    const bundle = join(work.path, 'umoci-bundle');
    await mustExec('umoci', ['unpack', '--image', `${store}:${busyboxRef}`, bundle]);
    assert.ok((await stat(join(bundle, 'rootfs', 'bin', 'busybox'))).isFile());
    assert.match(await readFile(join(bundle, 'rootfs', 'etc', 'hostname'), 'utf8'), /lab-busybox/);
    // Nothing but the layout itself and the record of where its blobs came from: no temp files left behind.
    assert.deepEqual((await readdir(store)).sort(), ['blobs', 'index.json', 'oci-layout', 'sources']);
    assert.ok((await readdir(join(store, 'sources'))).every((name) => /^[a-f0-9]{64}\.json$/.test(name)), 'only source records');
  });

  test('a blob already in the store is not fetched again; a pinned manifest costs no request', async () => {
    const store = join(work.path, 'store-again');
    const proxy = await startProxy(registry.port);
    try {
      const ref = `${proxy.host}/lab/busybox:latest`;
      const first = imageOf(await fetch([`docker://${ref}`, '--tls-verify=false', '--store', store]));
      assert.equal(proxy.count(/\/blobs\//), 3);
      imageOf(await fetch([`docker://${ref}`, '--tls-verify=false', '--store', store]));
      assert.equal(proxy.count(/\/blobs\//), 3, 'the second pull fetched blobs');
      const before = proxy.requests.length;
      imageOf(await fetch([`docker://${proxy.host}/lab/busybox@${first.digest}`, '--tls-verify=false', '--store', store]));
      assert.deepEqual(proxy.requests.slice(before), [], 'a digest-pinned pull of what the store has made requests');
    } finally {
      await proxy.stop();
    }
  });

  test('--tls-verify defaults to true: a plain-HTTP registry is one line with a hint', async () => {
    const result = await fetch([`docker://${busyboxRef}`, '--store', join(work.path, 'store-tls')]);
    assertOneLineError(result, 'img-fetch', 1, /HTTPS.*--tls-verify=false/);
  });

  test('a tag that does not exist: one line, exit 1, nothing stored', async () => {
    const store = join(work.path, 'store-404');
    const result = await fetch([`docker://${registry.host}/lab/busybox:nope`, '--tls-verify=false', '--store', store]);
    assertOneLineError(result, 'img-fetch', 1, new RegExp(`lab/busybox:nope.*not found|not found.*lab/busybox:nope`));
    const repo = await fetch([`docker://${registry.host}/lab/nothing:latest`, '--tls-verify=false', '--store', store]);
    assertOneLineError(repo, 'img-fetch', 1, /lab\/nothing:latest.*not found/);
    const snapshot = await snapshotStore(store);
    assert.deepEqual(snapshot.files.filter((f) => f.startsWith('blobs/sha256/') && !f.endsWith('/')), []);
  });

  test('a multi-arch index: the host platform by default, --platform, and digest-pinned references', async () => {
    const { index, byArch } = await writeMultiArchIndex(busyboxLayout, 'multi', HOST_ARCH);
    await skopeoPush(`oci:${busyboxLayout}:multi`, `docker://${registry.host}/lab/multi:latest`, { all: true });
    const store = join(work.path, 'store-multi');
    const host = imageOf(await fetch([`docker://${registry.host}/lab/multi:latest`, '--tls-verify=false', '--store', store]));
    assert.equal(host.digest, byArch[HOST_ARCH]?.digest);
    assert.equal(host.platform.architecture, HOST_ARCH);
    assert.equal(host.sourceDigest, index.digest);

    const arm = imageOf(await fetch([`docker://${registry.host}/lab/multi@${index.digest}`, '--platform', 'linux/arm64', '--tls-verify=false', '--store', store]));
    assert.equal(arm.digest, byArch.arm64?.digest ?? byArch[HOST_ARCH]?.digest);
    assert.equal(arm.platform.architecture, 'arm64');
    assert.equal(arm.reference, `${registry.host}/lab/multi@${index.digest}`);

    const pinned = imageOf(await fetch([`docker://${registry.host}/lab/multi@${host.digest}`, '--tls-verify=false', '--store', store]));
    assert.equal(pinned.digest, host.digest);

    const missing = await fetch([`docker://${registry.host}/lab/multi:latest`, '--platform', 'linux/s390x', '--tls-verify=false', '--store', store]);
    assertOneLineError(missing, 'img-fetch', 1, /no image for linux\/s390x.*linux\/(amd64|arm64)/);
    const badFlag = await fetch([`docker://${registry.host}/lab/multi:latest`, '--platform', 'linux', '--tls-verify=false', '--store', store]);
    assertOneLineError(badFlag, 'img-fetch', 2, /--platform/);
    const listed = JSON.parse(await mustExec('skopeo', ['inspect', `oci:${store}:${registry.host}/lab/multi@${index.digest}`])) as { Architecture: string };
    assert.equal(listed.Architecture, 'arm64');
  });

  test('Docker schema2 and OCI manifests: a Docker image is stored as OCI (umoci reads it) and kept as is with --dir', async () => {
    const dockerRef = `${registry.host}/lab/docker:latest`;
    await skopeoPush(`oci:${busyboxLayout}:busybox`, `docker://${dockerRef}`, { format: 'v2s2' });
    const remote = JSON.parse(await mustExec('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${dockerRef}`])) as { mediaType: string };
    assert.equal(remote.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
    const remoteDigest = (JSON.parse(await mustExec('skopeo', ['inspect', '--tls-verify=false', `docker://${dockerRef}`])) as { Digest: string }).Digest;

    const store = join(work.path, 'store-docker');
    const image = imageOf(await fetch([`docker://${dockerRef}`, '--tls-verify=false', '--store', store]));
    assert.equal(image.sourceDigest, remoteDigest);
    assert.equal(image.manifest.mediaType, 'application/vnd.oci.image.manifest.v1+json');
    for (const layer of image.layers) assert.equal(layer.mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
    const stored = JSON.parse(await readFile(join(store, 'blobs', 'sha256', image.digest.slice(7)), 'utf8')) as { config: { mediaType: string } };
    assert.equal(stored.config.mediaType, 'application/vnd.oci.image.config.v1+json');
    const bundle = join(work.path, 'umoci-docker');
    await mustExec('umoci', ['unpack', '--image', `${store}:${dockerRef}`, bundle]);
    assert.ok((await stat(join(bundle, 'rootfs', 'bin', 'busybox'))).isFile());

    const oci = imageOf(await fetch([`docker://${busyboxRef}`, '--tls-verify=false', '--store', store]));
    assert.equal(oci.manifest.mediaType, 'application/vnd.oci.image.manifest.v1+json');
    assert.equal(oci.digest, oci.sourceDigest);

    const dir = join(work.path, 'dir-docker');
    const inDir = imageOf(await fetch([`docker://${dockerRef}`, '--tls-verify=false', '--dir', dir]));
    assert.equal(inDir.layout, 'dir');
    const inspected = JSON.parse(await mustExec('skopeo', ['inspect', `dir:${dir}`])) as { Digest: string; Layers: string[] };
    assert.equal(inspected.Digest, remoteDigest);
    assert.deepEqual(inspected.Layers, inDir.layers.map((l) => l.digest));
    await mustExec('skopeo', ['copy', '-q', `dir:${dir}`, `oci:${join(work.path, 'from-dir')}:x`]);
  });

  test('a tampered blob: the pull fails naming the blob and leaves nothing in the store', async () => {
    const layout = join(work.path, 'tamper-layout');
    const { layers } = await writeRandomImage(layout, 'tamper', [200_000, 300_000]);
    await skopeoPush(`oci:${layout}:tamper`, `docker://${registry.host}/lab/tamper:latest`);
    const victim = layers[1]?.digest as string;
    const data = registryBlobData(registry.dir, victim);
    const handle = await open(data, 'r+');
    await handle.write(Buffer.from('tampered'), 0, 8, 1000);
    await handle.close();

    const store = join(work.path, 'store-tamper');
    imageOf(await fetch([`docker://${busyboxRef}`, '--tls-verify=false', '--store', store]));
    const before = await snapshotStore(store);
    const result = await fetch([`docker://${registry.host}/lab/tamper:latest`, '--tls-verify=false', '--store', store]);
    assertOneLineError(result, 'img-fetch', 1, new RegExp(victim));
    assert.deepEqual(await snapshotStore(store), before);

    const dir = join(work.path, 'dir-tamper');
    const toDir = await fetch([`docker://${registry.host}/lab/tamper:latest`, '--tls-verify=false', '--dir', dir]);
    assertOneLineError(toDir, 'img-fetch', 1, new RegExp(victim));
    assert.deepEqual(await snapshotStore(dir), { files: [], index: '' });
  });

  test('we read OCI layouts written by umoci and skopeo, a docker-archive written by skopeo, and --dir reads back in skopeo', async () => {
    const store = join(work.path, 'store-readers');
    const fromUmoci = imageOf(await fetch([`oci:${busyboxLayout}:busybox`, '--store', store]));
    // A bare tag is only unique inside its layout: the store qualifies it as podman names local images.
    assert.equal(fromUmoci.reference, `localhost/${basename(busyboxLayout)}:busybox`);
    assert.equal(fromUmoci.layers.length, 2);

    const skopeoLayout = join(work.path, 'skopeo-layout');
    await mustExec('skopeo', ['copy', '-q', '--src-tls-verify=false', `docker://${busyboxRef}`, `oci:${skopeoLayout}:bb`]);
    const fromSkopeo = imageOf(await fetch([`oci:${skopeoLayout}:bb`, '--store', store, '--name', 'lab/from-skopeo']));
    assert.equal(fromSkopeo.reference, 'lab/from-skopeo');
    assert.equal(fromSkopeo.digest, fromUmoci.digest);

    const archive = join(work.path, 'busybox.tar');
    await mustExec('skopeo', ['copy', '-q', '--src-tls-verify=false', `docker://${busyboxRef}`, `docker-archive:${archive}:lab/busybox:saved`]);
    const fromArchive = imageOf(await fetch([`docker-archive:${archive}`, '--store', store]));
    assert.equal(fromArchive.reference, 'docker.io/lab/busybox:saved');
    assert.deepEqual(fromArchive.layers.map((l) => l.diffID), fromUmoci.layers.map((l) => l.diffID));
    const bundle = join(work.path, 'umoci-archive');
    await mustExec('umoci', ['unpack', '--image', `${store}:docker.io/lab/busybox:saved`, bundle]);
    assert.ok((await stat(join(bundle, 'rootfs', 'bin', 'busybox'))).isFile());
    const named = imageOf(await fetch([`docker-archive:${archive}:lab/busybox:saved`, '--store', store]));
    assert.equal(named.digest, fromArchive.digest);

    const dir = join(work.path, 'dir-busybox');
    const inDir = imageOf(await fetch([`docker://${busyboxRef}`, '--tls-verify=false', '--dir', dir]));
    const inspected = JSON.parse(await mustExec('skopeo', ['inspect', `dir:${dir}`])) as { Digest: string };
    assert.equal(inspected.Digest, inDir.digest);

    const missing = await fetch([`oci:${skopeoLayout}:nope`, '--store', store]);
    assertOneLineError(missing, 'img-fetch', 1, /no image named "nope".*bb/);
    const notArchive = await fetch([`docker-archive:${join(busyboxLayout, 'index.json')}`, '--store', store]);
    assertOneLineError(notArchive, 'img-fetch', 1, /not a tar archive|docker save/);
  });

  test('the pipe: other sections pass through; malformed stdin is exit 2 with nothing on stdout', async () => {
    const store = join(work.path, 'store-pipe');
    const input = `${JSON.stringify({ documentVersion: 1, notes: { keep: ['me', 1] } })}\n`;
    const result = await fetch([`docker://${busyboxRef}`, '--tls-verify=false', '--store', store], { input });
    const doc = parseDocument(result.stdout);
    assert.deepEqual(doc.notes, { keep: ['me', 1] });
    assert.equal(result.stdout.split('\n').length, 2, 'one line');

    const bad = await fetch([`docker://${busyboxRef}`, '--tls-verify=false', '--store', join(work.path, 'store-bad')], { input: '{"documentVersion":1,"image":' });
    assertOneLineError(bad, 'img-fetch', 2, /input: truncated JSON/);
    assert.deepEqual(await snapshotStore(join(work.path, 'store-bad')), { files: [], index: '' });
    const wrong = await fetch([`docker://${busyboxRef}`, '--tls-verify=false', '--store', store], { input: '{"documentVersion":1,"image":{"reference":""}}' });
    assertOneLineError(wrong, 'img-fetch', 2, /^img-fetch: input\.image/);
  });

  test('progress: one line per layer event with --progress=plain, nothing in a pipe, a live display on a terminal', async () => {
    const plain = await fetch([`docker://${busyboxRef}`, '--tls-verify=false', '--store', join(work.path, 'store-progress'), '--progress=plain']);
    assert.equal(plain.status, 0);
    const lines = plain.stderr.trim().split('\n');
    assert.ok(lines.length >= 3, plain.stderr);
    for (const line of lines) assert.match(line, /^(config|layer) [0-9a-f]{12}: /);
    assert.ok(lines.some((l) => /^layer [0-9a-f]{12}: done/.test(l)), plain.stderr);

    const again = await fetch([`docker://${busyboxRef}`, '--tls-verify=false', '--store', join(work.path, 'store-progress'), '--progress=plain']);
    assert.ok(again.stderr.trim().split('\n').every((l) => /already in the store/.test(l)), again.stderr);

    const piped = await fetch([`docker://${busyboxRef}`, '--tls-verify=false', '--store', join(work.path, 'store-progress-2')]);
    assert.equal(piped.status, 0);
    assert.equal(piped.stderr, '');

    // `script` gives the command a terminal: the display redraws lines in place.
    const store = join(work.path, 'store-tty');
    const command = `node ${JSON.stringify(toolPath('img-fetch'))} docker://${busyboxRef} --tls-verify=false --store ${store} >/dev/null`;
    const tty = await exec('script', ['-qec', command, '/dev/null']);
    assert.equal(tty.status, 0, tty.stdout);
    assert.match(tty.stdout, /\x1b\[2K(config|layer) [0-9a-f]{12}/);
  });
});

describe('img-fetch when the network fails', () => {
  let registry: TestRegistry;
  let work: { path: string; cleanup: () => Promise<void> };
  let bigLayers: Array<{ digest: string; size: number }>;
  const bigLayout = () => join(work.path, 'big-layout');

  before(async () => {
    work = await tempDir('cp-fetch-net-');
    registry = await startRegistry();
    ({ layers: bigLayers } = await writeRandomImage(bigLayout(), 'big', [24 << 20, 1 << 20]));
    await skopeoPush(`oci:${bigLayout()}:big`, `docker://${registry.host}/lab/big:latest`);
  });
  after(async () => {
    await registry?.stop();
    await work?.cleanup();
  });

  const isBigLayer = (path: string) => path.endsWith(`/blobs/${bigLayers[0]?.digest}`);

  test('a download cut mid-body resumes with a Range request', async () => {
    const proxy = await startProxy(registry.port);
    try {
      proxy.faults.push({ match: (r) => r.method === 'GET' && isBigLayer(r.path) && !r.headers.range, times: 1, cutAfterBytes: 8 << 20 });
      const store = join(work.path, 'store-resume');
      const image = imageOf(await tool('img-fetch', [`docker://${proxy.host}/lab/big:latest`, '--tls-verify=false', '--store', store]));
      assert.equal(image.layers[0]?.digest, bigLayers[0]?.digest);
      const gets = proxy.requests.filter((r) => isBigLayer(r.path) && r.method === 'GET');
      assert.equal(gets.length, 2, JSON.stringify(gets));
      const range = /^bytes=(\d+)-$/.exec(gets[1]?.range ?? '');
      assert.ok(range && Number(range[1]) > 0, `second request resumes: ${gets[1]?.range}`);
      assert.equal(gets[1]?.status, 206);
      assert.deepEqual((await readdir(store)).sort(), ['blobs', 'index.json', 'oci-layout', 'sources'], 'the layout and the blobs\' source records, no temp files');
    } finally {
      await proxy.stop();
    }
  });

  test('429 with Retry-After: the client waits as told, then succeeds', async () => {
    const proxy = await startProxy(registry.port);
    try {
      proxy.faults.push({ match: (r) => r.method === 'GET' && /\/manifests\//.test(r.path), times: 1, tooManyRequests: { retryAfter: '1' } });
      const store = join(work.path, 'store-429');
      imageOf(await tool('img-fetch', [`docker://${proxy.host}/lab/big:latest`, '--tls-verify=false', '--store', store]));
      const manifests = proxy.requests.filter((r) => /\/manifests\//.test(r.path));
      assert.equal(manifests[0]?.status, 429);
      assert.ok((manifests[1]?.at ?? 0) - (manifests[0]?.at ?? 0) >= 950, 'waited for Retry-After');
    } finally {
      await proxy.stop();
    }
  });

  test('the registry stopped mid-download: a clean one-line failure that leaves nothing', async () => {
    const proxy = await startProxy(registry.port);
    const store = join(work.path, 'store-stopped');
    try {
      // A store with an image in it already, which must come through unchanged.
      const small = join(work.path, 'small-layout');
      await writeRandomImage(small, 'small', [4096]);
      imageOf(await tool('img-fetch', [`oci:${small}:small`, '--store', store]));
      const before = await snapshotStore(store);
      proxy.faults.push({ match: (r) => r.method === 'GET' && isBigLayer(r.path), times: 1, cutAfterBytes: 8 << 20, onCut: () => registry.kill() });
      const result = await tool('img-fetch', [`docker://${proxy.host}/lab/big:latest`, '--tls-verify=false', '--store', store, '--retries', '2']);
      assertOneLineError(result, 'img-fetch', 1, new RegExp(`${bigLayers[0]?.digest}|${proxy.host}`));
      const after = await snapshotStore(store);
      assert.deepEqual(after.files.filter((f) => !before.files.includes(f)), []);
      assert.equal(after.index, before.index);
    } finally {
      await proxy.stop();
    }
  });
});
