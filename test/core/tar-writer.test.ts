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
