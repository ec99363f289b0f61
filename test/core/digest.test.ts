/** Digests as image-spec writes them: the grammar, the registered algorithms we verify, and the store's sha256. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { checkDigest, digestHex, digestOf, verifyDigest } from '../../lib/core/digest.js';
import { DigestMismatchError, UnsupportedError } from '../../lib/core/errors.js';

const data = Buffer.from('content');
const sha512 = `sha512:${createHash('sha512').update(data).digest('hex')}`;

test('digests that name content: sha256 and sha512 in the spec form pass; anything else is one line naming where it was', () => {
  assert.equal(checkDigest(digestOf(data), 'x'), digestOf(data));
  assert.equal(checkDigest(sha512, 'x'), sha512);
  const refused: Array<[unknown, RegExp]> = [
    ['sha512:../../..', /^manifests\[0\]\.digest: "sha512:\.\.\/\.\.\/\.\." is not a digest/],
    ['latest', /"latest" is not a digest/],
    [null, /null is not a digest/],
    [42, /42 is not a digest/],
    ['sha256:ABC', /not a valid sha256 digest \(want 64 lower-case hex digits\)/],
    [`sha256:${'a'.repeat(63)}`, /not a valid sha256 digest/],
    [`sha512:${'a'.repeat(64)}`, /not a valid sha512 digest \(want 128/],
    ['md5:d41d8cd98f00b204e9800998ecf8427e', /digest algorithm "md5" is not supported \(only sha256 and sha512\)/],
    ['sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564', /digest algorithm "sha256\+b64u" is not supported/],
    ['sha256:a\nb', /is not a digest/],
    [`sha256:${'a'.repeat(500)}`, /^manifests\[0\]\.digest: "sha256:a{69}\.\.\. is not a digest|not a valid sha256/],
  ];
  for (const [value, pattern] of refused) {
    assert.throws(() => checkDigest(value, 'manifests[0].digest'), (e: unknown) => e instanceof UnsupportedError && pattern.test(e.message) && !e.message.includes('\n'), String(value));
  }
});

test('content is verified with the algorithm its digest names', () => {
  verifyDigest(data, digestOf(data), 'x');
  verifyDigest(data, sha512, 'x');
  assert.equal(digestOf(data, 'sha512'), sha512);
  assert.throws(() => verifyDigest(Buffer.from('other'), sha512, 'reg: manifest a@sha512'), (e: unknown) => e instanceof DigestMismatchError && /^reg: manifest a@sha512: content has digest sha512:[0-9a-f]{128}$/.test(e.message));
  assert.throws(() => verifyDigest(data, 'sha512:x', 'x'), UnsupportedError);
});

test('the store keeps sha256 only: digestHex refuses the rest', () => {
  assert.equal(digestHex(digestOf(data)), digestOf(data).slice(7));
  assert.throws(() => digestHex(sha512), /unsupported digest "sha512:[0-9a-f]+\.\.\. \(only sha256 is supported\)/);
});

test('digestOf: sha256: and the lower-case hex of the bytes, for a Buffer or a string', () => {
  const empty = 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
  assert.equal(digestOf(''), empty);
  assert.equal(digestOf(Buffer.alloc(0)), empty);
  assert.equal(digestOf('abc'), 'sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  assert.match(digestOf(Buffer.from([0, 255])), /^sha256:[0-9a-f]{64}$/);
});

test('digestHex: the hex of a sha256 digest; a malformed one is refused, naming it', () => {
  const hex = 'a'.repeat(64);
  assert.equal(digestHex(`sha256:${hex}`), hex);
  for (const bad of [`sha256:${'A'.repeat(64)}`, `sha256:${hex}0`, `sha256:${hex.slice(1)}`, `xsha256:${hex}`, `sha256:${hex}\n`, hex, '']) {
    assert.throws(() => digestHex(bad), (e: unknown) => e instanceof UnsupportedError && e.message.includes(JSON.stringify(bad).slice(0, 20)), JSON.stringify(bad));
  }
});
