/**
 * An overlay upper dir as a layer, in process, read back by python's tarfile: every kind of
 * entry, in byte order with each directory's opaque marker and whiteouts first, hard links as
 * links to the first name, overlay's own xattrs left out, sockets skipped, --timestamp clamping,
 * and a redirect_dir/metacopy upper refused in one line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, linkSync, mkdirSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UnsupportedError } from '../../lib/core/errors.js';
import { upperLayer } from '../../lib/layer/upper-layer.js';
import { withTempDir } from '../helpers/paths.js';

const LIST = String.raw`
import sys, tarfile
with tarfile.open(sys.argv[1]) as t:
    for m in t:
        x = ",".join(k[13:] + "=" + v for k, v in sorted(m.pax_headers.items()) if k.startswith("SCHILY.xattr."))
        print(m.name, m.type.decode(), oct(m.mode), m.uid, m.gid, m.size, m.mtime, m.linkname, m.devmajor, m.devminor, x)
`;

/** The layer of `upper`, listed by python one entry a line. */
async function listing(dir: string, upper: string, options: Parameters<typeof upperLayer>[1] = {}): Promise<{ lines: string[]; skipped: string[] }> {
  const layer = await upperLayer(upper, options);
  const chunks: Buffer[] = [];
  for await (const chunk of layer.chunks) chunks.push(chunk);
  const file = join(dir, 'layer.tar');
  writeFileSync(file, Buffer.concat(chunks));
  return { lines: execFileSync('python3', ['-c', LIST, file], { encoding: 'utf8', timeout: 30_000 }).split('\n').filter(Boolean), skipped: layer.skipped };
}

const setxattr = (path: string, name: string, value: string) => execFileSync('python3', ['-c', 'import os,sys; os.setxattr(sys.argv[1], sys.argv[2], sys.argv[3].encode(), follow_symlinks=False)', path, name, value]);

test('every kind of entry, in order, as a layer: whiteouts and opaque markers first in their dir, links to the first name, overlay xattrs dropped, sockets skipped', () =>
  withTempDir('cp-upper-walk-', async (dir) => {
    const upper = join(dir, 'upper');
    mkdirSync(join(upper, 'd'), { recursive: true });
    writeFileSync(join(upper, 'd', 'f'), 'hello');
    chownSync(join(upper, 'd', 'f'), 1000, 100);
    chmodSync(join(upper, 'd', 'f'), 0o4640);
    linkSync(join(upper, 'd', 'f'), join(upper, 'd', 'g'));
    setxattr(join(upper, 'd', 'f'), 'user.keep', '1');
    setxattr(join(upper, 'd', 'f'), 'trusted.overlay.origin', 'x');
    symlinkSync('target', join(upper, 's'));
    execFileSync('mknod', [join(upper, 'gone'), 'c', '0', '0']);
    execFileSync('mknod', [join(upper, 'null'), 'c', '1', '3']);
    execFileSync('mknod', [join(upper, 'loop'), 'b', '7', '300']);
    execFileSync('mkfifo', [join(upper, 'p')]);
    writeFileSync(join(upper, '.wh.old'), '');
    mkdirSync(join(upper, 'o'));
    setxattr(join(upper, 'o'), 'trusted.overlay.opaque', 'y');
    mkdirSync(join(upper, 'm'));
    writeFileSync(join(upper, 'm', '.wh..wh..opq'), '');
    writeFileSync(join(upper, 'm', 'kept'), '');
    mkdirSync(join(upper, 'n'));
    setxattr(join(upper, 'n'), 'trusted.overlay.opaque', 'n');
    execFileSync('python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', join(upper, 'sock')]);
    chmodSync(join(upper, 'd'), 0o750);
    for (const path of ['d/f', 'd', 'o', 'm/kept', 'm', 'n', 'p', 'null', 'loop', '.wh.old', 'gone']) utimesSync(join(upper, path), 2000, 2000);
    const { lines, skipped } = await listing(dir, upper);
    assert.deepEqual(lines, [
      '.wh.gone 0 0o0 0 0 0 0  0 0 ',
      '.wh.old 0 0o0 0 0 0 0  0 0 ',
      'd 5 0o750 0 0 0 2000  0 0 ',
      'd/f 0 0o4640 1000 100 5 2000  0 0 user.keep=1',
      'd/g 1 0o4640 1000 100 0 2000 d/f 0 0 user.keep=1',
      'loop 4 0o644 0 0 0 2000  7 300 ',
      'm 5 0o755 0 0 0 2000  0 0 ',
      'm/.wh..wh..opq 0 0o0 0 0 0 0  0 0 ',
      'm/kept 0 0o644 0 0 0 2000  0 0 ',
      'n 5 0o755 0 0 0 2000  0 0 ',
      'null 3 0o644 0 0 0 2000  1 3 ',
      'o 5 0o755 0 0 0 2000  0 0 ',
      'o/.wh..wh..opq 0 0o0 0 0 0 0  0 0 ',
      'p 6 0o644 0 0 0 2000  0 0 ',
      `s 2 0o777 0 0 0 ${lines.find((l) => l.startsWith('s '))?.split(' ')[6]} target 0 0 `,
    ]);
    assert.deepEqual(skipped, ['/sock']);
  }));

test('--timestamp: no mtime later than it, whiteouts at it; an upper made with redirect_dir or metacopy is refused', () =>
  withTempDir('cp-upper-walk-', async (dir) => {
    const upper = join(dir, 'upper');
    mkdirSync(join(upper, 'old'), { recursive: true });
    writeFileSync(join(upper, 'new'), 'x'.repeat(3 << 20));
    execFileSync('mknod', [join(upper, 'gone'), 'c', '0', '0']);
    utimesSync(join(upper, 'old'), 500, 500);
    utimesSync(join(upper, 'new'), 5000, 5000);
    const { lines } = await listing(dir, upper, { timestamp: 1000 });
    assert.deepEqual(lines.map((l) => l.split(' ').slice(0, 7).join(' ')), ['.wh.gone 0 0o0 0 0 0 1000', `new 0 0o644 0 0 ${3 << 20} 1000`, 'old 5 0o755 0 0 0 500']);
    for (const name of ['trusted.overlay.redirect', 'trusted.overlay.metacopy']) {
      setxattr(join(upper, 'old'), name, 'y');
      await assert.rejects(upperLayer(upper), (e: unknown) => e instanceof UnsupportedError && e.message.startsWith(`/old has ${name}: the overlay was mounted with redirect_dir or metacopy`));
      execFileSync('python3', ['-c', 'import os,sys; os.removexattr(sys.argv[1], sys.argv[2])', join(upper, 'old'), name]);
    }
  }));
