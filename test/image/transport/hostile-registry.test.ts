/**
 * img-fetch against a crafted registry (test/helpers/crafted-registry.ts) that lies, stalls,
 * floods and sends malformed documents, one repository per misbehaviour. Each failure is exit
 * 1, one line on stderr naming the problem, nothing on stdout, and the store as it was; the
 * honest twins of the hostile cases (a sha512 index entry, a resumed download) succeed.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { assertOneLineError, exec, tool } from '../../helpers/exec.js';
import { tempDir, toolPath } from '../../helpers/paths.js';
import { snapshotStore } from '../../helpers/store-snapshot.js';
import { craftImage, cutAfter, indexOf, json, sha512, startCraftedRegistry, writeForever, type CraftedCase, type CraftedRegistry } from '../../helpers/crafted-registry.js';
import { MEDIA_TYPES } from '../../../lib/image/model.js';

const MiB = 1 << 20;
/** The image an index entry names but the registry does not serve (it serves its own instead). */
const elsewhere = craftImage();

const cases: Record<string, CraftedCase> = {
  'lying-layer': (c) => (c.kind === 'blobs' && c.reference === c.image.layerDigest ? void c.res.writeHead(200, { 'Content-Length': c.image.layer.length }).end(Buffer.alloc(c.image.layer.length, 1)) : 'honest'),
  'pinned-lie': (c) => (c.kind === 'manifests' ? void c.res.writeHead(200, { 'Content-Type': MEDIA_TYPES.ociManifest }).end(elsewhere.manifest) : 'honest'),
  // An index entry names a manifest by sha512; the registry swaps in another (its own image).
  'index-sha512-swapped': (c) => {
    if (c.kind !== 'manifests') return 'honest';
    if (c.reference === 'latest') return void c.res.writeHead(200, { 'Content-Type': MEDIA_TYPES.ociIndex }).end(indexOf({ digest: sha512(elsewhere.manifest), size: elsewhere.manifest.length }));
    c.res.writeHead(200, { 'Content-Type': MEDIA_TYPES.ociManifest }).end(c.image.manifest);

    return undefined;
  },
  'index-sha512': (c) => {
    if (c.kind !== 'manifests') return 'honest';
    if (c.reference === 'latest') return void c.res.writeHead(200, { 'Content-Type': MEDIA_TYPES.ociIndex }).end(indexOf({ digest: sha512(c.image.manifest), size: c.image.manifest.length }));
    if (c.reference !== sha512(c.image.manifest)) return void c.res.writeHead(404).end();
    c.res.writeHead(200, { 'Content-Type': MEDIA_TYPES.ociManifest }).end(c.image.manifest);

    return undefined;
  },
  'index-tag': (c) => (c.kind === 'manifests' && c.reference === 'latest' ? void c.res.writeHead(200, { 'Content-Type': MEDIA_TYPES.ociIndex }).end(indexOf({ digest: 'v1', size: c.image.manifest.length })) : c.reference === 'v1' ? void c.res.writeHead(200, { 'Content-Type': MEDIA_TYPES.ociManifest }).end(c.image.manifest) : 'honest'),
  // `..` in a digest would walk the URL over to another repository (case/ok's manifest).
  'index-traversal': (c) => (c.kind === 'manifests' ? void c.res.writeHead(200, { 'Content-Type': MEDIA_TYPES.ociIndex }).end(indexOf({ digest: 'sha512:../../../../ok/manifests/latest', size: 500 })) : 'honest'),
  'index-null-entry': (c) => (c.kind === 'manifests' ? void c.res.writeHead(200, { 'Content-Type': MEDIA_TYPES.ociIndex }).end(json({ schemaVersion: 2, manifests: [null] })) : 'honest'),
  'endless-404': (c) => (c.kind === 'manifests' ? writeForever(c.res.writeHead(404, { 'Content-Type': 'text/html' }), Buffer.alloc(64 << 10, 'x')) : 'honest'),
  'endless-redirect-body': (c) => (c.kind === 'blobs' && c.seen === 0 ? writeForever(c.res.writeHead(307, { Location: c.req.url as string }), Buffer.alloc(64 << 10, 'x')) : 'honest'),
  'drip-headers': (c) => {
    if (c.kind !== 'manifests') return 'honest';
    const socket = c.req.socket;
    socket.write('HTTP/1.1 200 OK\r\n');
    const drip = setInterval(() => socket.write('X-Drip: y\r\n'), 100);
    socket.on('close', () => clearInterval(drip));

    return undefined;
  },
  'quiet-body': (c) => (c.kind === 'blobs' && c.reference === c.image.layerDigest ? void c.res.writeHead(200, { 'Content-Length': c.image.layer.length }).write(c.image.layer.subarray(0, 1000)) : 'honest'),
  'short-blob': (c) => (c.kind === 'blobs' && c.reference === c.image.layerDigest ? void c.res.writeHead(200, { 'Content-Length': c.image.layer.length - 1000 }).end(c.image.layer.subarray(1000)) : 'honest'),
  'short-chunked': (c) => (c.kind === 'blobs' && c.reference === c.image.layerDigest ? void c.res.writeHead(200, { 'Transfer-Encoding': 'chunked' }).end(c.image.layer.subarray(1000)) : 'honest'),
  'endless-blob': (c) => (c.kind === 'blobs' && c.reference === c.image.layerDigest ? writeForever(c.res.writeHead(200), Buffer.alloc(MiB, 7)) : 'honest'),
  'endless-config': (c) => (c.kind === 'blobs' && c.reference === c.image.configDigest ? writeForever(c.res.writeHead(200), Buffer.alloc(MiB, 32)) : 'honest'),
  'huge-manifest': (c) => (c.kind === 'manifests' ? writeForever(c.res.writeHead(200, { 'Content-Type': MEDIA_TYPES.ociManifest }), Buffer.alloc(MiB, 32)) : 'honest'),
  'range-wrong-start': (c) => {
    if (c.kind !== 'blobs' || c.reference !== c.image.layerDigest) return 'honest';
    if (c.seen === 0) return cutAfter(c.res, c.image.layer, 128 << 10);
    const { length } = c.image.layer;
    c.res.writeHead(206, { 'Content-Length': length, 'Content-Range': `bytes 0-${length - 1}/${length}` }).end(c.image.layer);
  },
  'range-ignored': (c) => (c.kind === 'blobs' && c.reference === c.image.layerDigest && c.seen === 0 ? cutAfter(c.res, c.image.layer, 128 << 10) : 'honest'),
  'range-416': (c) => {
    if (c.kind !== 'blobs' || c.reference !== c.image.layerDigest || c.seen > 1) return 'honest';
    if (c.seen === 0) return cutAfter(c.res, c.image.layer, 128 << 10);
    c.res.writeHead(416, { 'Content-Range': `bytes */${c.image.layer.length}` }).end();
  },
  // Every response breaks 32 KiB further on: more breaks than --retries, but each one got further.
  'breaks-with-progress': (c) => {
    if (c.kind !== 'blobs' || c.reference !== c.image.layerDigest) return 'honest';
    const from = Number(/^bytes=(\d+)-$/.exec(c.req.headers.range ?? '')?.[1] ?? 0);
    const rest = c.image.layer.subarray(from);
    if (rest.length <= 32 << 10) return 'honest';
    cutAfter(c.res, rest, 32 << 10, from ? 206 : 200, from ? { 'Content-Range': `bytes ${from}-${c.image.layer.length - 1}/${c.image.layer.length}` } : {});

    return undefined;
  },
  'unavailable-then-ok': (c) => (c.kind === 'manifests' && c.seen < 2 ? void c.res.writeHead(503, { 'Retry-After': '0' }).end('busy') : 'honest'),
  'server-error': (c) => (c.kind === 'manifests' ? void c.res.writeHead(500).end('oops') : 'honest'),
};

const images = {
  'huge-config': craftImage(1024, { manifest: (m) => ((m.config as { size: number }).size = 300 * MiB) }),
  'null-layer': craftImage(1024, { manifest: (m) => (m.layers = [null]) }),
  'layer-no-mediatype': craftImage(1024, { manifest: (m) => delete (m.layers as Array<Record<string, unknown>>)[0]?.mediaType }),
  'sha512-layer': craftImage(1024, { manifest: (m) => ((m.layers as Array<Record<string, unknown>>)[0] as { digest: string }).digest = `sha512:${'a'.repeat(128)}` }),
  'config-bad-rootfs': craftImage(1024, { config: (c) => (c.rootfs = null) }),
  'config-null-env': craftImage(1024, { config: (c) => (c.config = { Env: [null] }) }),
};
for (const name of Object.keys(images)) cases[name] = () => 'honest';

describe('img-fetch against a crafted registry', () => {
  let registry: CraftedRegistry;
  let work: { path: string; cleanup: () => Promise<void> };
  let store: string;

  before(async () => {
    work = await tempDir('cp-hostile-');
    store = join(work.path, 'store');
    registry = await startCraftedRegistry({ cases, images });
    const honest = await fetch('ok');
    assert.equal(honest.status, 0, honest.stderr);
  });
  after(async () => {
    await registry?.stop();
    await work?.cleanup();
  });

  const fetch = (name: string, args: string[] = [], reference = ':latest') => tool('img-fetch', [`docker://${registry.host}/case/${name}${reference}`, '--tls-verify=false', '--store', store, ...(args.includes('--retries') ? [] : ['--retries', '1']), ...args], { timeoutMs: 60_000 });

  /** Exit 1, one line matching `pattern`, nothing on stdout, and the store as it was. */
  async function refused(name: string, pattern: RegExp, args: string[] = [], reference?: string): Promise<void> {
    const before = await snapshotStore(store);
    const result = await fetch(name, args, reference);
    assertOneLineError(result, 'img-fetch', 1, pattern);
    assert.deepEqual(await snapshotStore(store), before, `${name}: the store changed`);
  }

  test('content that does not match its digest: a layer, a digest-pinned manifest', async () => {
    await refused('lying-layer', /blob sha256:[0-9a-f]{64}: content has digest sha256:/);
    await refused('pinned-lie', /manifest case\/pinned-lie@sha256:[0-9a-f]{64}: content has digest sha256:/, [], `@${registry.imageOf('pinned-lie').manifestDigest}`);
  });

  test('an index entry is verified whatever its algorithm: a swapped sha512 manifest is refused, an honest one is pulled', async () => {
    await refused('index-sha512-swapped', /manifest case\/index-sha512-swapped@sha512:[0-9a-f]{128}: content has digest sha512:[0-9a-f]{128}$/m);
    const honest = await fetch('index-sha512');
    assert.equal(honest.status, 0, honest.stderr);
    assert.equal(JSON.parse(honest.stdout).image.digest, registry.imageOf('index-sha512').manifestDigest);
  });

  test('an index entry that is not a digest (a tag, a path, null) is refused before any request for it', async () => {
    await refused('index-tag', /manifests\[0\]\.digest: "v1" is not a digest/);
    await refused('index-null-entry', /manifests\[0\] must be an object, got null/);
    const okBefore = registry.requestsOf('ok').length;
    await refused('index-traversal', /manifests\[0\]\.digest: "sha512:\.\.\/\.\.\/\.\.\/\.\.\/ok\/manifests\/latest" is not a digest/);
    assert.deepEqual(registry.requestsOf('index-traversal').map((r) => r.reference), ['latest']);
    assert.equal(registry.requestsOf('ok').length, okBefore, 'no request reached another repository');
    assert.ok(registry.requests.every((r) => r.repository !== ''), JSON.stringify(registry.requests.filter((r) => r.repository === '')));
  });

  test('malformed manifests and configs name the field (a layer without mediaType, null, sha512 blobs, a bad rootfs)', async () => {
    await refused('null-layer', /case\/null-layer:latest: layers\[0\] must be an object, got null/);
    await refused('layer-no-mediatype', /layers\[0\]\.mediaType is missing/);
    await refused('sha512-layer', /layers\[0\]\.digest is sha512: only sha256 blobs can be stored/);
    await refused('config-bad-rootfs', /config sha256:[0-9a-f]{64}: rootfs must be an object, got null/);
    await refused('config-null-env', /config sha256:[0-9a-f]{64}: config\.Env\[0\] must be a string, got null/);
  });

  test('caps: a config the manifest says is 300 MB, an endless manifest, config or layer', async () => {
    await refused('huge-config', /config\.size is 314572800 bytes, more than the 4 MiB allowed/);
    await refused('huge-manifest', /manifest case\/huge-manifest:latest is more than the 4194304 bytes allowed/);
    await refused('endless-config', /blob sha256:[0-9a-f]{64}: more than the expected \d+ bytes/);
    await refused('endless-blob', /blob sha256:[0-9a-f]{64}: more than the expected 262144 bytes/);
  });

  test('peak RSS stays under 150 MB whatever the registry sends', async () => {
    for (const name of ['huge-manifest', 'endless-config', 'endless-blob', 'endless-404']) {
      const rss = join(work.path, `${name}.rss`);
      const result = await exec('/usr/bin/time', ['-f', '%M', '-o', rss, process.execPath, toolPath('img-fetch'), `docker://${registry.host}/case/${name}:latest`, '--tls-verify=false', '--store', store, '--retries', '0'], { timeoutMs: 60_000 });
      assert.equal(result.status, 1, result.stderr);
      const kib = Number((await readFile(rss, 'utf8')).trim().split('\n').pop());
      assert.ok(kib > 0 && kib < 150 * 1024, `${name}: peak RSS ${kib} KiB`);
    }
  });

  test('an endless error or redirect body is not read to its end', async () => {
    await refused('endless-404', /manifest case\/endless-404:latest not found/);
    const before = await snapshotStore(store);
    const redirected = await fetch('endless-redirect-body');
    assert.equal(redirected.status, 0, redirected.stderr);
    assert.notDeepEqual(await snapshotStore(store), before);
  });

  test('--timeout bounds the whole command: drip-fed headers, a body that goes quiet', async () => {
    await refused('drip-headers', /^img-fetch: timed out after 2 s \(--timeout\)$/m, ['--timeout', '2s']);
    await refused('quiet-body', /^img-fetch: timed out after 1500 ms \(--timeout\)$/m, ['--timeout', '1.5s']);
    assertOneLineError(await fetch('ok', ['--timeout', 'soon']), 'img-fetch', 2, /--timeout: want a duration like 90s, 5m or 1h30m, got "soon"/);
  });

  test('a complete response of the wrong size is a size mismatch at once, not a retried break', async () => {
    await refused('short-blob', /the registry sends 261144 bytes, the descriptor says 262144/, ['--retries', '4']);
    assert.equal(registry.requestsOf('short-blob').filter((r) => r.kind === 'blobs' && r.reference === registry.imageOf('short-blob').layerDigest).length, 1);
    await refused('short-chunked', /the registry sent 261144 bytes, the descriptor says 262144/, ['--retries', '4']);
    assert.equal(registry.requestsOf('short-chunked').filter((r) => r.kind === 'blobs' && r.reference === registry.imageOf('short-chunked').layerDigest).length, 1);
  });

  test('Range: a 206 from the wrong byte is an error; a 200 or a 416 to a resume starts over', async () => {
    await refused('range-wrong-start', /blob sha256:[0-9a-f]{64}: asked for the bytes from 131072, got "bytes 0-262143\/262144"/);
    for (const name of ['range-ignored', 'range-416']) {
      const result = await fetch(name);
      assert.equal(result.status, 0, `${name}: ${result.stderr}`);
      const layer = registry.requestsOf(name).filter((r) => r.kind === 'blobs' && r.reference === registry.imageOf(name).layerDigest);
      assert.deepEqual(layer.map((r) => r.range), name === 'range-ignored' ? [undefined, 'bytes=131072-'] : [undefined, 'bytes=131072-', undefined]);
    }
  });

  test('the retry budget starts again when a try got further', async () => {
    const result = await fetch('breaks-with-progress', ['--retries', '1']);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(registry.requestsOf('breaks-with-progress').filter((r) => r.kind === 'blobs' && r.reference === registry.imageOf('breaks-with-progress').layerDigest).length, 8);
  });

  test('5xx: retried (Retry-After honoured), then one line naming the status', async () => {
    const result = await fetch('unavailable-then-ok', ['--retries', '2']);
    assert.equal(result.status, 0, result.stderr);
    await refused('server-error', /manifest case\/server-error:latest: HTTP 500 \(server error, still failing after retries\)/);
    assert.equal(registry.requestsOf('server-error').length, 2);
  });
});
