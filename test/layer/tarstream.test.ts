/**
 * The tar reader's refusals, each with its one line, on archives crafted from a valid one (a
 * header field changed, the checksum made right again), and the layer media types it reads.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { layerCompression, TarReader } from '../../lib/layer/tarstream.js';
import { UnsupportedError } from '../../lib/core/errors.js';
import { writeTar } from '../helpers/tar-writer.js';

test('layer media types: OCI and Docker, plain, gzip and zstd, non-distributable too; anything else is refused by name', () => {
  const cases: Array<[string, string]> = [
    ['application/vnd.oci.image.layer.v1.tar', 'none'],
    ['application/vnd.oci.image.layer.nondistributable.v1.tar', 'none'],
    ['application/vnd.docker.image.rootfs.diff.tar', 'none'],
    ['application/vnd.oci.image.layer.v1.tar+gzip', 'gzip'],
    ['application/vnd.oci.image.layer.nondistributable.v1.tar+gzip', 'gzip'],
    ['application/vnd.docker.image.rootfs.diff.tar.gzip', 'gzip'],
    ['application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', 'gzip'],
    ['application/vnd.oci.image.layer.v1.tar+zstd', 'zstd'],
    ['application/vnd.oci.image.layer.nondistributable.v1.tar+zstd', 'zstd'],
    ['application/vnd.docker.image.rootfs.diff.tar.zstd', 'zstd'],
  ];
  for (const [mediaType, compression] of cases) assert.equal(layerCompression(mediaType), compression, mediaType);
  for (const bad of ['application/vnd.oci.image.layer.v1.tar+bzip2', 'xapplication/vnd.oci.image.layer.v1.tar', 'application/vnd.oci.image.layer.v1.tar+gzipx', 'application/vnd.oci.image.layer.v1.tar+zstdx', 'application/vnd.docker.image.rootfs.diff.tarx', '']) {
    assert.throws(() => layerCompression(bad), (e: unknown) => e instanceof UnsupportedError && e.message === `unsupported layer media type "${bad}"`, bad);
  }
});

/** Sets `bytes` at `offset` of the header block at `at` and makes its checksum right again. */
function patchHeader(archive: Buffer, at: number, offset: number, bytes: string | Buffer): Buffer {
  const patched = Buffer.from(archive);
  (typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes).copy(patched, at + offset);
  patched.fill(0x20, at + 148, at + 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += patched[at + i] as number;
  patched.write(`${sum.toString(8).padStart(6, '0')}\0 `, at + 148, 'latin1');
  return patched;
}

async function readAll(archive: Buffer) {
  const reader = new TarReader([archive][Symbol.iterator]() as unknown as AsyncIterator<Buffer>);
  const entries = [];
  for (let h = await reader.next(); h; h = await reader.next()) {
    let body = '';
    await reader.readBody((d) => (body += d.toString()));
    entries.push({ ...h, body });
  }
  return entries;
}

async function refusedWith(archive: Buffer, message: RegExp): Promise<void> {
  await assert.rejects(readAll(archive), (e: unknown) => e instanceof UnsupportedError && message.test(e.message));
}

test('a crafted header: sparse, an unknown type, a bad number, a bad checksum — each one line naming what and where', async () => {
  const ustar = await writeTar([{ name: 'a', content: 'hello' }], 'gnu');
  await refusedWith(patchHeader(ustar, 0, 156, 'S'), /^layer: sparse file entries are not supported \(entry at byte 0;/);
  await refusedWith(patchHeader(ustar, 0, 156, 'Z'), /^layer: entry "a" has unsupported tar type 'Z'$/);
  await refusedWith(patchHeader(ustar, 0, 156, '\u0001'), /^layer: entry "a" has unsupported tar type '\\x01'$/);
  await refusedWith(patchHeader(ustar, 0, 108, '12x4567\0'), /^layer: bad uid field "12x4567" in the tar header at byte 0$/);
  await refusedWith(patchHeader(ustar, 0, 108, Buffer.from([0x80, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])), /^layer: uid field out of range at byte 0$/);
  const bad = Buffer.from(ustar);
  bad[0] = 0x62;
  await refusedWith(bad, /^layer: not a tar archive \(bad header checksum at byte 0\)$/);
});

test('numbers: GNU base-256, octal with space or NUL ends, empty fields are 0', async () => {
  const ustar = await writeTar([{ name: 'a', content: '' }], 'gnu');
  const base256 = Buffer.alloc(8);
  base256[0] = 0x80;
  base256.writeUInt32BE(0x12345678, 4);
  assert.equal((await readAll(patchHeader(ustar, 0, 108, base256)))[0]?.uid, 0x12345678);
  assert.equal((await readAll(patchHeader(ustar, 0, 116, '0000017 ')))[0]?.gid, 15);
  assert.equal((await readAll(patchHeader(ustar, 0, 116, '\0\0\0\0\0\0\0\0')))[0]?.gid, 0);
});

/** The header block at `at` with its checksum field set to `field` (8 bytes), as `sum` computes it over the block. */
function withChecksum(archive: Buffer, at: number, field: (sum: { unsigned: number; signed: number }) => string): Buffer {
  const patched = Buffer.from(archive);
  patched.fill(0x20, at + 148, at + 156);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < 512; i++) {
    const byte = patched[at + i] as number;
    unsigned += byte;
    signed += byte > 127 ? byte - 256 : byte;
  }
  patched.write(field({ unsigned, signed }), at + 148, 'latin1');
  return patched;
}

test('numbers and checksums read from the bytes mean what the general reading says: leading spaces, tabs, signed sums', async () => {
  const ustar = await writeTar([{ name: 'a', content: '' }], 'gnu');
  // A field cut at its first NUL or space: a leading space makes it empty (0); other whitespace is trimmed.
  assert.equal((await readAll(patchHeader(ustar, 0, 116, '  17   ')))[0]?.gid, 0);
  assert.equal((await readAll(patchHeader(ustar, 0, 116, '\t17\0\0\0\0\0')))[0]?.gid, 15);
  assert.equal((await readAll(patchHeader(ustar, 0, 116, '00000017')))[0]?.gid, 15, 'all eight bytes digits');
  await refusedWith(patchHeader(ustar, 0, 116, '0017x\0\0\0'), /^layer: bad gid field "0017x" in the tar header at byte 0$/);
  const octal = (n: number, width: number) => n.toString(8).padStart(width, '0');
  for (const form of [(s: { unsigned: number }) => `${octal(s.unsigned, 6)}\0 `, (s: { unsigned: number }) => `  ${octal(s.unsigned, 5)}\0`, (s: { unsigned: number }) => `${octal(s.unsigned, 7)} `, (s: { unsigned: number }) => `\t${octal(s.unsigned, 6)}\0`]) {
    assert.equal((await readAll(withChecksum(ustar, 0, form)))[0]?.name, 'a');
  }
  // Old tars summed signed bytes: accepted when a byte is over 127 (here in the name), refused when it is off by one.
  const high = patchHeader(ustar, 0, 1, Buffer.from([0xe9]));
  assert.equal((await readAll(withChecksum(high, 0, (s) => `${octal(s.signed, 6)}\0 `)))[0]?.name, `a${Buffer.from([0xe9]).toString()}`);
  await refusedWith(withChecksum(high, 0, (s) => `${octal(s.signed + 1, 6)}\0 `), /^layer: not a tar archive \(bad header checksum at byte 0\)$/);
  await refusedWith(withChecksum(ustar, 0, (s) => `${octal(s.unsigned - 256, 6)}\0 `), /^layer: not a tar archive \(bad header checksum at byte 0\)$/);
});

test('PAX: a malformed record, a record without =, a global header; an old-style directory', async () => {
  const pax = await writeTar([{ name: 'x'.repeat(120), content: 'body' }], 'pax');
  // The PAX body is the block after the first header: "NN path=xxx…\n".
  const record = pax.indexOf('path=', 512);
  const lengthAt = pax.lastIndexOf(0x20, record) - 2;
  const broken = Buffer.from(pax);
  broken.write('99', lengthAt, 'latin1');
  await refusedWith(broken, /^layer: malformed PAX extended header at byte 0$/);
  const noEquals = Buffer.from(pax);
  noEquals.write('path_', record, 'latin1');
  await refusedWith(noEquals, /^layer: malformed PAX record at byte 0$/);
  const withXattr = await writeTar([{ name: 'f', content: '', xattrs: { 'user.x': Buffer.from('v') } }], 'pax');
  const global = patchHeader(withXattr, 0, 156, 'g');
  const [entry] = await readAll(global);
  assert.equal(entry?.name, 'f', 'a global header applies to the entries after it');
  const olddir = await writeTar([{ name: 'd/', content: '' }], 'gnu');
  assert.equal((await readAll(patchHeader(olddir, 0, 156, '\0')))[0]?.type, 'directory', 'a pre-POSIX file entry with a trailing slash is a directory');
  assert.equal((await readAll(patchHeader(olddir, 0, 156, '7')))[0]?.type, 'file', 'contiguous files (7) are files, even with a slash');
});

test('a cut archive: inside a header, a body or an extended header, each says so', async () => {
  const pax = await writeTar([{ name: 'x'.repeat(120), content: 'body' }], 'pax');
  await refusedWith(pax.subarray(0, 300), /^layer: tar archive is truncated$/);
  await refusedWith(pax.subarray(0, 512 + 10), /^layer: tar archive is truncated/);
  await refusedWith(pax.subarray(0, 512), /^layer: tar archive is truncated \(inside an extended header\)$/);
  await refusedWith(pax.subarray(0, 1024), /^layer: tar archive ends inside an entry$/);
  await refusedWith(pax.subarray(0, 3 * 512 + 2), /^layer: tar archive is truncated \(a file body ends early\)$/);
  const big = patchHeader(pax, 0, 124, '77777777777\0');
  await refusedWith(big, /^layer: extended header of 8589934591 bytes at byte 0 \(more than 16 MiB\)$/);
});
