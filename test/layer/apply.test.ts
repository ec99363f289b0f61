/**
 * Applying layers: every tricky case of image-spec layer.md in one three-layer image written
 * by python's tarfile, unpacked by us and by `umoci unpack`, compared entry by entry (type,
 * mode, owner, size, content, link target, device numbers, security.capability, mtimes);
 * zstd against our own gzip result (umoci 0.4 cannot read zstd); and --layers stacked as a
 * read-only overlay against the flat tree.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, readFileSync, readlinkSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { exec, mustExec } from '../helpers/exec.js';
import { tempDir } from '../helpers/paths.js';
import { describeTree, treeDiff } from '../helpers/tree.js';
import { umociUnpack, writeImage, writeTar, type EntrySpec, type LayerBlob } from '../helpers/tar-writer.js';
import { readStoredImage, unpackImage } from '../../lib/layer/unpack.js';

/** v2 file capabilities for cap_net_raw+ep: binary, with bytes >= 0x80 that UTF-8 decoding would mangle. */
const CAP_NET_RAW = Buffer.from('0100000200200000000000000000000000000000', 'hex');
const BINARY_XATTR = Buffer.from([0xff, 0xfe, 0x80, 0x00, 0x01, 0xc3]);
const T1 = 1700000000;
const T2 = 1710000000;

const layer1: EntrySpec[] = [
  { name: './', type: 'dir', mode: 0o755, mtime: T1 },
  { name: 'usr/', type: 'dir' },
  { name: 'usr/lib/', type: 'dir' },
  { name: 'usr/lib/libc.so', content: 'libc' },
  { name: 'usr/bin/', type: 'dir' },
  { name: 'usr/bin/ping', content: 'ping binary', mode: 0o755, xattrs: { 'security.capability': CAP_NET_RAW, 'user.binary': BINARY_XATTR } },
  { name: 'usr/bin/ping6', type: 'hardlink', linkname: 'usr/bin/ping' },
  { name: 'usr/bin/su', content: 'su', mode: 0o4755 },
  { name: 'usr/bin/wall', content: 'wall', mode: 0o2755, gid: 5 },
  { name: 'lib', type: 'symlink', linkname: 'usr/lib' },
  { name: 'bin', type: 'symlink', linkname: '/usr/bin' },
  { name: 'etc/', type: 'dir' },
  { name: 'etc/passwd', content: 'root:x:0:0::/root:/bin/sh\n' },
  { name: 'etc/hostname', content: 'lower\n' },
  { name: 'dev/', type: 'dir' },
  { name: 'dev/null', type: 'char', mode: 0o666, devmajor: 1, devminor: 3 },
  { name: 'dev/sda', type: 'block', mode: 0o660, gid: 6, devmajor: 8, devminor: 0 },
  { name: 'run/', type: 'dir' },
  { name: 'run/initctl', type: 'fifo', mode: 0o600 },
  { name: 'tmp/', type: 'dir', mode: 0o1777 },
  { name: 'home/', type: 'dir' },
  { name: 'home/user/', type: 'dir', mode: 0o700, uid: 1000, gid: 1000 },
  { name: 'home/user/.profile', content: 'export X=1\n', uid: 1000, gid: 1000 },
  { name: 'usr/share/', type: 'dir' },
  { name: `usr/share/${'long-directory-name-'.repeat(6)}/`, type: 'dir' },
  { name: `usr/share/${'long-directory-name-'.repeat(6)}/${'a-very-long-file-name-'.repeat(5)}.txt`, content: 'long' },
  { name: 'usr/share/naïve-ünïcødé-日本.txt', content: 'utf-8' },
  { name: 'docs/', type: 'dir' },
  { name: 'docs/a/', type: 'dir' },
  { name: 'docs/a/file', content: 'a' },
  { name: 'docs/b', content: 'b' },
  { name: 'docs/keep', content: 'keep' },
  { name: 'opq/', type: 'dir' },
  { name: 'opq/x', content: 'x' },
  { name: 'opq/y/', type: 'dir' },
  { name: 'opq/y/z', content: 'z' },
  { name: 'dir2file/', type: 'dir' },
  { name: 'dir2file/child', content: 'child' },
  { name: 'file2dir', content: 'file' },
  { name: 'big/', type: 'dir' },
  { name: 'big/zeros', zeros: 24 << 20 },
  { name: 'empty', content: '' },
  { name: 'same/', type: 'dir' },
  { name: 'same/file', content: 'lower' },
];

const layer2: EntrySpec[] = [
  { name: 'usr/', type: 'dir', mode: 0o750, mtime: T2 },
  { name: 'lib/x', content: 'through the lib symlink' },
  { name: 'bin/newcmd', content: 'through the absolute bin symlink', mode: 0o755 },
  { name: 'docs/.wh.a' },
  { name: 'docs/.wh.b' },
  { name: 'opq/new', content: 'new' },
  { name: 'opq/.wh..wh..opq' },
  { name: 'etc/.wh.hostname' },
  { name: 'etc/hostname', content: 'upper\n' },
  { name: 'etc/passwd', content: 'first\n' },
  { name: 'etc/passwd', content: 'second\n' },
  { name: 'dir2file', content: 'now a file' },
  { name: 'file2dir/', type: 'dir', mode: 0o711 },
  { name: 'file2dir/inside', content: 'inside' },
  { name: 'usr/bin/ping-link', type: 'hardlink', linkname: 'usr/bin/ping' },
  { name: 'same/file', content: 'kept' },
  { name: 'same/.wh.file' },
];

const layer3: EntrySpec[] = [
  { name: 'opq2/', type: 'dir' },
  { name: 'opq2/old', content: 'old' },
  { name: 'docs/.wh..wh..opq' },
  { name: 'docs/fresh', content: 'fresh' },
];

let work: { path: string; cleanup: () => Promise<void> };
let layout: string;
let layers: LayerBlob[];

before(async () => {
  work = await tempDir('cp-layer-');
  layout = join(work.path, 'layout');
  layers = [
    { tar: await writeTar(layer1, 'pax') },
    { tar: await writeTar(layer2, 'gnu') },
    { tar: await writeTar(layer3, 'pax'), compression: 'none' },
  ];
  await writeImage(layout, 'tricky', layers);
  await writeImage(layout, 'tricky-zstd', layers.map((l) => ({ ...l, compression: 'zstd' })));
});

after(async () => {
  await work?.cleanup();
});

async function unpack(tag: string, dest: string, extra: { layers?: boolean } = {}) {
  const image = await readStoredImage(layout, tag);
  return unpackImage(image, { dest, layers: extra.layers ?? false, rootless: false, warn: () => undefined });
}

test('tricky layers: our flat tree equals umoci unpack, entry by entry', async () => {
  const ours = join(work.path, 'ours');
  const section = await unpack('tricky', ours);
  assert.equal(section.mode, 'flat');
  assert.equal(section.path, ours);
  const theirs = await umociUnpack(layout, 'tricky', join(work.path, 'umoci'));
  const a = await describeTree(ours, { dirMtimes: true, skipRoot: true });
  const b = await describeTree(theirs, { dirMtimes: true, skipRoot: true });
  assert.deepEqual(a, b, treeDiff(a, b, ['img-unpack', 'umoci']));
});

test('tricky layers: what the spec says, checked directly', async () => {
  const root = join(work.path, 'ours');
  const read = (p: string) => readFileSync(join(root, p), 'utf8');
  assert.equal(read('usr/lib/x'), 'through the lib symlink', 'lib -> usr/lib followed inside the root');
  assert.equal(read('usr/bin/newcmd'), 'through the absolute bin symlink', 'bin -> /usr/bin resolved against the root');
  assert.equal(readlinkSync(join(root, 'lib')), 'usr/lib', 'the symlink itself is kept');
  assert.ok(!existsSync(join(root, 'docs/a')) && !existsSync(join(root, 'docs/b')) && !existsSync(join(root, 'docs/keep')));
  assert.equal(read('docs/fresh'), 'fresh');
  assert.deepEqual(await mustExec('ls', ['-A', join(root, 'opq')]), 'new\n', 'opaque whiteout applies to lower content only, in any order');
  assert.equal(read('etc/hostname'), 'upper\n');
  assert.equal(read('etc/passwd'), 'second\n', 'a repeated entry: the last wins');
  assert.equal(read('same/file'), 'kept', 'a whiteout after an entry of its own layer does not remove it');
  assert.equal(read('dir2file'), 'now a file');
  assert.equal(read('file2dir/inside'), 'inside');
  assert.equal(lstatSync(join(root, 'usr')).mode & 0o7777, 0o750, 'an existing directory takes the upper metadata');
  assert.equal(Math.floor(lstatSync(join(root, 'usr')).mtimeMs / 1000), T2, 'directory mtimes are fixed after their contents');
  assert.equal(read('usr/lib/libc.so'), 'libc', '... and keeps its contents');
  assert.equal(lstatSync(join(root, 'usr/bin/su')).mode & 0o7777, 0o4755, 'setuid survives chown');
  assert.equal(lstatSync(join(root, 'usr/bin/wall')).mode & 0o7777, 0o2755);
  assert.equal(lstatSync(join(root, 'tmp')).mode & 0o7777, 0o1777);
  assert.equal(lstatSync(join(root, 'home/user/.profile')).uid, 1000);
  assert.equal(lstatSync(join(root, 'usr/bin/ping')).ino, lstatSync(join(root, 'usr/bin/ping-link')).ino, 'hardlink to a lower layer');
  assert.equal(lstatSync(join(root, 'usr/bin/ping')).ino, lstatSync(join(root, 'usr/bin/ping6')).ino);
  assert.ok(lstatSync(join(root, 'dev/null')).isCharacterDevice());
  assert.equal(lstatSync(join(root, 'dev/null')).rdev, (1 << 8) | 3);
  assert.ok(lstatSync(join(root, 'dev/sda')).isBlockDevice());
  assert.ok(lstatSync(join(root, 'run/initctl')).isFIFO());
  assert.equal(lstatSync(join(root, 'big/zeros')).size, 24 << 20, 'a large, highly compressible file is not a bomb');
  assert.match(await mustExec('getcap', [join(root, 'usr/bin/ping')]), /cap_net_raw[=+]ep/);
  const dump = await mustExec('getfattr', ['-n', 'user.binary', '-e', 'hex', '--absolute-names', join(root, 'usr/bin/ping')]);
  assert.match(dump, new RegExp(`user.binary=0x${BINARY_XATTR.toString('hex')}`), 'binary PAX xattr values byte for byte');
});

test('zstd layers give the same tree as gzip ones (umoci 0.4 cannot read zstd)', async () => {
  const zstdRoot = join(work.path, 'zstd');
  await unpack('tricky-zstd', zstdRoot);
  const a = await describeTree(zstdRoot, { dirMtimes: true, skipRoot: true });
  const b = await describeTree(join(work.path, 'ours'), { dirMtimes: true, skipRoot: true });
  assert.deepEqual(a, b, treeDiff(a, b, ['zstd', 'gzip']));
});

test('--layers: the layer dirs stacked as a read-only overlay show the flat tree', async () => {
  const dir = join(work.path, 'layers');
  const section = await unpack('tricky', dir, { layers: true });
  assert.equal(section.mode, 'layers');
  assert.equal(section.layers?.length, 3);
  const merged = join(work.path, 'merged');
  mkdirSync(merged);
  await mustExec('mount', ['-t', 'overlay', 'overlay', '-o', `ro,lowerdir=${[...(section.layers ?? [])].reverse().join(':')}`, merged]);
  try {
    const a = await describeTree(merged, { dirMtimes: true, skipRoot: true });
    const b = await describeTree(join(work.path, 'ours'), { dirMtimes: true, skipRoot: true });
    assert.deepEqual(a, b, treeDiff(a, b, ['overlay', 'flat']));
  } finally {
    await exec('umount', [merged]);
  }
  // Whiteouts are stored in overlayfs form in the layer that has them.
  const second = section.layers?.[1] as string;
  const whiteout = lstatSync(join(second, 'docs/a'));
  assert.ok(whiteout.isCharacterDevice() && whiteout.rdev === 0, 'docs/.wh.a became a 0/0 character device');
  assert.match(await mustExec('getfattr', ['-n', 'trusted.overlay.opaque', '--absolute-names', join(second, 'opq')]), /trusted.overlay.opaque="y"/);
  assert.ok(!existsSync(join(second, 'docs/.wh.a')) && !existsSync(join(second, 'opq/.wh..wh..opq')));
});

test('--layers: an unpacked layer is reused, not unpacked again', async () => {
  const dir = join(work.path, 'layers');
  const diffID = (await readStoredImage(layout, 'tricky')).config.rootfs.diff_ids[0] as string;
  const before = lstatSync(join(dir, diffID.slice(7))).ino;
  const section = await unpack('tricky', dir, { layers: true });
  assert.equal(lstatSync(section.layers?.[0] as string).ino, before);
});

test('a file in a setgid directory of a lower layer still gets the owner its header names (no chown is skipped there)', async () => {
  const tag = 'setgid';
  const lower: EntrySpec[] = [{ name: 'shared/', type: 'dir', mode: 0o2775, gid: 5 }];
  const upper: EntrySpec[] = [
    { name: 'shared/root-file', content: 'mine', uid: 0, gid: 0 },
    { name: 'shared/other', content: 'theirs', uid: 7, gid: 8 },
    { name: 'plain', content: 'plain', mode: 0o640 },
  ];
  await writeImage(layout, tag, [{ tar: await writeTar(lower) }, { tar: await writeTar(upper) }]);
  const ours = join(work.path, 'setgid-ours');
  await unpack(tag, ours);
  assert.equal(lstatSync(join(ours, 'shared/root-file')).gid, 0, 'not the directory group 5');
  assert.equal(lstatSync(join(ours, 'shared/other')).uid, 7);
  assert.equal(lstatSync(join(ours, 'plain')).mode & 0o7777, 0o640);
  const theirs = await umociUnpack(layout, tag, join(work.path, 'setgid-umoci'));
  const a = await describeTree(ours, { dirMtimes: true, skipRoot: true });
  const b = await describeTree(theirs, { dirMtimes: true, skipRoot: true });
  assert.deepEqual(a, b, treeDiff(a, b, ['img-unpack', 'umoci']));
});
