/**
 * The retry rules on their own: which statuses and failures are worth another try, how long
 * Retry-After says to wait, how a network failure reads as one line (with the hint that helps),
 * and a wait that a signal ends.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ContainerPartsError, DigestMismatchError, RegistryError } from '../../../lib/core/errors.js';
import { describe, isConnectionRefused, isNetworkFailure, RETRYABLE_STATUS, retryAfterMs, sleep, wrapNetworkError } from '../../../lib/image/transport/retry.js';

const errno = (code: string, message = `${code}: something`) => Object.assign(new Error(message), { code });

test('retried statuses: 408, 429 and the 5xx that mean "not now"; never 501, 505 or a 4xx', () => {
  assert.deepEqual([...RETRYABLE_STATUS].sort(), [408, 429, 500, 502, 503, 504]);
});

test('Retry-After: seconds or an HTTP date, in ms, at most 30 s; nothing usable is undefined', () => {
  assert.equal(retryAfterMs('0'), 0);
  assert.equal(retryAfterMs('1.5'), 1500);
  assert.equal(retryAfterMs('30'), 30_000);
  assert.equal(retryAfterMs('31'), 30_000);
  assert.equal(retryAfterMs(null), undefined);
  assert.equal(retryAfterMs(''), undefined);
  assert.equal(retryAfterMs('-1'), undefined);
  assert.equal(retryAfterMs('soon'), undefined);
  assert.equal(retryAfterMs(new Date(Date.now() - 5000).toUTCString()), undefined, 'a date past');
  const inTen = retryAfterMs(new Date(Date.now() + 10_000).toUTCString()) ?? -1;
  assert.ok(inTen > 5000 && inTen <= 10_000, String(inTen));
  assert.equal(retryAfterMs(new Date(Date.now() + 3_600_000).toUTCString()), 30_000);
});

test('network failures are retried by code or by what the message says; our own errors never', () => {
  for (const code of ['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ECONNABORTED', 'EHOSTUNREACH', 'ENETUNREACH', 'ERR_STREAM_PREMATURE_CLOSE', 'UND_ERR_SOCKET']) {
    assert.equal(isNetworkFailure(errno(code, 'x')), true, code);
  }
  for (const message of ['Premature close', 'socket hang up', 'The operation was aborted']) assert.equal(isNetworkFailure(new Error(message)), true, message);
  assert.equal(isNetworkFailure('socket hang up'), true, 'a thrown string');
  assert.equal(isNetworkFailure(errno('ENOENT', 'no such file')), false);
  assert.equal(isNetworkFailure(new Error('something else')), false);
  assert.equal(isNetworkFailure({}), false);
  assert.equal(isNetworkFailure(new DigestMismatchError('blob: aborted')), false, 'ours, whatever it says');
  assert.equal(isNetworkFailure(Object.assign(new RegistryError('x'), { code: 'ECONNRESET' })), false);
});

test('connection refused is told apart; describe() is the message of an error, else the value', () => {
  assert.equal(isConnectionRefused(errno('ECONNREFUSED')), true);
  assert.equal(isConnectionRefused(errno('ECONNRESET')), false);
  assert.equal(isConnectionRefused({}), false);
  assert.equal(describe(new Error('the message')), 'the message');
  assert.equal(describe('a string'), 'a string');
  assert.equal(describe(42), '42');
});

test('a network failure as one line naming where, with a hint where one helps; our own errors pass as they are', () => {
  const where = 'registry.test:5000: manifest lab/x:latest';
  const refused = wrapNetworkError(errno('ECONNREFUSED'), where);
  assert.ok(refused instanceof RegistryError);
  assert.equal(refused.message, `${where}: connection refused (is the registry running?)`);
  assert.equal((refused as Error).cause instanceof Error, true);
  for (const code of ['ENOTFOUND', 'EAI_AGAIN']) assert.equal(wrapNetworkError(errno(code), where).message, `${where}: host not found`);
  for (const code of ['CERT_HAS_EXPIRED', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'ERR_TLS_CERT_ALTNAME_INVALID']) {
    const tls = wrapNetworkError(errno(code), where);
    assert.equal(tls.message, `${where}: TLS certificate not trusted (${code})`);
    assert.equal(tls.hint, 'its CA goes in /etc/containers/certs.d/registry.test:5000/ca.crt (or --cert-dir DIR); --tls-verify=false skips the check');
  }
  for (const err of [errno('EPROTO', 'write EPROTO 1234:error:wrong version number'), new Error('SSL routines: WRONG VERSION NUMBER')]) {
    const plain = wrapNetworkError(err, where);
    assert.equal(plain.message, `${where}: the registry does not speak HTTPS`);
    assert.equal(plain.hint, 'maybe --tls-verify=false will help?');
  }
  const other = wrapNetworkError(errno('ECONNRESET', 'read ECONNRESET\nat somewhere'), where);
  assert.equal(other.message, `${where}: read ECONNRESET`, 'the first line only');
  assert.equal((other as Error).cause instanceof Error && ((other as Error).cause as Error).message, 'read ECONNRESET\nat somewhere', 'the cause kept');
  assert.ok(other instanceof RegistryError);
  assert.equal(wrapNetworkError('a string', where).message, `${where}: a string`);
  const ours = new DigestMismatchError('blob: wrong');
  assert.equal(wrapNetworkError(ours, where), ours);
  assert.ok(wrapNetworkError(errno('EHOSTUNREACH'), where) instanceof ContainerPartsError);
});

test('sleep: waits, or rejects with the signal\'s reason as soon as it aborts (also if it already had)', async () => {
  await sleep(1);
  await sleep(1, new AbortController().signal);
  const already = new AbortController();
  already.abort(new Error('stopped before'));
  await assert.rejects(sleep(60_000, already.signal), { message: 'stopped before' });
  const later = new AbortController();
  const waiting = sleep(60_000, later.signal);
  setTimeout(() => later.abort(new Error('stopped while waiting')), 10);
  await assert.rejects(waiting, { message: 'stopped while waiting' });
  // A wait that ended leaves no listener behind: aborting afterwards changes nothing.
  const done = new AbortController();
  await sleep(1, done.signal);
  done.abort(new Error('after'));
});
