/** sha256 digests as the OCI specs write them (lib/core/digest.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { digestHex, digestOf, SHA256 } from '../../lib/core/digest.js';
import { UnsupportedError } from '../../lib/core/errors.js';

test('digestOf: sha256: and the lower-case hex of the bytes, for a Buffer or a string', () => {
  const empty = 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
  assert.equal(digestOf(''), empty);
  assert.equal(digestOf(Buffer.alloc(0)), empty);
  assert.equal(digestOf('abc'), 'sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  assert.match(digestOf(Buffer.from([0, 255])), SHA256);
});

test('digestHex: the hex of a sha256 digest; a malformed one is refused, naming it', () => {
  const hex = 'a'.repeat(64);
  assert.equal(digestHex(`sha256:${hex}`), hex);
  for (const bad of [`sha256:${'A'.repeat(64)}`, `sha256:${hex}0`, `sha256:${hex.slice(1)}`, `xsha256:${hex}`, `sha256:${hex}\n`, hex, '']) {
    assert.throws(() => digestHex(bad), (e: unknown) => e instanceof UnsupportedError && e.message.includes(`"${bad}"`), bad);
  }
});
