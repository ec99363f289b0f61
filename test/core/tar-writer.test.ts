/**
 * The tar writer against two readers (GNU tar and python's tarfile): ustar fields, PAX for what
 * does not fit (long and non-ASCII names and link targets, large ids) and xattrs byte for byte.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { mustExec } from '../helpers/exec.js';
import { tempDir } from '../helpers/paths.js';
import { TAR_END, tarHeader, tarPadding, type TarEntry } from '../../lib/core/tar-writer.js';

const LONG = `${'d'.repeat(120)}/${'f'.repeat(150)}`;
const CAPABILITY = Buffer.from('0100000200200000000000000000000000000000', 'hex');

function archive(entries: Array<TarEntry & { content?: Buffer }>): Buffer {
  return Buffer.concat([...entries.flatMap((e) => [tarHeader(e), e.content ?? Buffer.alloc(0), tarPadding(e.size)]), TAR_END]);
}

test('python and GNU tar read every field back, PAX where ustar cannot hold it', async () => {
  const dir = await tempDir('cp-tar-writer-');
  try {
    const file = join(dir.path, 'layer.tar');
    await writeFile(file, archive([
      { name: 'dir/', type: 'dir', mode: 0o1777, uid: 0, gid: 0, size: 0, mtime: 1700000000 },
      { name: 'dir/file', type: 'file', mode: 0o4755, uid: 3_000_000, gid: 2_500_000, size: 5, mtime: 1700000001, content: Buffer.from('hello'), xattrs: new Map([['security.capability', CAPABILITY], ['user.bin', Buffer.from([0, 255, 10, 61])]]) },
      { name: LONG, type: 'symlink', mode: 0o777, uid: 1, gid: 2, size: 0, mtime: 0, linkname: `../${'t'.repeat(130)}` },
      { name: 'dir/ünï', type: 'hardlink', mode: 0o4755, uid: 0, gid: 0, size: 0, mtime: 0, linkname: 'dir/file' },
      { name: 'dev/null', type: 'char', mode: 0o666, uid: 0, gid: 0, size: 0, mtime: 0, devmajor: 1, devminor: 3 },
      { name: 'fifo', type: 'fifo', mode: 0o600, uid: 0, gid: 0, size: 0, mtime: 0 },
    ]));
    const script = String.raw`
import sys, tarfile
with tarfile.open(sys.argv[1]) as t:
    for m in t:
        x = ",".join(k[13:] + "=" + v.encode("utf-8", "surrogateescape").hex() for k, v in sorted(m.pax_headers.items()) if k.startswith("SCHILY.xattr."))
        print(m.name, m.type.decode(), oct(m.mode), m.uid, m.gid, m.size, m.mtime, m.linkname, m.devmajor, m.devminor, repr(m.uname), x)
`;
    const lines = (await mustExec('python3', ['-c', script, file])).split('\n').filter(Boolean);
    assert.deepEqual(lines, [
      "dir 5 0o1777 0 0 0 1700000000  0 0 '' ",
      `dir/file 0 0o4755 3000000 2500000 5 1700000001  0 0 '' security.capability=${CAPABILITY.toString('hex')},user.bin=00ff0a3d`,
      `${LONG} 2 0o777 1 2 0 0 ../${'t'.repeat(130)} 0 0 '' `,
      "dir/ünï 1 0o4755 0 0 0 0 dir/file 0 0 '' ",
      "dev/null 3 0o666 0 0 0 0  1 3 '' ",
      "fifo 6 0o600 0 0 0 0  0 0 '' ",
    ]);
    const gnu = await mustExec('tar', ['-tvf', file, '--numeric-owner']);
    assert.match(gnu, /-rwsr-xr-x 3000000\/2500000\s+5 .* dir\/file/);
    assert.ok(gnu.includes(LONG));
  } finally {
    await dir.cleanup();
  }
});

test('the same entry is the same bytes; another mtime is other bytes (the twin)', () => {
  const entry: TarEntry = { name: 'a', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 5, xattrs: new Map([['user.a', Buffer.from('1')]]) };
  assert.deepEqual(tarHeader(entry), tarHeader({ ...entry, xattrs: new Map(entry.xattrs) }));
  assert.notDeepEqual(tarHeader(entry), tarHeader({ ...entry, mtime: 6 }));
});

/** The PAX records of a header (the body of its `x` entry), or [] when it has none. */
function paxOf(header: Buffer): string[] {
  if (header.length === 512) return [];
  assert.equal(header.toString('latin1', 156, 157), 'x');
  const size = parseInt(header.toString('latin1', 124, 135), 8);
  const body = header.subarray(512, 512 + size).toString('latin1');
  const records: string[] = [];
  for (let at = 0; at < body.length; ) {
    const length = Number(body.slice(at, body.indexOf(' ', at)));
    const record = body.slice(at, at + length);
    assert.ok(record.endsWith('\n'), JSON.stringify(record));
    assert.equal(Buffer.byteLength(record, 'latin1'), length, 'LEN counts the whole record');
    records.push(record.slice(record.indexOf(' ') + 1, -1));
    at += length;
  }
  return records;
}

const plain: TarEntry = { name: 'a', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 5 };

test('the ustar block itself: fields where the format puts them, the checksum, the magic and version', () => {
  const header = tarHeader({ ...plain, name: 'etc/passwd', mode: 0o104755, uid: 1000, gid: 100, size: 1234, mtime: 1700000000 });
  assert.equal(header.length, 512);
  const field = (offset: number, width: number) => header.toString('latin1', offset, offset + width);
  assert.equal(field(0, 11), 'etc/passwd\0');
  assert.equal(field(100, 8), '0004755\0', 'mode & 0o7777');
  assert.equal(field(108, 8), '0001750\0');
  assert.equal(field(116, 8), '0000144\0');
  assert.equal(field(124, 12), '00000002322\0');
  assert.equal(field(136, 12), '14524770400\0');
  assert.equal(field(156, 1), '0');
  assert.equal(field(257, 8), 'ustar\u000000');
  const copy = Buffer.from(header);
  copy.write('        ', 148, 'latin1');
  const sum = copy.reduce((a, b) => a + b, 0);
  assert.equal(field(148, 8), `${sum.toString(8).padStart(6, '0')}\0 `);
  assert.equal(field(345, 155), '\0'.repeat(155), 'no prefix (PAX carries long names)');
  const types: Array<[TarEntry['type'], string]> = [['file', '0'], ['hardlink', '1'], ['symlink', '2'], ['char', '3'], ['block', '4'], ['dir', '5'], ['fifo', '6']];
  for (const [type, flag] of types) assert.equal(tarHeader({ ...plain, type }).toString('latin1', 156, 157), flag, type);
  const block = tarHeader({ ...plain, type: 'block', devmajor: 8, devminor: 1 });
  assert.equal(block.toString('latin1', 329, 345), '0000010\u00000000001\u0000');
  assert.equal(tarHeader({ ...plain, type: 'char' }).toString('latin1', 329, 345), '0000000\u00000000000\u0000', 'a device without numbers: 0, 0');
  assert.equal(tarHeader({ ...plain, devmajor: 8, devminor: 1 }).toString('latin1', 329, 345), '\0'.repeat(16), 'only devices have them');
  assert.equal(tarHeader({ ...plain, mtime: -5 }).toString('latin1', 136, 148), '00000000000\0', 'no negative mtime');
  assert.equal(TAR_END.length, 1024);
  assert.ok(TAR_END.every((b) => b === 0));
  assert.deepEqual([tarPadding(0).length, tarPadding(1).length, tarPadding(512).length, tarPadding(513).length], [0, 511, 0, 511]);
});

test('PAX only for what ustar cannot hold: 100 ASCII bytes fit, 101 or a non-printable byte do not; the largest octal ids and size fit', () => {
  const hundred = 'n'.repeat(100);
  assert.deepEqual(paxOf(tarHeader({ ...plain, name: hundred })), []);
  assert.deepEqual(paxOf(tarHeader({ ...plain, name: `${hundred}x` })), [`path=${hundred}x`]);
  assert.deepEqual(paxOf(tarHeader({ ...plain, name: 'tab\there' })), ['path=tab\there']);
  assert.deepEqual(paxOf(tarHeader({ ...plain, name: 'del\x7f' })), ['path=del\x7f']);
  assert.deepEqual(paxOf(tarHeader({ ...plain, name: ' ~' })), [], 'space and tilde are printable');
  assert.deepEqual(paxOf(tarHeader({ ...plain, type: 'symlink', linkname: hundred })), []);
  assert.deepEqual(paxOf(tarHeader({ ...plain, type: 'symlink', linkname: `${hundred}y` })), [`linkpath=${hundred}y`]);
  assert.deepEqual(paxOf(tarHeader({ ...plain, type: 'symlink', linkname: 'über' })), [`linkpath=${Buffer.from('über').toString('latin1')}`]);
  assert.deepEqual(paxOf(tarHeader({ ...plain, uid: 0o7777777, gid: 0o7777777, size: 0o77777777777 })), []);
  assert.deepEqual(paxOf(tarHeader({ ...plain, uid: 0o7777777 + 1, gid: 0o7777777 + 2, size: 0o77777777777 + 1 })), [`size=${0o77777777777 + 1}`, `uid=${0o7777777 + 1}`, `gid=${0o7777777 + 2}`]);
  const big = tarHeader({ ...plain, size: 0o77777777777 + 1 });
  assert.equal(big.subarray(big.length - 512).toString('latin1', 124, 136), '77777777777\0', 'the ustar size capped, PAX has the real one');
});

test('PAX records: xattrs sorted by name, the length prefix right where its own digits tip over, the PAX header named after the entry', () => {
  const xattrs = new Map([['user.b', Buffer.from('2')], ['user.a', Buffer.from('1')], ['security.x', Buffer.from('0')]]);
  assert.deepEqual(paxOf(tarHeader({ ...plain, xattrs })), ['SCHILY.xattr.security.x=0', 'SCHILY.xattr.user.a=1', 'SCHILY.xattr.user.b=2']);
  assert.deepEqual(paxOf(tarHeader({ ...plain, xattrs: new Map([['user.same', Buffer.from('1')], ['user.same2', Buffer.from('2')]]) })), ['SCHILY.xattr.user.same=1', 'SCHILY.xattr.user.same2=2']);
  // Records of 8 to 12 bytes of key and value: the length goes from one digit to two (and 98 to 100: two to three).
  for (let n = 1; n <= 100; n++) paxOf(tarHeader({ ...plain, xattrs: new Map([['k', Buffer.alloc(n, 0x61)]]) }));
  const header = tarHeader({ ...plain, name: `dir/${'x'.repeat(120)}/`, type: 'dir' });
  assert.equal(header.toString('latin1', 0, 13 + 80), `PaxHeaders.0/${'x'.repeat(80)}`, 'the last component, trailing slash dropped, at most 80 bytes');
  assert.equal(header.toString('latin1', 100, 108), '0000644\0');
  assert.equal(header.toString('latin1', 108, 124), '0000000\u00000000000\u0000', 'owned by 0:0');
  const ustar = header.subarray(header.length - 512);
  assert.equal(ustar.toString('latin1', 0, 100), `dir/${'x'.repeat(96)}`, 'the name field: the first 100 bytes');
});
