/**
 * img-push end to end: into Debian's docker-registry (skopeo, podman on a private root, and
 * img-fetch read what we push), an OCI layout, a docker archive (podman load) and dir:, and into a crafted
 * registry for what a real one does not do on demand (relative Locations, chunk minimums,
 * 413, a PATCH cut in the middle, 429, DENIED, a lying digest).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { assertOneLineError, exec, mustExec, tool, type ExecResult } from '../helpers/exec.js';
import { tempDir, toolPath } from '../helpers/paths.js';
import { pushBusybox, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { writeRandomImage } from '../helpers/images.js';
import { startProxy, type FaultProxy } from '../helpers/proxy.js';
import { startPushRegistry } from '../helpers/push-registry.js';
import { startTokenIssuer, TOKEN_ISSUER } from '../helpers/token-issuer.js';
import { privatePodman } from '../helpers/podman.js';
import { parseDocument } from '../../lib/cli/pipe.js';
import type { PushResult } from '../../lib/image/push.js';

function pushOf(result: ExecResult): PushResult {
  assert.equal(result.status, 0, `img-push failed: ${result.stderr}`);
  const push = parseDocument(result.stdout).push as PushResult | undefined;
  assert.ok(push, 'no push section');
  return push;
}

const skopeoDigest = async (ref: string) => (JSON.parse(await mustExec('skopeo', ['inspect', '--no-tags', '--tls-verify=false', ref])) as { Digest: string }).Digest;

describe('img-push', () => {
  let registry: TestRegistry;
  let work: { path: string; cleanup: () => Promise<void> };
  let store: string;
  let busyboxDoc: string;
  let randomDoc: string;
  let randomLayer: string;

  before(async () => {
    work = await tempDir('cp-push-');
    registry = await startRegistry();
    store = join(work.path, 'store');
    await pushBusybox(join(work.path, 'bb'), [`docker://${registry.host}/lab/busybox:latest`]);
    const fetched = await tool('img-fetch', [`docker://${registry.host}/lab/busybox:latest`, '--tls-verify=false', '--store', store]);
    assert.equal(fetched.status, 0, fetched.stderr);
    busyboxDoc = fetched.stdout;
    const layout = join(work.path, 'random');
    const random = await writeRandomImage(layout, 'r', [3 << 20]);
    randomLayer = (random.layers[0] as { digest: string }).digest;
    const fetchedRandom = await tool('img-fetch', [`oci:${layout}:r`, '--store', store]);
    assert.equal(fetchedRandom.status, 0, fetchedRandom.stderr);
    randomDoc = fetchedRandom.stdout;
  });
  after(async () => {
    await registry?.stop();
    await work?.cleanup();
  });

  const push = (args: string[], input?: string) => tool('img-push', [...args, '--store', store], { input });

  test('to another repository of the same registry: every blob mounted; skopeo and img-fetch see the digest pushed (and not another image\'s)', async () => {
    const pushed = pushOf(await push([`docker://${registry.host}/lab/copy:1`, '--tls-verify=false'], busyboxDoc));
    assert.equal(pushed.blobs.mounted.length, 3);
    assert.equal(pushed.blobs.sent.length, 0);
    assert.equal(pushed.digest, parseDocument(busyboxDoc).image?.digest);
    assert.equal(await skopeoDigest(`docker://${registry.host}/lab/copy:1`), pushed.digest);
    const again = await tool('img-fetch', [`docker://${registry.host}/lab/copy:1`, '--tls-verify=false', '--store', join(work.path, 'store-check')]);
    assert.equal(parseDocument(again.stdout).image?.digest, pushed.digest);
    // The negative twin: another image pushed beside it has another digest, as skopeo sees it too.
    const other = pushOf(await push([`docker://${registry.host}/lab/copy:2`, '--tls-verify=false'], randomDoc));
    assert.notEqual(await skopeoDigest(`docker://${registry.host}/lab/copy:2`), pushed.digest);
    assert.equal(await skopeoDigest(`docker://${registry.host}/lab/copy:2`), other.digest);
  });

  test('a committed image (localhost/...) pushed to the registry its base came from: the base layers are mounted, the new layer and config sent', async () => {
    const upper = join(work.path, 'upper-motd');
    await mkdir(join(upper, 'etc'), { recursive: true });
    await writeFile(join(upper, 'etc', 'motd'), 'hi\n');
    const base = parseDocument(busyboxDoc).image as { reference: string; layers: Array<{ digest: string }> };
    const committed = await tool('img-commit', ['--store', store, '--image', base.reference, '--upper', upper, '--name', 'localhost/lab/busybox-motd:1', '--timestamp', '0']);
    assert.equal(committed.status, 0, committed.stderr);
    const result = await tool('img-push', ['--store', store, '--image', 'localhost/lab/busybox-motd:1', `docker://${registry.host}/lab/busybox-motd:1`, '--tls-verify=false']);
    const pushed = pushOf(result);
    assert.deepEqual(pushed.blobs.mounted.sort(), base.layers.map((l) => l.digest).sort(), 'the base layers, mounted from lab/busybox');
    assert.equal(pushed.blobs.sent.length, 2, 'the new layer and the config');
    assert.match(result.stderr, /\d+ sent, 0 skipped, \d+ mounted/);
    assert.equal(await skopeoDigest(`docker://${registry.host}/lab/busybox-motd:1`), pushed.digest);
    // The negative twin: without the store's record of where the base layers came from, they are sent.
    await rm(join(store, 'sources'), { recursive: true, force: true });
    const unrecorded = pushOf(await tool('img-push', ['--store', store, '--image', 'localhost/lab/busybox-motd:1', `docker://${registry.host}/lab/busybox-motd2:1`, '--tls-verify=false']));
    assert.deepEqual([unrecorded.blobs.mounted.length, unrecorded.blobs.sent.length], [0, base.layers.length + 2]);
  });

  test('to an empty registry: sent, then skipped; podman pulls it with the same digest', async () => {
    const second = await startRegistry();
    try {
      const ref = `${second.host}/x/busybox:v1`;
      const first = pushOf(await push([`docker://${ref}`, '--tls-verify=false'], busyboxDoc));
      assert.equal(first.blobs.sent.length, 3);
      const repeat = pushOf(await push([`docker://${ref}`, '--tls-verify=false'], busyboxDoc));
      assert.deepEqual([repeat.blobs.sent.length, repeat.blobs.skipped.length], [0, 3]);
      const podman = await privatePodman(join(work.path, 'podman-pull'));
      await podman(['pull', '-q', '--tls-verify=false', ref]);
      const digest = (await podman(['image', 'inspect', '--format', '{{.Digest}}', ref])).trim();
      assert.equal(digest, first.digest);
      // The negative twin: a tag that was never pushed is not there for podman either.
      await assert.rejects(podman(['pull', '-q', '--tls-verify=false', `${second.host}/x/busybox:never`]));
    } finally {
      await second.stop();
    }
  });

  /** img-push of the random image through a proxy, killed while its second PATCH chunk is on its way (the registry never sees it). */
  async function killedPush(proxy: FaultProxy, repository: string): Promise<string[]> {
    const args = [`docker://${proxy.host}/${repository}`, '--tls-verify=false', '--store', store, '--chunk-size', String(1 << 20), '--image', 'localhost/random:r'];
    let killed = false;
    const child = spawn(process.execPath, [toolPath('img-push'), ...args], { stdio: 'ignore' });
    proxy.faults.push({ match: (r) => r.method === 'PATCH' && proxy.count(/\/blobs\/uploads\//, 'PATCH') >= 2, times: 1, hold: () => void (killed = child.kill('SIGKILL')) });
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    await new Promise((resolve) => child.on('close', resolve));
    clearTimeout(timer);
    assert.ok(killed, 'the push was killed in the middle of the layer');
    return args;
  }

  test('a push killed mid-blob resumes its upload session on the next run (docker-registry, chunks of 1 MiB)', async () => {
    const proxy = await startProxy(registry.port);
    try {
      const args = await killedPush(proxy, 'lab/resume:1');
      const resumed = pushOf(await tool('img-push', args));
      assert.deepEqual(resumed.blobs.resumed, [randomLayer]);
      assert.equal(await skopeoDigest(`docker://${registry.host}/lab/resume:1`), resumed.digest);
      assert.deepEqual(await readdir(join(store, 'uploads')).then(async (dirs) => (await Promise.all(dirs.map((d) => readdir(join(store, 'uploads', d))))).flat()), [], 'no record left');
    } finally {
      await proxy.stop();
    }
  });

  test('the negative twin of resuming: without the record, the killed push sends the blob again', async () => {
    const proxy = await startProxy(registry.port);
    try {
      const args = await killedPush(proxy, 'lab/noresume:1');
      await rm(join(store, 'uploads'), { recursive: true, force: true });
      const again = pushOf(await tool('img-push', args));
      assert.deepEqual(again.blobs.resumed, []);
      assert.ok(again.blobs.sent.includes(randomLayer));
      assert.equal(await skopeoDigest(`docker://${registry.host}/lab/noresume:1`), again.digest);
    } finally {
      await proxy.stop();
    }
  });

  test('a push does not take over the upload session of another push of the blob that is still running', async () => {
    const proxy = await startProxy(registry.port);
    const args = [`docker://${proxy.host}/lab/twice:1`, '--tls-verify=false', '--store', store, '--chunk-size', String(1 << 20), '--image', 'localhost/random:r'];
    const running = spawn(process.execPath, [toolPath('img-push'), ...args], { stdio: 'ignore' });
    const closed = new Promise((resolve) => running.on('close', resolve));
    const timer = setTimeout(() => running.kill('SIGKILL'), 120_000);
    try {
      // The first push stays alive, its second chunk held on the way: its record names it.
      const held = new Promise<string>((resolve) => proxy.faults.push({ match: (r) => r.method === 'PATCH' && proxy.count(/\/blobs\/uploads\//, 'PATCH') >= 2, times: 1, hold: () => resolve('held') }));
      // Never waits for ever: a push that ends before its second chunk fails the test.
      assert.equal(await Promise.race([held, closed.then(() => 'ended')]), 'held', 'the first push reached its second chunk');
      const other = pushOf(await tool('img-push', args));
      assert.deepEqual(other.blobs.resumed, [], 'the live push\'s session was left to it');
      assert.ok(other.blobs.sent.includes(randomLayer));
      assert.equal(await skopeoDigest(`docker://${registry.host}/lab/twice:1`), other.digest);
    } finally {
      running.kill('SIGKILL');
      await closed;
      clearTimeout(timer);
      await proxy.stop();
    }
  });

  test('oci:, dir: and docker-archive: destinations: skopeo reads them, podman loads the archive', async () => {
    const image = parseDocument(busyboxDoc).image;
    const oci = pushOf(await push([`oci:${join(work.path, 'out-oci')}:v1`], busyboxDoc));
    assert.equal(await skopeoDigest(`oci:${join(work.path, 'out-oci')}:v1`), oci.digest);
    const dir = pushOf(await push([`dir:${join(work.path, 'out-dir')}`], busyboxDoc));
    assert.equal(await skopeoDigest(`dir:${join(work.path, 'out-dir')}`), dir.digest);
    const archive = join(work.path, 'out.tar');
    pushOf(await push([`docker-archive:${archive}:localhost/cp-push-test:arch`], busyboxDoc));
    const podman = await privatePodman(join(work.path, 'podman-load'));
    await podman(['load', '-q', '-i', archive]);
    const id = (await podman(['image', 'inspect', '--format', '{{.Id}}', 'localhost/cp-push-test:arch'])).trim();
    assert.equal(`sha256:${id}`, image?.configDigest);
    // The negative twin: an archive of another image loads as another image.
    pushOf(await push([`docker-archive:${join(work.path, 'other.tar')}:localhost/cp-push-test:other`], randomDoc));
    await podman(['load', '-q', '-i', join(work.path, 'other.tar')]);
    const otherId = (await podman(['image', 'inspect', '--format', '{{.Id}}', 'localhost/cp-push-test:other'])).trim();
    assert.notEqual(otherId, id);
  });

  test('--image by a unique short id; an unknown one and a bad destination are one line', async () => {
    const image = parseDocument(busyboxDoc).image;
    const short = (image?.configDigest ?? '').slice(7, 19);
    const pushed = pushOf(await push(['--image', short, `oci:${join(work.path, 'by-id')}:v1`]));
    assert.equal(pushed.digest, image?.digest);
    assertOneLineError(await push(['--image', 'feedfacefeed', `oci:${join(work.path, 'nothing')}`]), 'img-push', 1, /no image named or with the id "feedfacefeed"/);
    assertOneLineError(await push(['--image', short, 'ftp://x']), 'img-push', 2, /say where to push/);
    assertOneLineError(await push([`oci:${join(work.path, 'nothing')}`]), 'img-push', 2, /no image: pipe in/);
    // By digest: the manifest goes under its digest; another digest is refused before anything is sent.
    const byDigest = pushOf(await push(['--image', short, `docker://${registry.host}/lab/pinned@${image?.digest}`, '--tls-verify=false']));
    assert.equal(await skopeoDigest(`docker://${registry.host}/lab/pinned@${image?.digest}`), byDigest.digest);
    assertOneLineError(await push(['--image', short, `docker://${registry.host}/lab/pinned@sha256:${'1'.repeat(64)}`, '--tls-verify=false']), 'img-push', 2, /not the digest the destination names/);
    // --explain prints the steps and sends nothing (nothing listens on port 9).
    const explained = await push(['--image', short, 'docker://127.0.0.1:9/x/y:1', '--tls-verify=false', '--explain']);
    assert.equal(explained.status, 0, explained.stderr);
    assert.match(explained.stdout, /skopeo copy --dest-tls-verify=false '?oci:\S+ '?docker:\/\/127\.0\.0\.1:9\/x\/y:1/);
  });

  test('registries.conf as for img-fetch: insecure = true needs no --tls-verify=false (skopeo agrees), blocked = true is refused in one line', async () => {
    const ref = `${registry.host}/lab/conf:1`;
    const env = { CONTAINERS_REGISTRIES_CONF: join(work.path, 'none.conf'), HOME: work.path };
    await writeFile(env.CONTAINERS_REGISTRIES_CONF, '');
    assertOneLineError(await tool('img-push', [`docker://${ref}`, '--store', store], { input: busyboxDoc, env }), 'img-push', 1, /does not speak HTTPS/);
    const insecure = join(work.path, 'insecure.conf');
    await writeFile(insecure, `[[registry]]\nlocation = "${registry.host}"\ninsecure = true\n`);
    const pushed = pushOf(await tool('img-push', [`docker://${ref}`, '--store', store, '--registries-conf', insecure], { input: busyboxDoc, env }));
    assert.equal((JSON.parse(await mustExec('skopeo', ['inspect', '--registries-conf', insecure, `docker://${ref}`])) as { Digest: string }).Digest, pushed.digest);
    assert.notEqual((await exec('skopeo', ['inspect', '--registries-conf', join(work.path, 'none.conf'), `docker://${ref}`], { env })).status, 0, 'the negative twin: skopeo too needs the file');
    const blocked = join(work.path, 'blocked.conf');
    await writeFile(blocked, `[[registry]]\nlocation = "${registry.host}/lab"\nblocked = true\n`);
    assertOneLineError(await tool('img-push', [`docker://${ref}`, '--store', store, '--registries-conf', blocked, '--tls-verify=false'], { input: busyboxDoc, env }), 'img-push', 1, /is blocked in/);
  });

  test('a token-auth registry: the token asked for is pull,push; without credentials the refusal is one line', async () => {
    const issuer = await startTokenIssuer(work.path, { user: 'lab:secret', anonymousPull: true, expiresInSeconds: 300 });
    const tokens = await startRegistry({ token: { realm: issuer.realm, issuer: TOKEN_ISSUER, certFile: issuer.certFile } });
    try {
      const ref = `${tokens.host}/lab/pushed:1`;
      const pushed = pushOf(await push([`docker://${ref}`, '--tls-verify=false', '--creds', 'lab:secret'], busyboxDoc));
      assert.ok(issuer.requests.some((r) => r.scope === 'repository:lab/pushed:pull,push' && r.user === 'lab'), JSON.stringify(issuer.requests));
      const inspected = JSON.parse(await mustExec('skopeo', ['inspect', '--tls-verify=false', '--creds', 'lab:secret', `docker://${ref}`])) as { Digest: string };
      assert.equal(inspected.Digest, pushed.digest);
      // An image from this registry to another repository: the token (pull,push on the destination) does not cover a mount from the source; it is uploaded.
      const fetched = await tool('img-fetch', [`docker://${ref}`, '--tls-verify=false', '--creds', 'lab:secret', '--store', store]);
      assert.equal(fetched.status, 0, fetched.stderr);
      const copied = pushOf(await push([`docker://${tokens.host}/lab/second:1`, '--tls-verify=false', '--creds', 'lab:secret'], fetched.stdout));
      assert.equal(copied.digest, pushed.digest);
      const anonymous = await push([`docker://${tokens.host}/lab/anonymous:1`, '--tls-verify=false'], busyboxDoc);
      assertOneLineError(anonymous, 'img-push', 1, /authentication required for upload of blob|access to upload of blob .* denied/);
    } finally {
      await tokens.stop();
      await issuer.stop();
    }
  });

  describe('to a crafted registry', () => {
    test('relative Locations, OCI-Chunk-Min-Length and the manifest last', async () => {
      const crafted = await startPushRegistry({ minChunk: 1 << 20 });
      try {
        const pushed = pushOf(await push([`docker://${crafted.host}/c/min:1`, '--tls-verify=false', '--chunk-size', String(256 << 10)], randomDoc));
        const patches = crafted.requests.filter((r) => r.method === 'PATCH');
        const size = crafted.blobs.get(randomLayer)?.length ?? 0;
        assert.deepEqual(patches.map((p) => p.bodyBytes), [1 << 20, 1 << 20, 1 << 20, size - (3 << 20)], 'chunks of the registry\'s minimum, not of --chunk-size');
        const posts = crafted.requests.filter((r) => r.method === 'POST');
        assert.equal(posts.length, pushed.blobs.sent.length, 'one upload session per blob: the chunked layer goes on the session its POST opened');
        assert.equal(crafted.requests[crafted.requests.length - 1]?.method, 'PUT');
        assert.match(crafted.requests[crafted.requests.length - 1]?.path ?? '', /\/manifests\/1$/);
        assert.equal(crafted.manifests.get('c/min:1')?.type, pushed.manifest.mediaType);
      } finally {
        await crafted.stop();
      }
    });

    test('a whole-blob PUT refused with 413 goes up in chunks; a PATCH cut in the middle resumes from the registry\'s offset', async () => {
      const crafted = await startPushRegistry({ maxPut: 1 << 10, cutPatchAfter: 100_000 });
      try {
        const pushed = pushOf(await push([`docker://${crafted.host}/c/cut:1`, '--tls-verify=false'], randomDoc));
        assert.deepEqual(pushed.blobs.resumed, [randomLayer], 'the broken upload went on, within the same run');
        assert.ok(crafted.blobs.has(randomLayer));
        const statusAsked = crafted.requests.filter((r) => r.method === 'GET' && /uploads\//.test(r.path));
        assert.equal(statusAsked.length, 1, 'the upload\'s status was asked once');
        const after = crafted.requests.filter((r) => r.method === 'PATCH' && r.contentRange?.startsWith('100000-'));
        assert.equal(after.length, 1, 'the rest was sent from byte 100000');
      } finally {
        await crafted.stop();
      }
    });

    test('DENIED, a lying Docker-Content-Digest: one line with what the registry said; 429 is retried', async () => {
      const crafted = await startPushRegistry({ tooMany: 2 });
      try {
        assertOneLineError(await push([`docker://${crafted.host}/denied/x:1`, '--tls-verify=false'], busyboxDoc), 'img-push', 1, /DENIED: requested access to the resource is denied/);
        crafted.options.tooMany = 2;
        pushOf(await push([`docker://${crafted.host}/c/slow:1`, '--tls-verify=false', '--jobs', '1'], busyboxDoc));
        assert.ok(crafted.requests.filter((r) => r.method === 'POST').length >= 5, 'two 429s, then three uploads');
        crafted.options.lyingDigest = `sha256:${'0'.repeat(64)}`;
        assertOneLineError(await push([`docker://${crafted.host}/c/lie:1`, '--tls-verify=false'], busyboxDoc), 'img-push', 1, /the registry stored sha256:0{64}/);
      } finally {
        await crafted.stop();
      }
    });
  });
});
