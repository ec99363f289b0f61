/**
 * RegistryPull's fallback rules, with small registries on 127.0.0.1 that each misbehave one
 * way: the top manifest from the first endpoint that has it; a blob from that endpoint first,
 * then the others in order; a blob whose download was stopped (the copy stops the others when
 * one fails) is not asked of another endpoint; a blocked endpoint gets no request.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { RegistryPull, type PlannedSource, type RegistryPlan } from '../../../lib/image/transport/registry-pull.js';
import { BlobWriter } from '../../../lib/image/store/blob-writer.js';
import { parseReference } from '../../../lib/image/reference.js';
import { RegistryError } from '../../../lib/core/errors.js';
import { tempDir } from '../../helpers/paths.js';

const blob = Buffer.from('the layer\n');
const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest, size: blob.length }, layers: [] }));

type Behaviour = 'serve' | 'missing' | 'hang';

interface FakeRegistry {
  host: string;
  requests: string[];
  manifest: Behaviour;
  blob: Behaviour;
  stop(): Promise<void>;
}

async function fakeRegistry(): Promise<FakeRegistry> {
  const fake = { requests: [] as string[], manifest: 'serve' as Behaviour, blob: 'serve' as Behaviour };
  const server: Server = createServer((req, res) => {
    fake.requests.push(req.url ?? '');
    const kind = /\/manifests\//.test(req.url ?? '') ? fake.manifest : /\/blobs\//.test(req.url ?? '') ? fake.blob : 'serve';
    if (kind === 'hang') return;
    if (kind === 'missing' || !/^\/v2\//.test(req.url ?? '')) return void res.writeHead(404, { 'Content-Length': 0 }).end();
    const body = /\/manifests\//.test(req.url ?? '') ? manifest : /\/blobs\//.test(req.url ?? '') ? blob : Buffer.from('{}');
    res.writeHead(200, { 'Content-Type': /\/manifests\//.test(req.url ?? '') ? 'application/vnd.oci.image.manifest.v1+json' : 'application/octet-stream', 'Content-Length': body.length }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return Object.assign(fake, {
    host: `127.0.0.1:${port}`,
    stop: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  });
}

describe('RegistryPull: which endpoint is asked, and when the next one is', () => {
  let work: { path: string; cleanup: () => Promise<void> };
  let mirror: FakeRegistry;
  let location: FakeRegistry;
  before(async () => {
    work = await tempDir('cp-fallback-');
    mirror = await fakeRegistry();
    location = await fakeRegistry();
  });
  after(async () => {
    await mirror?.stop();
    await location?.stop();
    await work?.cleanup();
  });

  const source = (host: string, role: 'mirror' | 'location', blocked?: string): PlannedSource => ({ reference: parseReference(`${host}/lab/x:latest`), insecure: true, role, tlsVerify: false, insecureBecause: 'test', certs: { caFiles: [], ca: [] }, ...(blocked ? { blocked } : {}) });
  const plan = (sources: PlannedSource[]): RegistryPlan => ({ candidates: [{ reference: parseReference(`${location.host}/lab/x:latest`), sources }], files: [] });
  let writers = 0;
  const writer = () => new BlobWriter({ digest, size: blob.length }, join(work.path, `part-${++writers}`), join(work.path, `blob-${writers}`));
  const reset = (m: Behaviour, b: Behaviour) => {
    mirror.requests.length = 0;
    location.requests.length = 0;
    [mirror.manifest, mirror.blob] = [m, b];
    [location.manifest, location.blob] = ['serve', 'serve'];
  };

  test('a mirror without the blob: the location serves it, verified, after the mirror served the manifest', async () => {
    reset('serve', 'missing');
    const pull = new RegistryPull(plan([source(mirror.host, 'mirror'), source(location.host, 'location')]), { retries: 0 });
    try {
      await pull.topManifest(['application/vnd.oci.image.manifest.v1+json']);
      const w = writer();
      await pull.blob(digest, w);
      await w.commit();
      assert.deepEqual(await readFile(join(work.path, `blob-${writers}`)), blob);
      assert.ok(mirror.requests.some((r) => r.includes('/blobs/')) && location.requests.some((r) => r.includes('/blobs/')));
      assert.ok(!location.requests.some((r) => r.includes('/manifests/')), 'the manifest came from the mirror');
    } finally {
      pull.close();
    }
  });

  test('a download that was stopped is not asked of the next endpoint', async () => {
    reset('serve', 'hang');
    const pull = new RegistryPull(plan([source(mirror.host, 'mirror'), source(location.host, 'location')]), { retries: 0 });
    try {
      await pull.topManifest(['application/vnd.oci.image.manifest.v1+json']);
      const stop = new AbortController();
      const download = pull.blob(digest, writer(), { signal: stop.signal });
      while (!mirror.requests.some((r) => r.includes('/blobs/'))) await new Promise((resolve) => setTimeout(resolve, 10));
      const reason = new Error('another blob failed');
      stop.abort(reason);
      await assert.rejects(download, (err: Error) => err === reason && err.message === 'another blob failed', 'the stop, as it was (no other endpoint tried)');
      assert.ok(!location.requests.some((r) => r.includes('/blobs/')), 'no fallback after a stop');
    } finally {
      pull.close();
    }
  });

  test('a blocked endpoint gets no request; the error of the last endpoint comes first, the others after it', async () => {
    reset('missing', 'serve');
    const pull = new RegistryPull(plan([source(mirror.host, 'mirror'), source(location.host, 'location', `${location.host}/lab/x:latest: registry "${location.host}" is blocked in /c`)]), { retries: 0 });
    try {
      await assert.rejects(pull.topManifest(['application/vnd.oci.image.manifest.v1+json']), (err: Error) => err instanceof RegistryError && err.message.startsWith(`${location.host}/lab/x:latest: registry "${location.host}" is blocked in /c (also tried: ${mirror.host}/lab/x:latest: `) && err.message.includes('not found'));
      assert.deepEqual(location.requests, []);
    } finally {
      pull.close();
    }
  });
});
