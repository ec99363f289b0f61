/** Parallel gzip members: one gzip stream to every reader, the same bytes however the input arrives. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { gunzipSync } from 'node:zlib';
import { spawnSync } from 'node:child_process';
import { parallelGzip } from '../../lib/layer/parallel-gzip.js';

async function compress(data: Buffer, pieceBytes: number): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for (let at = 0; at < data.length; at += pieceBytes) pieces.push(data.subarray(at, at + pieceBytes));
  return buffer(Readable.from(pieces).pipe(parallelGzip()));
}

test('several members, read back whole by zlib and by gzip(1); the same bytes for any input chunking', async () => {
  const data = Buffer.concat([randomBytes(3 << 20), Buffer.alloc(2 << 20, 'a'), randomBytes(12345)]);
  const a = await compress(data, 65536);
  const b = await compress(data, 1_000_003);
  assert.deepEqual(a, b, 'the cuts are at fixed offsets of the input');
  let members = 0;
  for (let i = 0; i + 3 < a.length; i++) if (a[i] === 0x1f && a[i + 1] === 0x8b && a[i + 2] === 8 && a[i + 3] === 0) members++;
  assert.ok(members >= 5, `${members} gzip members`);
  assert.deepEqual(gunzipSync(a), data);
  const gzip = spawnSync('gzip', ['-dc'], { input: a, maxBuffer: 64 << 20 });
  assert.equal(gzip.status, 0);
  assert.deepEqual(gzip.stdout, data);
  assert.notDeepEqual(await compress(Buffer.concat([data, Buffer.from('x')]), 65536), a, 'other input, other bytes');
});

test('an empty stream is one empty member (a valid gzip file)', async () => {
  assert.deepEqual(gunzipSync(await compress(Buffer.alloc(0), 1)), Buffer.alloc(0));
});
