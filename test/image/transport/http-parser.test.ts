/**
 * The HTTP/1.1 response parser on bytes fed to it directly, as a connection would (http.test.ts
 * has it behind real sockets): the head however it is split, the three framings of a body,
 * when a connection may be reused, and every malformed input as one HttpProtocolError.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HttpProtocolError, ResponseParser } from '../../../lib/image/transport/http-parser.js';
import type { HttpResponse } from '../../../lib/image/transport/http.js';

interface Parsed {
  parser: ResponseParser;
  res?: HttpResponse;
  body: Buffer[];
  bodyEnded: boolean;
  bodyError?: Error;
  failed?: Error;
  done?: boolean;
  doneCount: number;
  destroyed: number;
  resumes: number;
  /** What each feed() returned. */
  fed: boolean[];
}

/** A parser and what it told: `read` false leaves the body unread (paused). */
function parser(options: { headOnly?: boolean; read?: boolean } = {}): Parsed {
  const parsed: Parsed = { body: [], bodyEnded: false, doneCount: 0, destroyed: 0, resumes: 0, fed: [] } as unknown as Parsed;
  parsed.parser = new ResponseParser(new URL('http://127.0.0.1/x'), options.headOnly ?? false, {
    head: (res) => {
      parsed.res = res;
      res.body.on('error', (err) => (parsed.bodyError = err));
      res.body.on('end', () => (parsed.bodyEnded = true));
      if (options.read !== false) res.body.on('data', (chunk: Buffer) => parsed.body.push(chunk));
    },
    fail: (err) => (parsed.failed = err),
    resume: () => parsed.resumes++,
    done: (reusable) => {
      parsed.done = reusable;
      parsed.doneCount++;
    },
    destroyed: () => parsed.destroyed++,
  });
  return parsed;
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

/** Feeds `pieces` (latin1 text or bytes) and lets the body's events run. */
async function feed(pieces: Array<string | Buffer>, options: { headOnly?: boolean; read?: boolean } = {}): Promise<Parsed> {
  const parsed = parser(options);
  for (const piece of pieces) parsed.fed.push(parsed.parser.feed(typeof piece === 'string' ? Buffer.from(piece, 'latin1') : piece));
  await settle();
  await settle();
  return parsed;
}

/** The same text fed a byte at a time. */
const bytewise = (text: string) => [...Buffer.from(text, 'latin1')].map((b) => Buffer.from([b]));
const text = (parsed: Parsed) => Buffer.concat(parsed.body).toString('latin1');
const protocolError = (message: string | RegExp) => (e: unknown) => e instanceof HttpProtocolError && e.name === 'HttpProtocolError' && (typeof message === 'string' ? e.message === message : message.test(e.message));

test('a Content-Length response split anywhere: status, headers (lower-case names, trimmed, the first of a repeated one), the body, reusable', async () => {
  const response = 'HTTP/1.1 200 OK\r\nContent-Type:  text/plain \r\nX-Twice: first\r\nx-twice: second\r\nContent-Length : 5\r\n\r\nhello';
  for (const pieces of [[response], bytewise(response), [response.slice(0, 17), response.slice(17, 60), response.slice(60)]]) {
    const parsed = await feed(pieces);
    assert.equal(parsed.res?.status, 200);
    assert.deepEqual(parsed.res?.headers, { 'content-type': 'text/plain', 'x-twice': 'first', 'content-length': '5' });
    assert.equal(parsed.res?.delimited, true);
    assert.equal(parsed.res?.url.href, 'http://127.0.0.1/x');
    assert.equal(text(parsed), 'hello');
    assert.ok(parsed.bodyEnded);
    assert.equal(parsed.done, true);
    assert.equal(parsed.doneCount, 1);
    assert.equal(parsed.parser.bodyBytes, 5);
    assert.equal(parsed.failed, undefined);
    assert.equal(parsed.destroyed, 0);
  }
});

test('status lines: HTTP/1.0 and a missing reason are read; anything else is one HttpProtocolError, and the connection is given up', async () => {
  const ok = await feed(['HTTP/1.0 404\r\nContent-Length: 0\r\n\r\n']);
  assert.equal(ok.res?.status, 404);
  assert.equal(ok.done, false, 'HTTP/1.0 closes');
  for (const line of ['HTTP/2 200 OK', 'HTTP/1.1 200OK', 'HTTP/1.1 20 OK', 'http/1.1 200 OK', ' HTTP/1.1 200 OK', 'SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3 and a long tail of text that is cut off']) {
    const parsed = await feed([`${line}\r\nContent-Length: 0\r\n\r\n`]);
    assert.ok(protocolError(`not an HTTP/1.1 response: ${JSON.stringify(line.slice(0, 60))}`)(parsed.failed), `${line}: ${parsed.failed}`);
    assert.equal(parsed.res, undefined);
    assert.equal(parsed.destroyed, 1);
    assert.deepEqual(parsed.fed, [false]);
  }
});

test('malformed header lines are refused, naming the line', async () => {
  for (const line of ['NoColon', ': no name', 'x'.repeat(100)]) {
    const parsed = await feed([`HTTP/1.1 200 OK\r\n${line}\r\n\r\n`]);
    assert.ok(protocolError(`malformed response header ${JSON.stringify(line.slice(0, 60))}`)(parsed.failed), String(parsed.failed));
  }
});

test('a head of up to 64 KiB is read; one byte more without its end is refused', async () => {
  const start = 'HTTP/1.1 200 OK\r\nX-Big: ';
  const filler = 'a'.repeat((64 << 10) - start.length);
  const fits = await feed([start + filler, '\r\nContent-Length: 0\r\n\r\n']);
  assert.equal(fits.failed, undefined);
  assert.equal(fits.res?.headers['x-big'], filler);
  const over = await feed([start + filler, 'a']);
  assert.ok(protocolError('response headers larger than 65536 bytes')(over.failed), String(over.failed));
  assert.equal(over.destroyed, 1);
});

test('1xx responses before the answer are skipped, in the same chunk or the next', async () => {
  const same = await feed(['HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok']);
  assert.equal(same.res?.status, 201);
  assert.equal(text(same), 'ok');
  const later = await feed(['HTTP/1.1 100 Continue\r\n\r\n', 'HTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\n', 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n']);
  assert.equal(later.res?.status, 200);
  assert.deepEqual(later.res?.headers, { 'content-length': '0' });
  assert.deepEqual(later.fed, [true, true, true]);
  assert.equal(later.done, true);
});

test('Connection: close in any case or list ends reuse; keep-alive does not', async () => {
  const cases: Array<[string, boolean]> = [['close', false], ['Keep-Alive, CLOSE', false], ['keep-alive', true], ['closed', true]];
  for (const [value, reusable] of cases) {
    const parsed = await feed([`HTTP/1.1 200 OK\r\nConnection: ${value}\r\nContent-Length: 1\r\n\r\nx`]);
    assert.equal(parsed.done, reusable, value);
  }
});

test('empty bodies: a HEAD answer, 204 and 304 whatever their Content-Length; bytes after one mean the connection is out of step', async () => {
  const head = await feed(['HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n'], { headOnly: true });
  assert.equal(text(head), '');
  assert.ok(head.bodyEnded);
  assert.equal(head.done, true);
  for (const status of [204, 304]) {
    const parsed = await feed([`HTTP/1.1 ${status} X\r\nContent-Length: 7\r\n\r\n`]);
    assert.equal(parsed.done, true, String(status));
    assert.ok(parsed.bodyEnded);
  }
  const trailing = await feed(['HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\n']);
  assert.equal(trailing.done, false);
  assert.equal(text(trailing), '');
  const zero = await feed(['HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n']);
  assert.equal(zero.done, true);
  assert.ok(zero.bodyEnded);
});

test('a body longer than its Content-Length is cut at it, and the connection is not reused', async () => {
  const parsed = await feed(['HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc']);
  assert.equal(text(parsed), 'abc');
  assert.equal(parsed.done, true);
  const extra = await feed(['HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n', 'abcdef']);
  assert.equal(text(extra), 'abc');
  assert.equal(extra.done, false);
  assert.equal(extra.doneCount, 1);
});

test('Content-Length: digits only, at most 15 of them', async () => {
  for (const length of ['-1', '1e3', ' ', '0x10', '1'.repeat(16), 'a'.repeat(40)]) {
    const parsed = await feed([`HTTP/1.1 200 OK\r\nContent-Length: ${length}\r\n\r\n`]);
    assert.ok(protocolError(`malformed Content-Length ${JSON.stringify(length.trim().slice(0, 30))}`)(parsed.failed), `${length}: ${parsed.failed}`);
  }
  const big = await feed([`HTTP/1.1 200 OK\r\nContent-Length: ${'9'.repeat(15)}\r\n\r\nabc`]);
  assert.equal(big.failed, undefined);
  assert.equal(text(big), 'abc');
  assert.equal(big.done, undefined, 'not complete');
});

test('chunked: sizes in either case, extensions, spaces, bare LF lines and a trailer, split anywhere', async () => {
  const response = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\nContent-Length: 999\r\n\r\n5;name=value\r\nhello\r\n A \t\r\n0123456789\r\n1\nx\n0\r\nX-Trailer: yes\r\n\r\n';
  const split = response.indexOf('\nhello');
  for (const pieces of [[response], bytewise(response), [response.slice(0, split), response.slice(split)]]) {
    const parsed = await feed(pieces);
    assert.equal(parsed.failed ?? parsed.bodyError, undefined);
    assert.equal(text(parsed), 'hello0123456789x');
    assert.equal(parsed.res?.delimited, true);
    assert.equal(parsed.done, true);
    assert.ok(parsed.bodyEnded);
    assert.equal(parsed.parser.bodyBytes, 16);
  }
  const trailing = await feed(['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\nHTTP']);
  assert.equal(text(trailing), 'a');
  assert.equal(trailing.done, false, 'bytes after the end');
  const exact = await feed(['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n', '1\r\na\r\n0\r\n\r\n']);
  assert.equal(exact.done, true);
});

test('malformed chunked encoding fails the body, also when it came in the head\'s chunk (no crash before a reader listens)', async () => {
  const head = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n';
  for (const body of ['5\r\nhelloX\r\n', 'zz\r\n', `${'1'.repeat(13)}\r\n`, '5 x\r\n', ` ${'0'.repeat(4096)}`]) {
    const parsed = await feed([head + body]);
    assert.ok(protocolError('malformed chunked encoding')(parsed.bodyError), `${JSON.stringify(body.slice(0, 20))}: ${parsed.bodyError}`);
    assert.equal(parsed.failed, undefined, 'the head was delivered; the body fails');
    assert.equal(parsed.destroyed, 1);
    assert.equal(parsed.done, undefined);
  }
  const unread = await feed([`${head}zz\r\n`], { read: false });
  assert.ok(protocolError('malformed chunked encoding')(unread.bodyError));
  const long = await feed([head, '1'.repeat(4096)]);
  assert.equal(long.bodyError, undefined, 'a line of 4096 is still read');
  long.parser.feed(Buffer.from('1'));
  await settle();
  assert.ok(protocolError('malformed chunked encoding')(long.bodyError));
});

test('a body to the end of the connection: not delimited, ends when the connection does, never reused', async () => {
  const parsed = await feed(['HTTP/1.1 200 OK\r\n\r\nsome', ' more']);
  assert.equal(parsed.res?.delimited, false);
  assert.equal(parsed.done, undefined);
  parsed.parser.connectionEnded();
  await settle();
  assert.equal(text(parsed), 'some more');
  assert.ok(parsed.bodyEnded);
  assert.equal(parsed.done, false);
  parsed.parser.connectionEnded();
  assert.equal(parsed.doneCount, 1, 'once');
});

test('a connection that ends early: ECONNRESET before the response, or saying how much of the body came', async () => {
  const none = parser();
  none.parser.connectionEnded();
  assert.equal(none.failed?.message, 'connection closed before the response ended');
  assert.equal((none.failed as NodeJS.ErrnoException).code, 'ECONNRESET');
  const headOnly = await feed(['HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n']);
  headOnly.parser.connectionEnded();
  await settle();
  assert.equal(headOnly.bodyError?.message, 'connection closed before the response ended');
  const some = await feed(['HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc']);
  some.parser.connectionEnded();
  await settle();
  assert.equal(some.bodyError?.message, 'connection closed after 3 bytes of the body');
  assert.equal((some.bodyError as NodeJS.ErrnoException).code, 'ECONNRESET');
  assert.equal(some.done, undefined);
  const complete = await feed(['HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx']);
  complete.parser.connectionEnded();
  await settle();
  assert.equal(complete.bodyError, undefined, 'a complete response is not failed by the close after it');
});

test('fail(): before the head it is the request\'s error, after it the body\'s, and only the first counts', async () => {
  const early = parser();
  early.parser.fail(new Error('first'));
  early.parser.fail(new Error('second'));
  assert.equal(early.failed?.message, 'first');
  const late = await feed(['HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n']);
  late.parser.fail(new Error('reset'));
  await settle();
  assert.equal(late.bodyError?.message, 'reset');
  assert.equal(late.failed, undefined);
  const done = await feed(['HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx']);
  done.parser.fail(new Error('too late'));
  await settle();
  assert.equal(done.bodyError, undefined);
});

test('a reader that gives up before the end is told to the connection once; one that ends after the end is not', async () => {
  const partial = await feed(['HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc']);
  partial.res?.body.destroy();
  await settle();
  assert.equal(partial.destroyed, 1);
  const whole = await feed(['HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx']);
  whole.res?.body.destroy();
  await settle();
  assert.equal(whole.destroyed, 0);
});

test('back-pressure: a body past the reader\'s 4 MiB buffer says so (feed is false), and the reader asks for more', async () => {
  const parsed = await feed([`HTTP/1.1 200 OK\r\nContent-Length: ${6 << 20}\r\n\r\n`], { read: false });
  assert.deepEqual(parsed.fed, [true], 'a head alone: read on');
  assert.equal(parsed.parser.feed(Buffer.alloc(1 << 20)), true);
  assert.equal(parsed.parser.feed(Buffer.alloc(4 << 20)), false);
  const resumes = parsed.resumes;
  parsed.res?.body.read();
  await settle();
  assert.ok(parsed.resumes > resumes);
  assert.equal(parsed.parser.feed(Buffer.alloc(1 << 20)), true, 'the last byte completes the message');
  assert.equal(parsed.done, true);
  const chunked = await feed(['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'], { read: false });
  assert.equal(chunked.parser.feed(Buffer.concat([Buffer.from(`${(5 << 20).toString(16)}\r\n`), Buffer.alloc(5 << 20)])), false);
  const close = await feed(['HTTP/1.1 200 OK\r\n\r\n'], { read: false });
  assert.equal(close.parser.feed(Buffer.alloc(5 << 20)), false);
  assert.equal(close.parser.feed(Buffer.alloc(0)), true, 'nothing pushed');
});
