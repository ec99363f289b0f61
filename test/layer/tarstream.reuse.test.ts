/**
 * The tar reader keeps no view of a chunk once it asks for the next one: the layer stream
 * hands each chunk's memory back to its worker then, to be filled again (bounded memory).
 * Checked with a source that scribbles over every chunk it handed out before the next.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeTar, type EntrySpec } from '../helpers/tar-writer.js';
import { TarReader, type TarHeader } from '../../lib/layer/tarstream.js';

const entries: EntrySpec[] = [
  { name: `${'long-directory-name-'.repeat(8)}/`, type: 'dir' },
  { name: `${'long-directory-name-'.repeat(8)}/${'file-'.repeat(30)}`, content: 'x'.repeat(700), xattrs: { 'user.a': Buffer.from('value-a'), 'security.capability': Buffer.from([1, 0, 0, 2, 0x80, 0xff]) } },
  { name: 'link', type: 'symlink', linkname: `/${'target-'.repeat(30)}` },
  { name: 'small', content: 'small' },
];

/** Chunks of `size` bytes; each one handed out is overwritten with 0xee when the next is asked for. */
async function* reusing(data: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let at = 0; at < data.length; at += size) {
    const chunk = Buffer.from(data.subarray(at, at + size));
    yield chunk;
    chunk.fill(0xee);
  }
}

async function readAll(reader: TarReader): Promise<Array<{ header: TarHeader; body: string }>> {
  const out = [];
  for (let header = await reader.next(); header; header = await reader.next()) {
    let body = '';
    await reader.readBody((data) => (body += data.toString('latin1')));
    out.push({ header, body });
  }
  return out;
}

test('headers, PAX records and bodies survive a source that reuses each chunk after the next is asked for', async () => {
  const tar = await writeTar(entries, 'pax');
  const expected = await readAll(new TarReader(reusing(tar, tar.length)));
  assert.equal(expected.length, 4);
  for (const size of [100, 511, 512, 513, 1000, 1536]) {
    assert.deepEqual(await readAll(new TarReader(reusing(tar, size))), expected, `chunks of ${size} bytes`);
  }
});
