/** Our HTTP/1.1 GET client (lib/http.ts) against local node servers: framing, keep-alive, redirects, errors, TLS, timeouts. */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { discardBody, HttpClient, HttpProtocolError, type HttpResponse } from '../../../lib/image/transport/http.js';
import { tempDir } from '../../helpers/paths.js';
import { start } from '../../helpers/loopback.js';

/** A client closed when the test ends. */
function client(t: TestContext, options: Partial<ConstructorParameters<typeof HttpClient>[0]> = {}): HttpClient {
  const c = new HttpClient({ tlsVerify: false, ...options });
  t.after(() => c.close());
  return c;
}

/** A raw TCP server: `respond` is called for each request head on a connection (n counts from 0 per connection). */
function rawServer(respond: (socket: net.Socket, request: string, n: number) => void): net.Server {
  return net.createServer((socket) => {
    let pending = '';
    let n = 0;
    socket.on('error', () => {});
    socket.on('data', (data) => {
      pending += data.toString('latin1');
      for (let end = pending.indexOf('\r\n\r\n'); end >= 0; end = pending.indexOf('\r\n\r\n')) {
        const request = pending.slice(0, end);
        pending = pending.slice(end + 4);
        respond(socket, request, n++);
      }
    });
  });
}

async function bodyOf(res: HttpResponse): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of res.body as AsyncIterable<Buffer>) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('a Content-Length body of several MiB arrives intact, and the next request reuses the connection', async (t) => {
  const data = randomBytes(5 * 1024 * 1024 + 17);
  const server = await start(t, http.createServer((_req, res) => res.writeHead(200, { 'Content-Length': data.length }).end(data)));
  const c = client(t);
  for (let i = 0; i < 2; i++) {
    const res = await c.get(`${server.url}/blob`, {});
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-length'], String(data.length));
    assert.equal(sha256(await bodyOf(res)), sha256(data));
  }
  assert.equal(server.connections(), 1);
});

test('a slow reader of a large body gets every byte (reading pauses and resumes)', async (t) => {
  const data = randomBytes(12 * 1024 * 1024);
  const server = await start(t, http.createServer((_req, res) => res.writeHead(200, { 'Content-Length': data.length }).end(data)));
  const res = await client(t).get(server.url, {});
  await sleep(100); // the server runs ahead, the body fills up
  const chunks: Buffer[] = [];
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    chunks.push(Buffer.from(chunk));
    if (chunks.length % 4 === 0) await sleep(2);
  }
  assert.equal(sha256(Buffer.concat(chunks)), sha256(data));
});

test('a chunked body arrives intact, and the connection is reused after it', async (t) => {
  const parts = Array.from({ length: 12 }, (_, i) => randomBytes(300_000 + i));
  const server = await start(
    t,
    http.createServer(async (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
      for (const part of parts) {
        res.write(part);
        await sleep(1);
      }
      res.end();
    }),
  );
  const c = client(t);
  for (let i = 0; i < 2; i++) {
    const res = await c.get(server.url, {});
    assert.equal(res.headers['transfer-encoding'], 'chunked');
    assert.equal(sha256(await bodyOf(res)), sha256(Buffer.concat(parts)));
  }
  assert.equal(server.connections(), 1);
});

test('chunk extensions and a trailer, split across reads at awkward places', async (t) => {
  const message =
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n' +
    '5;name=value\r\nhello\r\n' +
    '7;x;y="a b"\r\n, world\r\n' +
    '1\r\n!\r\n' +
    '0;last\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n';
  const server = await start(
    t,
    rawServer(async (socket) => {
      socket.setNoDelay(true);
      // Pieces of 1..7 bytes, each its own read on the client.
      for (let at = 0, size = 1; at < message.length; at += size, size = (size % 7) + 1) {
        socket.write(message.slice(at, at + size));
        await sleep(1);
      }
    }),
  );
  const c = client(t);
  for (let i = 0; i < 2; i++) {
    const res = await c.get(server.url, {});
    assert.equal((await bodyOf(res)).toString(), 'hello, world!');
  }
  assert.equal(server.connections(), 1);
});

test('a body delimited by the end of the connection arrives intact', async (t) => {
  const data = randomBytes(3 * 1024 * 1024 + 5);
  const server = await start(
    t,
    rawServer((socket, request) => {
      // With Connection: close, and without (HTTP/1.1 with neither length nor chunks).
      socket.write(`HTTP/1.1 200 OK\r\n${request.includes('/close') ? 'Connection: close\r\n' : ''}\r\n`);
      socket.end(data);
    }),
  );
  const c = client(t);
  for (const path of ['/close', '/close', '/plain', '/plain']) {
    const res = await c.get(`${server.url}${path}`, {});
    assert.equal(sha256(await bodyOf(res)), sha256(data));
  }
  assert.equal(server.connections(), 4);
});

test('a 204 and a zero-length 200 resolve with an empty body, and the connection is reused', async (t) => {
  const server = await start(
    t,
    http.createServer((req, res) => {
      if (req.url === '/none') res.writeHead(204).end();
      else res.writeHead(200, { 'Content-Length': 0 }).end();
    }),
  );
  const c = client(t);
  for (const path of ['/none', '/empty', '/none']) {
    const res = await c.get(`${server.url}${path}`, {});
    assert.equal(res.status, path === '/none' ? 204 : 200);
    assert.equal((await bodyOf(res)).length, 0);
  }
  assert.equal(server.connections(), 1);
});

test('a server that closes in the middle of the body: ECONNRESET, saying how many bytes arrived', async (t) => {
  const server = await start(
    t,
    rawServer((socket) => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n');
      socket.end(Buffer.alloc(300_000, 7));
    }),
  );
  const res = await client(t).get(server.url, {});
  await assert.rejects(bodyOf(res), (err: NodeJS.ErrnoException) => {
    assert.equal(err.code, 'ECONNRESET');
    assert.match(err.message, /\b300000 bytes\b/);
    return true;
  });
});

test('redirects: Authorization kept on the same origin, dropped for another', async (t) => {
  const seen: Array<string | undefined> = [];
  const other = await start(
    t,
    http.createServer((req, res) => {
      seen.push(req.headers.authorization, req.headers['user-agent']);
      res.end('elsewhere');
    }),
  );
  const server = await start(
    t,
    http.createServer((req, res) => {
      if (req.url === '/start') res.writeHead(302, { Location: '/same' }).end('moved');
      else if (req.url === '/away') res.writeHead(302, { Location: `${other.url}/landing` }).end();
      else res.end(`auth=${req.headers.authorization}`);
    }),
  );
  const c = client(t);
  const headers = { Authorization: 'Bearer secret', 'User-Agent': 'tester' };

  const same = await c.get(`${server.url}/start`, headers);
  assert.equal(same.status, 200);
  assert.equal(same.url.href, `${server.url}/same`);
  assert.equal((await bodyOf(same)).toString(), 'auth=Bearer secret');

  const away = await c.get(`${server.url}/away`, headers);
  assert.equal(away.url.href, `${other.url}/landing`);
  assert.equal((await bodyOf(away)).toString(), 'elsewhere');
  assert.deepEqual(seen, [undefined, 'tester']);
  assert.equal(server.connections(), 1, 'the redirect bodies were read and the connection reused');
});

test('a keep-alive connection the server closed while idle: the next request goes on a new one', async (t) => {
  const server = await start(
    t,
    rawServer((socket) => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      setTimeout(() => socket.end(), 50);
    }),
  );
  const c = client(t);
  assert.equal((await bodyOf(await c.get(server.url, {}))).toString(), 'ok');
  await sleep(200);
  assert.equal((await bodyOf(await c.get(server.url, {}))).toString(), 'ok');
  assert.equal(server.connections(), 2);
});

test('a keep-alive connection closed just as it is reused: the request is retried once on a new one', async (t) => {
  const server = await start(
    t,
    rawServer((socket, _request, n) => {
      // The first request on a connection is answered; the second finds it closing.
      if (n === 0) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      else socket.destroy();
    }),
  );
  const c = client(t);
  for (let i = 0; i < 3; i++) assert.equal((await bodyOf(await c.get(server.url, {}))).toString(), 'ok');
  assert.equal(server.connections(), 3);
});

test('malformed responses reject with HttpProtocolError, in one line', async (t) => {
  const replies: Record<string, string> = {
    '/not-http': '220 mail.example ESMTP ready\r\n\r\n',
    '/bad-length': 'HTTP/1.1 200 OK\r\nContent-Length: 12abc\r\n\r\n',
    '/bad-header': 'HTTP/1.1 200 OK\r\nno colon here\r\nContent-Length: 0\r\n\r\n',
  };
  const server = await start(
    t,
    rawServer((socket, request) => socket.write(replies[request.split(' ')[1] as string] as string)),
  );
  const c = client(t);
  for (const [path, pattern] of [['/not-http', /not an HTTP\/1\.1 response/], ['/bad-length', /Content-Length/], ['/bad-header', /malformed response header/]] as const) {
    await assert.rejects(c.get(`${server.url}${path}`, {}), (err: Error) => {
      assert.ok(err instanceof HttpProtocolError, `${path}: ${err}`);
      assert.match(err.message, pattern);
      assert.doesNotMatch(err.message, /\n/);
      return true;
    });
  }
  const chunked = await start(t, rawServer((socket) => socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n')));
  const res = await c.get(chunked.url, {});
  await assert.rejects(bodyOf(res), (err: Error) => err instanceof HttpProtocolError && /chunked/.test(err.message));
});

test('a body that fails before anyone reads it: the error waits for the reader, discarding it does not hang', async (t) => {
  const server = await start(
    t,
    rawServer((socket, request) => {
      if (request.startsWith('GET /broken ')) socket.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789');
      else if (request.startsWith('GET /redirect ')) socket.write('HTTP/1.1 302 Found\r\nLocation: /ok\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n');
      else socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    }),
  );
  const c = client(t);
  const res = await c.get(`${server.url}/broken`, {});
  await sleep(100); // the connection ends while nobody reads
  await assert.rejects(bodyOf(res), { code: 'ECONNRESET', message: /after 10 bytes/ });
  // A redirect whose body is malformed (failing in the read that brought the head) is still followed.
  const redirected = await c.get(`${server.url}/redirect`, {});
  assert.equal(redirected.url.pathname, '/ok');
  assert.equal((await bodyOf(redirected)).toString(), 'ok');
});

test('a header value with a line break is refused before anything is sent', async (t) => {
  const server = await start(t, http.createServer((_req, res) => res.end()));
  const c = client(t);
  await assert.rejects(c.get(server.url, { Authorization: 'Bearer x\r\nX-Injected: 1' }), HttpProtocolError);
  await assert.rejects(c.get(server.url, { 'X-A\nB': 'v' }), HttpProtocolError);
  assert.equal(server.connections(), 0);
});

test('an AbortSignal aborted in the middle of the body ends the read, without hanging', { timeout: 5000 }, async (t) => {
  const server = await start(
    t,
    rawServer((socket) => socket.write(`HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n${'x'.repeat(1000)}`)), // and then nothing
  );
  const c = client(t);
  const controller = new AbortController();
  const res = await c.get(server.url, {}, controller.signal);
  let read = 0;
  await assert.rejects(
    (async () => {
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        read += chunk.length;
        controller.abort();
      }
    })(),
    { name: 'AbortError' },
  );
  assert.ok(read > 0 && read <= 1000, `read ${read} bytes`);

  // Before the response head, too; and the client still works afterwards.
  const early = new AbortController();
  setTimeout(() => early.abort(), 50);
  const silent = await start(t, rawServer(() => {}));
  await assert.rejects(c.get(silent.url, {}, early.signal), { name: 'AbortError' });
  await assert.rejects(c.get(silent.url, {}, early.signal), { name: 'AbortError' });
  const again = await c.get(server.url, {});
  assert.equal(again.status, 200);
  again.body.destroy();
});

test('https with a self-signed certificate: works with tlsVerify false, refused with true', async (t) => {
  const dir = await tempDir('cp-http-tls-');
  t.after(() => dir.cleanup());
  const [key, cert] = [join(dir.path, 'key.pem'), join(dir.path, 'cert.pem')];
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' });
  const data = randomBytes(3 * 1024 * 1024 + 1);
  const server = await start(
    t,
    https.createServer({ key: readFileSync(key), cert: readFileSync(cert) }, (_req, res) => res.writeHead(200, { 'Content-Length': data.length }).end(data)),
    'https',
  );

  const insecure = client(t, { tlsVerify: false });
  for (let i = 0; i < 2; i++) assert.equal(sha256(await bodyOf(await insecure.get(`${server.url}/blob`, {}))), sha256(data));
  assert.equal(server.connections(), 1);

  await assert.rejects(client(t, { tlsVerify: true }).get(`${server.url}/blob`, {}), (err: NodeJS.ErrnoException) => {
    assert.match(err.code ?? '', /SELF_SIGNED|CERT/);
    return true;
  });
});

test('a connection that goes quiet after the headers: ETIMEDOUT after idleTimeoutMs', { timeout: 5000 }, async (t) => {
  const server = await start(t, rawServer((socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc')));
  const res = await client(t, { tlsVerify: false, idleTimeoutMs: 200 }).get(server.url, {});
  const started = Date.now();
  await assert.rejects(bodyOf(res), { code: 'ETIMEDOUT' });
  const elapsed = Date.now() - started;
  // Not before the idle time (a lower bound holds on a busy machine); the test's timeout bounds it above.
  assert.ok(elapsed >= 150, `timed out after ${elapsed} ms, before the 200 ms idle timeout`);
});

test('headers that drip in, a byte at a time: ETIMEDOUT after headersTimeoutMs, though the connection never goes quiet', { timeout: 5000 }, async (t) => {
  const server = await start(
    t,
    rawServer((socket) => {
      socket.write('HTTP/1.1 200 OK\r\n');
      const drip = setInterval(() => socket.write('X'), 20);
      socket.on('close', () => clearInterval(drip));
    }),
  );
  const started = Date.now();
  await assert.rejects(client(t, { headersTimeoutMs: 300, idleTimeoutMs: 200 }).get(server.url, {}), { code: 'ETIMEDOUT', message: 'no response headers within 0.3 s' });
  const elapsed = Date.now() - started;
  assert.ok(elapsed >= 250 && elapsed < 2000, `timed out after ${elapsed} ms`);
});

test('an endless error body or redirect body is cut off after a small cap, and its connection dropped', { timeout: 10_000 }, async (t) => {
  let sent = 0;
  const server = await start(
    t,
    http.createServer((req, res) => {
      if (req.url === '/there') return void res.end('arrived');
      res.writeHead(req.url === '/redirect' ? 307 : 404, req.url === '/redirect' ? { Location: '/there' } : {});
      const pump = () => {
        while (!res.destroyed && res.write(Buffer.alloc(16 << 10, 'x'))) sent += 16 << 10;
        if (!res.destroyed) res.once('drain', pump);
      };
      pump();
    }),
  );
  const c = client(t);
  const notFound = await c.get(`${server.url}/missing`, {});
  assert.equal(notFound.status, 404);
  await discardBody(notFound);
  const redirected = await c.get(`${server.url}/redirect`, {});
  assert.equal((await bodyOf(redirected)).toString(), 'arrived');
  assert.ok(sent < 64 << 20, `the server wrote ${sent} bytes`);
  assert.equal(server.connections(), 3, 'a cut-off connection is not reused');
});

test('a response says whether its end is marked: Content-Length and chunked are, the end of the connection is not', async (t) => {
  const server = await start(
    t,
    rawServer((socket, request) => {
      if (request.startsWith('GET /length')) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      else if (request.startsWith('GET /chunked')) socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n');
      else socket.end('HTTP/1.1 200 OK\r\n\r\nok');
    }),
  );
  const c = client(t);
  const delimited = async (path: string) => {
    const res = await c.get(`${server.url}${path}`, {});
    await bodyOf(res);
    return res.delimited;
  };
  assert.deepEqual([await delimited('/length'), await delimited('/chunked'), await delimited('/close')], [true, true, false]);
});
