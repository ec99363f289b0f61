/**
 * The HTTP client's requests other than a plain GET, and its body helpers, at the edges
 * mutation testing found unchecked: PUT/POST/PATCH with bytes or a stream (Content-Length
 * always, a body that must wait for the socket), DELETE and HEAD, a request with a body never
 * redirected, the redirect limit, a scheme that is not http(s), readBody's and discardBody's
 * limits (declared and undeclared) and what they do to the connection.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import { start } from '../../helpers/loopback.js';
import { BodyTooLarge, discardBody, HttpClient, HttpProtocolError, readBody } from '../../../lib/image/transport/http.js';

interface Seen {
  method: string;
  url: string;
  length: string | undefined;
  digest: string;
  size: number;
}

/** A server on 127.0.0.1 answering with `answer` after reading each request's body; closed with the test. */
async function serve(t: TestContext, answer: (req: http.IncomingMessage, res: http.ServerResponse) => void): Promise<{ base: string; seen: Seen[]; connections: () => number }> {
  const seen: Seen[] = [];
  const server = http.createServer(async (req, res) => {
    const hash = createHash('sha256');
    let size = 0;
    for await (const chunk of req) {
      hash.update(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
    seen.push({ method: req.method as string, url: req.url as string, length: req.headers['content-length'], digest: hash.digest('hex'), size });
    answer(req, res);
  });
  const started = await start(t, server);
  return { base: started.url, seen, connections: started.connections };
}

/** Answers `/sized/N` with N bytes and a Content-Length, `/chunked/N` with N bytes chunked. */
const sized = (status: number) => (req: http.IncomingMessage, res: http.ServerResponse) => {
  const size = Number(req.url?.slice(req.url.lastIndexOf('/') + 1));
  res.writeHead(status, req.url?.startsWith('/chunked/') ? {} : { 'Content-Length': String(size) });
  res.end(Buffer.alloc(size, 1));
};

function newClient(t: TestContext): HttpClient {
  const client = new HttpClient({ tlsVerify: false });
  t.after(() => client.close());
  return client;
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

test('PUT, POST and PATCH send a Content-Length (0 without a body); a streamed body of several MiB arrives whole; DELETE sends none', async (t) => {
  const server = await serve(t, (_req, res) => res.writeHead(201).end('ok'));
  const client = newClient(t);
  const big = Buffer.alloc(6 << 20);
  for (let i = 0; i < big.length; i += 4096) big[i] = (i >> 12) & 0xff;
  const stream = {
    length: big.length,
    async *open() {
      for (let i = 0; i < big.length; i += 256 << 10) yield big.subarray(i, i + (256 << 10));
    },
  };
  const statuses = [];
  for (const [method, body] of [['PUT', Buffer.from('bytes')], ['POST', undefined], ['PATCH', stream], ['PUT', Buffer.alloc(0)], ['DELETE', undefined]] as const) {
    const res = await client.request(`${server.base}/${method}`, { method, headers: {}, body });
    statuses.push(res.status);
    assert.equal((await readBody(res, 100, 'the answer')).toString(), 'ok');
  }
  assert.deepEqual(statuses, [201, 201, 201, 201, 201]);
  assert.deepEqual(
    server.seen.map((s) => [s.method, s.length, s.size]),
    [
      ['PUT', '5', 5],
      ['POST', '0', 0],
      ['PATCH', String(big.length), big.length],
      ['PUT', '0', 0],
      ['DELETE', undefined, 0],
    ],
  );
  assert.equal(server.seen[2]?.digest, sha256(big));
  assert.equal(server.connections(), 1, 'one connection for all of them');
});

test('HEAD: the headers, no body even with a Content-Length, and the connection reused', async (t) => {
  const server = await serve(t, (_req, res) => res.writeHead(200, { 'Content-Length': '1000', 'Docker-Content-Digest': 'sha256:x' }).end());
  const client = newClient(t);
  for (let i = 0; i < 2; i++) {
    const res = await client.request(`${server.base}/m`, { method: 'HEAD', headers: {} });
    assert.equal(res.headers['docker-content-digest'], 'sha256:x');
    assert.equal((await readBody(res, 10_000, 'HEAD')).length, 0);
  }
  assert.equal(server.connections(), 1);
});

test('a request with a body is not redirected; a GET through request() is, at most 5 times; a 3xx without Location is an answer', async (t) => {
  const server = await serve(t, (req, res) => {
    if (req.url === '/nowhere') res.writeHead(302).end();
    else res.writeHead(302, { Location: `/loop${server.seen.length}` }).end('again');
  });
  const client = newClient(t);
  const put = await client.request(`${server.base}/upload`, { method: 'PUT', headers: {}, body: Buffer.from('x') });
  assert.equal(put.status, 302);
  await discardBody(put);
  assert.equal(server.seen.length, 1);
  const get = await client.request(`${server.base}/start`, { method: 'GET', headers: {} });
  assert.equal(get.status, 302, 'after 5 redirects the 6th answer is returned as it is');
  await discardBody(get);
  assert.equal(server.seen.length - 1, 6);
  assert.equal(get.url.pathname, '/loop6');
  const nowhere = await client.get(`${server.base}/nowhere`, {});
  assert.equal(nowhere.status, 302);
  await discardBody(nowhere);
});

test('only http and https', async (t) => {
  const client = newClient(t);
  await assert.rejects(client.get('ftp://127.0.0.1/x', {}), (e: unknown) => e instanceof HttpProtocolError && e.message === 'unsupported URL scheme ftp:');
  await assert.rejects(client.request('file:///etc/passwd', { method: 'PUT', headers: {}, body: Buffer.from('x') }), HttpProtocolError);
});

test('readBody: a declared length over the limit is refused before reading, an undeclared one when it passes it; at the limit is fine', async (t) => {
  const server = await serve(t, sized(200));
  const client = newClient(t);
  assert.equal((await readBody(await client.get(`${server.base}/sized/100`, {}), 100, 'the manifest')).length, 100);
  assert.equal((await readBody(await client.get(`${server.base}/chunked/100`, {}), 100, 'the manifest')).length, 100);
  await assert.rejects(readBody(await client.get(`${server.base}/sized/101`, {}), 100, 'the manifest'), (e: unknown) => e instanceof BodyTooLarge && e.message === 'the manifest is 101 bytes, more than the 100 bytes allowed' && e.declared === 101);
  await assert.rejects(readBody(await client.get(`${server.base}/chunked/101`, {}), 100, 'the manifest'), (e: unknown) => e instanceof BodyTooLarge && e.message === 'the manifest is more than the 100 bytes allowed' && e.declared === undefined);
  const chunks = await readBody(await client.get(`${server.base}/chunked/300000`, {}), 1 << 20, 'a body in several chunks');
  assert.equal(chunks.length, 300000);
  assert.ok(chunks.every((b) => b === 1));
});

test('discardBody: a body up to the limit is read and the connection reused; over it (declared or not), the connection is dropped', async (t) => {
  const server = await serve(t, sized(500));
  const client = newClient(t);
  const connectionsAfter = async (path: string, limit?: number) => {
    await discardBody(await client.get(`${server.base}${path}`, {}), limit);
    await client.get(`${server.base}/sized/0`, {}).then(discardBody);
    return server.connections();
  };
  assert.equal(await connectionsAfter('/sized/100', 100), 1, 'at the limit: read, reused');
  assert.equal(await connectionsAfter('/chunked/100', 100), 1);
  assert.equal(await connectionsAfter('/sized/200000', 100), 2, 'declared over the limit: dropped');
  assert.equal(await connectionsAfter('/chunked/200000', 100), 3, 'over the limit as it arrives: dropped');
  assert.equal(await connectionsAfter('/sized/60000'), 3, 'the default limit is 64 KiB');
  assert.equal(await connectionsAfter('/sized/200000'), 4);
});
