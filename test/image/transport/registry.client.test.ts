/**
 * The registry client in process against a scripted server on 127.0.0.1 (each test says how it
 * answers): manifests by tag, digest and descriptor (verified, capped, typed), the auth the
 * registry asks for (Basic, Bearer with a token per repository), which statuses and failures
 * are retried and how often, and blob downloads that resume with Range, start over, or fail in
 * one line. registry.test.ts has the real docker-registry with a token issuer.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { digestOf } from '../../../lib/core/digest.js';
import { AuthError, DigestMismatchError, NotFoundError, RegistryError, UnsupportedError, UsageError } from '../../../lib/core/errors.js';
import { BlobWriter } from '../../../lib/image/store/blob-writer.js';
import { Registry, type RegistryOptions } from '../../../lib/image/transport/registry.js';
import { MEDIA_TYPES } from '../../../lib/image/model.js';
import { start } from '../../helpers/loopback.js';
import { tempDir } from '../../helpers/paths.js';
import { sha512 } from '../../helpers/crafted-registry.js';

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
}

type Handler = (req: IncomingMessage, res: ServerResponse, n: number) => void;

/** A server whose answers `handler` gives (n: how many requests came before), and a client of it. */
async function scripted(t: TestContext, handler: Handler, options: Partial<RegistryOptions> = {}): Promise<{ client: Registry; seen: Seen[]; host: string; url: string }> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    handler(req, res, seen.length - 1);
  });
  const { url } = await start(t, server);
  const host = url.replace('http://', '');
  const client = new Registry(host, { tlsVerify: false, backoffMs: 1, retries: 2, ...options });
  t.after(() => client.close());
  // The scheme probe (https first) is not counted.
  return { client, seen, host, url };
}

/** Requests other than the client's https probe (which a plain server sees as garbage and never records). */
const api = (seen: Seen[]) => seen.filter((s) => s.url.startsWith('/v2/') && s.url !== '/v2/');

const send = (res: ServerResponse, status: number, body: string | Buffer = '', headers: Record<string, string | number> = {}) =>
  res.writeHead(status, { 'Content-Length': Buffer.byteLength(body), ...headers }).end(body);

const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociManifest, config: {}, layers: [] }));
const ACCEPT = [MEDIA_TYPES.ociManifest, MEDIA_TYPES.ociIndex];
const oneLine = (e: unknown) => e instanceof Error && !e.message.includes('\n');

test('--retries must be a whole number, 0 or more', () => {
  for (const retries of [Number.NaN, -1, 1.5, ['1', '2'] as unknown as number]) {
    assert.throws(() => new Registry('127.0.0.1:1', { tlsVerify: false, retries }), (e: unknown) => e instanceof UsageError && e.message.startsWith('--retries: want a whole number, 0 or more, got '));
  }
  assert.equal(new Registry('docker.io', { tlsVerify: true }).host, 'registry-1.docker.io');
  assert.equal(new Registry('127.0.0.1:1', { tlsVerify: true, retries: 0 }).host, '127.0.0.1:1');
});

test('a manifest by tag: the Accept list and User-Agent are sent, the Content-Type without parameters is its type, the digest is of the body', async (t) => {
  const { client, seen } = await scripted(t, (_req, res) => send(res, 200, manifest, { 'Content-Type': `${MEDIA_TYPES.ociManifest} ; charset=utf-8` }));
  const got = await client.manifest('lab/x', 'v1.0', ACCEPT);
  assert.deepEqual(got, { mediaType: MEDIA_TYPES.ociManifest, digest: digestOf(manifest), body: manifest });
  const [request] = api(seen);
  assert.equal(request?.url, '/v2/lab/x/manifests/v1.0');
  assert.equal(request?.headers.accept, ACCEPT.join(', '));
  assert.equal(request?.headers['user-agent'], 'container-parts');
  assert.equal(request?.headers.authorization, undefined);
});

test('a manifest without a Content-Type: its type is read from the body', async (t) => {
  const bodies: Array<[unknown, string]> = [
    [{ mediaType: 'application/vnd.docker.distribution.manifest.v2+json' }, 'application/vnd.docker.distribution.manifest.v2+json'],
    [{ schemaVersion: 1 }, 'application/vnd.docker.distribution.manifest.v1+json'],
    [{ schemaVersion: 2, manifests: [] }, MEDIA_TYPES.ociIndex],
    [{ schemaVersion: 2, layers: [] }, MEDIA_TYPES.ociManifest],
    ['not json', 'application/octet-stream'],
  ];
  const { client } = await scripted(t, (_req, res, n) => send(res, 200, typeof bodies[n]?.[0] === 'string' ? (bodies[n]?.[0] as string) : JSON.stringify(bodies[n]?.[0])));
  for (const [, type] of bodies) assert.equal((await client.manifest('lab/x', 'latest', ACCEPT)).mediaType, type);
});

test('a manifest by digest is verified with its algorithm; a descriptor\'s size too; neither a tag nor a digest is refused before any request', async (t) => {
  const lie = Buffer.from(`${manifest.toString()} `);
  const { client, seen, host } = await scripted(t, (req, res) => send(res, 200, req.url?.endsWith('lie') || req.url?.includes(digestOf(lie).slice(7, 20)) ? lie : manifest, { 'Content-Type': MEDIA_TYPES.ociManifest }));
  assert.equal((await client.manifest('lab/x', digestOf(manifest), ACCEPT)).digest, digestOf(manifest));
  const long = sha512(manifest);
  const bySha512 = await client.manifest('lab/x', { digest: long, size: manifest.length }, ACCEPT);
  assert.equal(bySha512.digest, digestOf(manifest), 'named by its sha256 in the store');
  assert.ok(api(seen).some((s) => s.url === `/v2/lab/x/manifests/${long}`));
  await assert.rejects(client.manifest('lab/x', { digest: digestOf(manifest), size: manifest.length + 1 }, ACCEPT), (e: unknown) => e instanceof DigestMismatchError && e.message === `${host}: manifest lab/x@${digestOf(manifest)}: ${manifest.length} bytes, the index says ${manifest.length + 1}`);
  const other = digestOf(Buffer.from('other'));
  await assert.rejects(client.manifest('lab/x', other, ACCEPT), (e: unknown) => e instanceof DigestMismatchError && e.message.startsWith(`${host}: manifest lab/x@${other}`));
  const before = api(seen).length;
  await assert.rejects(client.manifest('lab/x', 'bad tag!', ACCEPT), (e: unknown) => e instanceof UnsupportedError && e.message === `${host}: "bad tag!" is neither a tag nor a digest`);
  await assert.rejects(client.manifest('lab/x', 'sha256:abc', ACCEPT), (e: unknown) => e instanceof UnsupportedError && e.message.startsWith(`${host}: manifest of lab/x: "sha256:abc" is not `));
  await assert.rejects(client.manifest('lab/x', { digest: digestOf(manifest), size: (4 << 20) + 1 }, ACCEPT), (e: unknown) => e instanceof UnsupportedError && e.message === `${host}: manifest lab/x@${digestOf(manifest)} is ${(4 << 20) + 1} bytes, more than the 4.0 MiB a manifest may have`);
  await assert.rejects(client.request('Lab/X', 'manifests/latest', { what: 'x' }), (e: unknown) => e instanceof UnsupportedError && e.message === `${host}: invalid repository name "Lab/X"`);
  assert.equal(api(seen).length, before, 'no request for any of these');
  await assert.rejects(client.manifest('lab/x', { digest: digestOf(manifest), size: 4 << 20 }, ACCEPT), (e: unknown) => e instanceof DigestMismatchError && / the index says 4194304$/.test(e.message), 'a size of exactly the cap is asked for');
});

test('a manifest larger than the cap is refused, by its Content-Length or as it comes', async (t) => {
  const big = Buffer.alloc((4 << 20) + 1, 0x20);
  const { client, host } = await scripted(t, (req, res) => {
    if (req.url?.endsWith('/declared')) send(res, 200, big);
    else res.writeHead(200, { 'Transfer-Encoding': 'chunked' }).end(big);
  });
  await assert.rejects(client.manifest('lab/x', 'declared', ACCEPT), (e: unknown) => e instanceof UnsupportedError && e.message === `${host}: manifest lab/x:declared is ${big.length} bytes, more than the 4.0 MiB a manifest may have`);
  await assert.rejects(client.manifest('lab/x', 'streamed', ACCEPT), (e: unknown) => e instanceof UnsupportedError && e.message === `${host}: manifest lab/x:streamed is more than the 4.0 MiB a manifest may have`);
});

test('statuses: 404 and 403 at once, 5xx that mean "not now" retried with backoff up to --retries, 501 never, Retry-After obeyed', async (t) => {
  const plan: Record<string, number[]> = { multiple: [300], nf: [404], forbidden: [403], flaky: [503, 502, 200], down: [500, 500, 500, 500], never: [501, 200], busy: [429, 408, 200], slow: [504, 200] };
  const { client, seen, host } = await scripted(t, (req, res) => {
    const name = /manifests\/(\w+)/.exec(req.url ?? '')?.[1] ?? '';
    const n = api(seen).filter((s) => s.url === req.url).length - 1;
    const status = plan[name]?.[n] ?? plan[name]?.at(-1) ?? 599;
    if (status === 200) send(res, 200, manifest);
    else send(res, status, '{"errors":[{"code":"X","message":"said why"}]}', name === 'busy' ? { 'Retry-After': '0' } : {});
  });
  const count = (name: string) => api(seen).filter((s) => s.url.endsWith(`/${name}`)).length;
  await assert.rejects(client.manifest('lab/x', 'nf', ACCEPT), (e: unknown) => e instanceof NotFoundError && e.message === `${host}: manifest lab/x:nf not found`);
  await assert.rejects(client.manifest('lab/x', 'multiple', ACCEPT), (e: unknown) => e instanceof RegistryError && e.status === 300 && e.message === `${host}: manifest lab/x:multiple: HTTP 300`);
  await assert.rejects(client.manifest('lab/x', 'forbidden', ACCEPT), (e: unknown) => e instanceof AuthError && e.message === `${host}: access to manifest lab/x:forbidden denied`);
  assert.equal(count('nf') + count('forbidden'), 2, 'not retried');
  assert.equal((await client.manifest('lab/x', 'flaky', ACCEPT)).body.length, manifest.length);
  assert.equal(count('flaky'), 3);
  await assert.rejects(client.manifest('lab/x', 'down', ACCEPT), (e: unknown) => e instanceof RegistryError && e.status === 500 && e.message === `${host}: manifest lab/x:down: HTTP 500 (server error, still failing after retries)`);
  assert.equal(count('down'), 3, 'one try and two retries');
  await assert.rejects(client.manifest('lab/x', 'never', ACCEPT), (e: unknown) => e instanceof RegistryError && e.status === 501);
  assert.equal(count('never'), 1);
  assert.equal((await client.manifest('lab/x', 'busy', ACCEPT)).body.length, manifest.length);
  assert.equal((await client.manifest('lab/x', 'slow', ACCEPT)).body.length, manifest.length);
  const once = await client.request('lab/x', 'manifests/down', { what: 'once', once: true }).catch((e: RegistryError) => e);
  assert.equal((once as RegistryError).status, 500);
  assert.equal(count('down'), 4, '`once`: no retry');
  const notFound = await client.request('lab/x', 'manifests/nf', { what: 'a HEAD', method: 'HEAD', accept: [404] });
  assert.equal(notFound.status, 404, 'an accepted status is an answer');
});

test('a refusal of a request with a body says why (the error body); a GET\'s body is not read', async (t) => {
  const { client, host } = await scripted(t, (req, res) => {
    req.resume();
    send(res, 400, '{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid"}]}');
  });
  await assert.rejects(client.request('lab/x', 'manifests/latest', { what: 'manifest lab/x:latest', method: 'PUT', body: Buffer.from('{}') }), (e: unknown) => e instanceof RegistryError && e.message === `${host}: manifest lab/x:latest: HTTP 400 (MANIFEST_INVALID: manifest invalid)`);
  await assert.rejects(client.request('lab/x', 'manifests/latest', { what: 'manifest lab/x:latest' }), (e: unknown) => e instanceof RegistryError && e.message === `${host}: manifest lab/x:latest: HTTP 400`);
});

test('a 429 that stays: one line saying so', async (t) => {
  const { client, host } = await scripted(t, (_req, res) => send(res, 429, '', { 'Retry-After': '0' }), { retries: 1 });
  await assert.rejects(client.manifest('lab/x', 'latest', ACCEPT), (e: unknown) => e instanceof RegistryError && e.message === `${host}: too many requests for manifest lab/x:latest (still 429 after retries)`);
});

test('Basic auth: credentials asked for once, only when the registry wants them, and sent from then on; none: one line with the hint', async (t) => {
  let lookups = 0;
  const { client, seen } = await scripted(
    t,
    (req, res) => (req.headers.authorization === `Basic ${Buffer.from('lab:secret').toString('base64')}` ? send(res, 200, manifest) : send(res, 401, '', { 'WWW-Authenticate': 'Basic realm="lab"' })),
    { credentials: async () => (lookups++, { username: 'lab', password: 'secret' }) },
  );
  await client.manifest('lab/x', 'a', ACCEPT);
  await client.manifest('lab/y', 'b', ACCEPT);
  assert.equal(lookups, 1);
  assert.deepEqual(api(seen).map((s) => [s.url, Boolean(s.headers.authorization)]), [['/v2/lab/x/manifests/a', false], ['/v2/lab/x/manifests/a', true], ['/v2/lab/y/manifests/b', true]]);
  const anonymous = await scripted(t, (_req, res) => send(res, 401, '', { 'WWW-Authenticate': 'Basic realm="lab"' }));
  await assert.rejects(anonymous.client.manifest('lab/x', 'a', ACCEPT), (e: unknown) => e instanceof AuthError && e.message === `${anonymous.host}: authentication required` && /--creds/.test(e.hint ?? ''));
  const refused = await scripted(t, (_req, res) => send(res, 401, '', { 'WWW-Authenticate': 'Basic realm="lab"' }), { credentials: async () => ({ username: 'lab', password: 'wrong' }) });
  await assert.rejects(refused.client.manifest('lab/x', 'a', ACCEPT), (e: unknown) => e instanceof AuthError && e.message === `${refused.host}: authentication required for manifest lab/x:a` && e.hint === 'the credentials were refused');
  assert.equal(api(refused.seen).length, 2, 'a second 401 is the answer');
});

test('a 401 without a usable challenge: one line each', async (t) => {
  const challenges = [undefined, 'Negotiate', 'Bearer service="x"', 'Bearer realm="not a url"'];
  const { client, host } = await scripted(t, (_req, res, n) => send(res, 401, '', challenges[n] === undefined ? {} : { 'WWW-Authenticate': challenges[n] as string }));
  const messages = [
    `${host}: the registry asked for authentication without a usable WWW-Authenticate header`,
    `${host}: the registry asked for authentication without a usable WWW-Authenticate header`,
    `${host}: Bearer challenge without a realm`,
    `${host}: the Bearer challenge's realm "not a url" is not a URL`,
  ];
  for (const message of messages) await assert.rejects(client.manifest('lab/x', 'a', ACCEPT), (e: unknown) => e instanceof AuthError && e.message === message);
});

test('Bearer: a token per repository from the realm, reused, renewed once when the registry refuses it, never sent to another origin', async (t) => {
  let issued = 0;
  let realm = '';
  let revoked = false;
  const valid = new Set<string>();
  const { client, seen, url } = await scripted(t, (req, res) => {
    if (req.url?.startsWith('/token')) {
      const token = `t${++issued}`;
      valid.add(token);
      send(res, 200, JSON.stringify({ token, expires_in: 300 }));
      return;
    }
    if (req.url?.includes('/revoke') && !revoked) {
      revoked = true;
      valid.clear();
    }
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (!token || !valid.has(token)) send(res, 401, '', { 'WWW-Authenticate': `Bearer realm="${realm}",service="lab"` });
    else send(res, 200, manifest);
  });
  realm = `${url}/token`;
  await client.manifest('lab/x', 'a', ACCEPT);
  await Promise.all([client.manifest('lab/x', 'b', ACCEPT), client.manifest('lab/x', 'c', ACCEPT)]);
  assert.equal(issued, 1, 'one token for the repository');
  await client.manifest('lab/y', 'a', ACCEPT);
  assert.equal(issued, 2, 'another repository, another token');
  const scopes = seen.filter((s) => s.url.startsWith('/token')).map((s) => new URL(s.url, url).searchParams.get('scope'));
  assert.deepEqual(scopes, ['repository:lab/x:pull', 'repository:lab/y:pull']);
  assert.equal(api(seen).filter((s) => s.url.startsWith('/v2/lab/y/')).length, 1, 'with a known realm, no 401 first');
  await client.manifest('lab/x', 'revoke', ACCEPT);
  assert.equal(issued, 3, 'renewed once');
  await client.manifest('lab/x', 'd', ACCEPT);
  assert.equal(issued, 3, 'and the new one reused');
  const elsewhere = await client.request('lab/x', `http://localhost:${new URL(url).port}/v2/lab/x/blobs/uploads/1`, { what: 'an upload', accept: [401] });
  await elsewhere.body.resume();
  assert.equal(seen.at(-1)?.headers.authorization, undefined, 'another origin gets no credentials');
  assert.equal(seen.at(-1)?.headers.host, `localhost:${new URL(url).port}`);
});

test('network failures are retried (a reset connection), up to --retries, then one line naming the request', async (t) => {
  const { client, seen, host } = await scripted(t, (req, res, n) => {
    if (req.url?.endsWith('/flaky') && api(seen).filter((s) => s.url === req.url).length < 3) return void req.socket.destroy();
    if (req.url?.endsWith('/dead')) return void req.socket.destroy();
    void n;
    // No connection kept: each try of the client is one request here (http.ts retries a reused connection's failure itself).
    send(res, 200, manifest, { Connection: 'close' });
  });
  assert.equal((await client.manifest('lab/x', 'flaky', ACCEPT)).body.length, manifest.length);
  await assert.rejects(client.manifest('lab/x', 'dead', ACCEPT), (e: unknown) => e instanceof RegistryError && e.message.startsWith(`${host}: manifest lab/x:dead: `) && oneLine(e));
  assert.equal(api(seen).filter((s) => s.url.endsWith('/dead')).length, 3);
});

test('the scheme: https first when TLS is not verified, else http; a registry that refuses connections is asked again next time', async (t) => {
  const { client, url } = await scripted(t, (_req, res) => send(res, 200, manifest));
  const debug: string[] = [];
  const verbose = new Registry(url.replace('http://', ''), { tlsVerify: false, retries: 0, debug: (m) => debug.push(m) });
  t.after(() => verbose.close());
  await verbose.manifest('lab/x', 'a', ACCEPT);
  assert.ok(debug.some((m) => /^[\d.:]+: no TLS \(.*\); using http$/s.test(m)), debug.join('\n'));
  assert.ok(debug.includes(`GET ${url}/v2/lab/x/manifests/a`), debug.join('\n'));
  await assert.rejects(new Registry(url.replace('http://', ''), { tlsVerify: true, retries: 0 }).manifest('lab/x', 'a', ACCEPT), (e: unknown) => e instanceof RegistryError && /does not speak HTTPS|EPROTO|wrong version/.test(e.message));
  void client;
  // A port nobody listens on, then a server on it.
  const probe = http.createServer((_req, res) => send(res, 200, manifest));
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as { port: number }).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const later = new Registry(`127.0.0.1:${port}`, { tlsVerify: false, retries: 0 });
  t.after(() => later.close());
  await assert.rejects(later.manifest('lab/x', 'a', ACCEPT), (e: unknown) => e instanceof RegistryError && e.message === `127.0.0.1:${port}: manifest lab/x:a: connection refused (is the registry running?)`);
  const server = http.createServer((_req, res) => send(res, 200, manifest));
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  assert.equal((await later.manifest('lab/x', 'a', ACCEPT)).body.length, manifest.length);
  later.close();
});

test('an aborted signal ends a request and a wait between retries with its reason', async (t) => {
  const controller = new AbortController();
  const { client } = await scripted(t, (_req, res) => send(res, 503, '', { 'Retry-After': '20' }), { signal: controller.signal, retries: 5 });
  const pending = client.manifest('lab/x', 'a', ACCEPT);
  setTimeout(() => controller.abort(new Error('--timeout')), 100);
  await assert.rejects(pending, { message: '--timeout' });
});

const layer = Buffer.alloc(300_000);
for (let i = 0; i < layer.length; i++) layer[i] = (i * 7) & 0xff;
const layerDigest = digestOf(layer);

/** Serves the layer honestly (Range too) unless `misbehave` answers first. */
function blobServer(misbehave: (req: IncomingMessage, res: ServerResponse, n: number, from: number) => boolean): Handler {
  let n = 0;
  return (req, res) => {
    if (!req.url?.includes('/blobs/')) return void send(res, 200, '{}');
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const from = range ? Number(range[1]) : 0;
    if (misbehave(req, res, n++, from)) return;
    if (range) send(res, 206, layer.subarray(from), { 'Content-Range': `bytes ${from}-${layer.length - 1}/${layer.length}` });
    else send(res, 200, layer);
  };
}

/** Sends the first `bytes` from `from` under a Content-Length of the rest, then drops the connection. */
function cut(res: ServerResponse, from: number, bytes: number): true {
  const headers: Record<string, string | number> = { 'Content-Length': layer.length - from };
  if (from > 0) headers['Content-Range'] = `bytes ${from}-${layer.length - 1}/${layer.length}`;
  res.writeHead(from > 0 ? 206 : 200, headers);
  res.write(layer.subarray(from, from + bytes), () => res.destroy());
  return true;
}

interface Download {
  error: unknown;
  blob?: Buffer;
  notes: string[];
  /** What progress was told, net (a restart takes back what it had added). */
  added: number;
  /** The Range header of each blob request ('' for none). */
  ranges: string[];
  host: string;
}

/** Downloads the layer from a server answering with `handler` into a BlobWriter, and commits it. */
async function download(t: TestContext, handler: Handler, options: Partial<RegistryOptions> = {}, size: number | null = layer.length): Promise<Download> {
  const { client, seen, host } = await scripted(t, handler, options);
  const dir = await tempDir('cp-registry-blob-');
  t.after(() => dir.cleanup());
  const notes: string[] = [];
  let added = 0;
  const progress = { add: (n: number) => void (added += n), note: (m: string) => void notes.push(m), done() {}, failed() {} };
  const writer = new BlobWriter({ digest: layerDigest, ...(size === null ? {} : { size }) }, join(dir.path, 'part'), join(dir.path, 'blob'));
  let error: unknown;
  try {
    await client.blob('lab/x', layerDigest, writer, { progress });
    await writer.commit();
  } catch (err) {
    error = err;
    await writer.abort();
  }
  const blob = error ? undefined : readFileSync(join(dir.path, 'blob'));
  return { error, ...(blob ? { blob } : {}), notes, added, ranges: api(seen).filter((s) => s.url.includes('/blobs/')).map((s) => s.headers.range ?? ''), host };
}

test('a blob comes whole, with its progress', async (t) => {
  const got = await download(t, blobServer(() => false));
  assert.equal(got.error, undefined);
  assert.ok(got.blob?.equals(layer));
  assert.equal(got.added, layer.length);
  assert.deepEqual(got.ranges, ['']);
  assert.deepEqual(got.notes, []);
});

test('a connection that breaks in the body: the rest is asked for with Range and appended, and the budget starts again whenever a try got further', async (t) => {
  // Four breaks, each further than the last, with --retries 1: each got further, so each is retried.
  const got = await download(t, blobServer((_req, res, n, from) => n < 4 && cut(res, from, 50_000)), { retries: 1 });
  assert.equal(got.error, undefined, String(got.error));
  assert.ok(got.blob?.equals(layer));
  assert.deepEqual(got.ranges, ['', 'bytes=50000-', 'bytes=100000-', 'bytes=150000-', 'bytes=200000-']);
  assert.ok(got.notes.includes('resuming at byte 50000'), got.notes.join('\n'));
  assert.ok(got.notes.some((m) => m.startsWith('connection broke after 50000 bytes (')), got.notes.join('\n'));
  assert.equal(got.added, layer.length);
});

test('breaks that get no further use up the retries, then one line', async (t) => {
  const got = await download(t, blobServer((_req, res, n, from) => (n === 0 ? cut(res, from, 1000) : cut(res, from, 0))), { retries: 2 });
  assert.ok(got.error instanceof RegistryError && got.error.message.startsWith(`${got.host}: blob ${layerDigest}: `) && oneLine(got.error), String(got.error));
  assert.deepEqual(got.ranges, ['', 'bytes=1000-', 'bytes=1000-'], 'the try that got further, then two that did not');
});

test('a server that ignores Range gets a fresh start, and one that refuses it (416) too', async (t) => {
  const ignores = await download(t, blobServer((_req, res, n, from) => (n === 0 ? cut(res, from, 70_000) : (void send(res, 200, layer), true))));
  assert.equal(ignores.error, undefined, String(ignores.error));
  assert.ok(ignores.blob?.equals(layer));
  assert.ok(ignores.notes.includes('the registry ignored the Range request; starting over'), ignores.notes.join('\n'));
  assert.equal(ignores.added, layer.length, 'what was thrown away is taken back from the progress');
  const refuses = await download(t, blobServer((_req, res, n, from) => (n === 0 ? cut(res, from, 70_000) : from > 0 ? (void send(res, 416), true) : false)));
  assert.equal(refuses.error, undefined, String(refuses.error));
  assert.ok(refuses.blob?.equals(layer));
  assert.deepEqual(refuses.ranges, ['', 'bytes=70000-', '']);
  assert.ok(refuses.notes.includes('the registry refused the Range request (416); starting over'), refuses.notes.join('\n'));
  assert.equal(refuses.added, layer.length);
});

test('a 206 that starts elsewhere, or has no Content-Range, is an error naming what was asked and what came', async (t) => {
  const elsewhere = await download(t, blobServer((_req, res, n, from) => (n === 0 ? cut(res, from, 1000) : (void send(res, 206, layer.subarray(10), { 'Content-Range': `bytes 10-${layer.length - 1}/${layer.length}` }), true))));
  assert.ok(elsewhere.error instanceof RegistryError && elsewhere.error.message === `${elsewhere.host}: blob ${layerDigest}: asked for the bytes from 1000, got "bytes 10-${layer.length - 1}/${layer.length}"`, String(elsewhere.error));
  const none = await download(t, blobServer((_req, res) => (void send(res, 206, layer), true)));
  assert.ok(none.error instanceof RegistryError && none.error.message === `${none.host}: blob ${layerDigest}: asked for the bytes from 0, got "no Content-Range"`, String(none.error));
  const star = await download(t, blobServer((_req, res) => (void send(res, 206, layer, { 'Content-Range': `bytes 0-${layer.length - 1}/*` }), true)));
  assert.equal(star.error, undefined, 'a 206 from 0 of an unknown total is the blob');
  assert.deepEqual(star.notes, [], 'nothing resumed');
  for (const range of [`bytes 0-${layer.length - 1}/${layer.length} and more`, `x bytes 0-${layer.length - 1}/${layer.length}`]) {
    const odd = await download(t, blobServer((_req, res) => (void send(res, 206, layer, { 'Content-Range': range }), true)));
    assert.ok(odd.error instanceof RegistryError && odd.error.message.endsWith(`asked for the bytes from 0, got ${JSON.stringify(range)}`), String(odd.error));
  }
  assert.ok(star.blob?.equals(layer));
});

test('sizes: a response of the wrong length is refused at once, a delimited body that ends short too; a body that stops short is resumed', async (t) => {
  const long = await download(t, blobServer((_req, res) => (void send(res, 200, Buffer.concat([layer, Buffer.from('x')])), true)));
  assert.ok(long.error instanceof DigestMismatchError && long.error.message === `${long.host}: blob ${layerDigest}: the registry sends ${layer.length + 1} bytes, the descriptor says ${layer.length}`, String(long.error));
  assert.deepEqual(long.ranges, [''], 'not retried');
  const chunked = await download(t, blobServer((_req, res) => (void res.writeHead(200, { 'Transfer-Encoding': 'chunked' }).end(layer.subarray(0, 1000)), true)));
  assert.ok(chunked.error instanceof DigestMismatchError && chunked.error.message === `${chunked.host}: blob ${layerDigest}: the registry sent 1000 bytes, the descriptor says ${layer.length}`, String(chunked.error));
  const closed = await download(t, blobServer((req, _res, n) => n === 0 && (void req.socket.end(Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n'), layer.subarray(0, 1000)])), true)));
  assert.equal(closed.error, undefined, String(closed.error));
  assert.deepEqual(closed.ranges, ['', 'bytes=1000-']);
  assert.equal(closed.notes[0], `connection broke after 1000 bytes (connection closed after 1000 of ${layer.length} bytes); retrying`);
  const over = await download(t, blobServer((req) => (void req.socket.end(Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n'), layer, Buffer.from('more')])), true)));
  assert.ok(over.error instanceof DigestMismatchError && over.error.message === `blob ${layerDigest}: more than the expected ${layer.length} bytes`, String(over.error));
  assert.deepEqual(over.ranges, [''], 'our own error is not retried');
  const unsized = await download(t, blobServer(() => false), {}, null);
  assert.ok(unsized.blob?.equals(layer), 'no size: the digest decides');
  const bad = await download(t, blobServer((_req, res) => (void send(res, 200, Buffer.alloc(layer.length)), true)));
  assert.ok(bad.error instanceof DigestMismatchError, 'the digest, at commit');
});

test('a blob digest is checked before it goes into a URL', async (t) => {
  const { client, seen, host } = await scripted(t, (_req, res) => send(res, 200, ''));
  const writer = new BlobWriter({ digest: layerDigest }, '/nonexistent/part', '/nonexistent/blob');
  await assert.rejects(client.blob('lab/x', '../../etc', writer), (e: unknown) => e instanceof UnsupportedError && e.message.startsWith(`${host}: blob of lab/x: "../../etc" is not a digest`));
  assert.deepEqual(api(seen), []);
});

test('without a progress to tell, a download resumes, starts over and is refused the same', async (t) => {
  let n = 0;
  const handler = blobServer((_req, res, _n, from) => {
    n++;
    if (n === 1) return cut(res, from, 1000);
    if (n === 2) return cut(res, from, 1000);
    if (n === 3) return (void send(res, 416), true);
    if (n === 4) return cut(res, from, 1000);
    return n === 5 && (void send(res, 200, layer), true);
  });
  const { client } = await scripted(t, handler, { retries: 5 });
  const dir = await tempDir('cp-registry-blob-');
  t.after(() => dir.cleanup());
  const writer = new BlobWriter({ digest: layerDigest, size: layer.length }, join(dir.path, 'part'), join(dir.path, 'blob'));
  await client.blob('lab/x', layerDigest, writer);
  await writer.commit();
  assert.ok(readFileSync(join(dir.path, 'blob')).equals(layer));
});

test('a resumed request refused otherwise than with 416, and a 416 to a request without Range, are errors, not fresh starts', async (t) => {
  const notFound = await download(t, blobServer((_req, res, n, from) => (n === 0 ? cut(res, from, 1000) : (void send(res, 404), true))));
  assert.ok(notFound.error instanceof NotFoundError, String(notFound.error));
  assert.deepEqual(notFound.ranges, ['', 'bytes=1000-']);
  const refused = await download(t, blobServer((_req, res) => (void send(res, 416), true)));
  assert.ok(refused.error instanceof RegistryError && refused.error.status === 416, String(refused.error));
  assert.deepEqual(refused.ranges, ['']);
});

test('a manifest whose body breaks: the network error in one line, not "too large"; stopped by the signal: the stop, in one line', async (t) => {
  const stop = new AbortController();
  const { client, host } = await scripted(t, (req, res) => {
    res.writeHead(200, { 'Content-Length': 1000 });
    if (req.url?.endsWith('/cut')) res.write('{"sch', () => res.destroy());
    // Stopped once the head has had time to arrive (if it had not, the stop comes as it is).
    else res.write('{"sch', () => setTimeout(() => stop.abort(new Error('--timeout')), 100));
  }, { retries: 0, signal: stop.signal });
  await assert.rejects(client.manifest('lab/x', 'cut', ACCEPT), (e: unknown) => e instanceof RegistryError && e.message === `${host}: manifest lab/x:cut: connection closed after 5 bytes of the body`);
  await assert.rejects(client.manifest('lab/x', 'stalls', ACCEPT), (e: unknown) => (e instanceof RegistryError && e.message === `${host}: manifest lab/x:stalls: --timeout`) || (e instanceof Error && e.message === '--timeout'));
});

test('a blob download stopped by its signal ends with the stop itself, and is not retried', async (t) => {
  const stop = new AbortController();
  const reason = new Error('another blob failed');
  let requests = 0;
  const { client } = await scripted(t, (req, res) => {
    if (!req.url?.includes('/blobs/')) return void send(res, 200, '{}');
    requests++;
    res.writeHead(200, { 'Content-Length': layer.length });
    res.write(layer.subarray(0, 1000), () => stop.abort(reason));
  }, { retries: 3 });
  const dir = await tempDir('cp-registry-blob-');
  t.after(() => dir.cleanup());
  const writer = new BlobWriter({ digest: layerDigest, size: layer.length }, join(dir.path, 'part'), join(dir.path, 'blob'));
  await assert.rejects(client.blob('lab/x', layerDigest, writer, { signal: stop.signal }), (e: unknown) => e === reason);
  await writer.abort();
  assert.equal(requests, 1);
});

test('the response time limits given to the client are its connections\' (a body that goes quiet: ETIMEDOUT, one line)', async (t) => {
  const { client, host } = await scripted(t, (_req, res) => void res.writeHead(200, { 'Content-Length': 1000 }).write('{'), { retries: 0, idleTimeoutMs: 200 });
  await assert.rejects(client.manifest('lab/x', 'quiet', ACCEPT), (e: unknown) => e instanceof RegistryError && e.message === `${host}: manifest lab/x:quiet: no data for 0.2 s`);
});
