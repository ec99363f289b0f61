/**
 * img-unpack end to end: the command forms, hostile layers (the host stays untouched), the
 * diff_id check (nothing left half-written), the lab busybox and debian images against
 * `umoci unpack` and as a read-only overlay, and a rootless unpack as a user made with useradd.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { exec, mustExec, tool } from '../helpers/exec.js';
import { SCRIPTS, tempDir, toolPath } from '../helpers/paths.js';
import { describeTree, treeDiff } from '../helpers/tree.js';
import { umociUnpack, writeImage, writeTar, type EntrySpec } from '../helpers/tar-writer.js';
import { createTestUser } from '../helpers/users.js';

let work: { path: string; cleanup: () => Promise<void> };
let layout: string;
let outside: string;
const canary = `/tmp/cp-unpack-canary-${process.pid}`;

before(async () => {
  work = await tempDir('cp-unpack-');
  chmodSync(work.path, 0o755);
  layout = join(work.path, 'layout');
  outside = join(work.path, 'outside');
  mkdirSync(outside);
  writeFileSync(join(outside, 'victim'), 'original\n');
  await writeImage(layout, 'small', [{ tar: await writeTar([{ name: 'etc/', type: 'dir' }, { name: 'etc/hostname', content: 'small\n' }]) }]);
});

after(async () => {
  await exec('rm', ['-rf', canary]);
  await work?.cleanup();
});

/** The host around the destination, as it must stay. */
function hostState(): string {
  const victim = readFileSync(join(outside, 'victim'), 'utf8');
  return JSON.stringify({ outside: readdirSync(outside), victim, canary: existsSync(canary), passwdLinks: lstatSync('/etc/passwd').nlink, tmpEtc: existsSync('/tmp/etc') });
}

function unpackArgs(tag: string, dest: string, extra: string[] = []): string[] {
  return ['--store', layout, '--image', tag, '--dest', dest, ...extra];
}

test('standalone: --store --image --dest; the document carries the rootfs and the config', async () => {
  const dest = join(work.path, 'small-root');
  const result = await tool('img-unpack', unpackArgs('small', dest));
  assert.equal(result.status, 0, result.stderr);
  const doc = JSON.parse(result.stdout);
  assert.equal(doc.rootfs.mode, 'flat');
  assert.equal(doc.rootfs.path, dest);
  assert.deepEqual(doc.rootfs.skipped, []);
  assert.equal(doc.rootfs.config.rootfs.type, 'layers');
  assert.equal(doc.image.reference, 'small');
  assert.equal(readFileSync(join(dest, 'etc/hostname'), 'utf8'), 'small\n');
  assert.deepEqual(readdirSync(work.path).filter((n) => n.includes('unpacking')), [], 'no temp dir left');
});

test('bad input and flags: one line, exit 2, nothing on stdout', async () => {
  for (const [input, pattern] of [
    ['{"documentVersion":1,', /^img-unpack: input: truncated JSON document\n$/],
    ['{"documentVersion":1,"image":{"reference":"x"}}', /^img-unpack: input\.image: missing required field/],
    ['{"documentVersion":1}', /^img-unpack: no image: pipe in img-fetch output/],
  ] as const) {
    const result = await tool('img-unpack', ['--dest', join(work.path, 'never')], { input });
    assert.equal(result.status, 2, result.stderr);
    assert.equal(result.stdout, '');
    assert.match(result.stderr, pattern);
    assert.equal(result.stderr.trim().split('\n').length, 1);
  }
  assert.ok(!existsSync(join(work.path, 'never')));
});

test('a destination that is not empty is refused, and left as it was', async () => {
  const dest = join(work.path, 'occupied');
  mkdirSync(dest);
  writeFileSync(join(dest, 'mine'), 'keep');
  const result = await tool('img-unpack', unpackArgs('small', dest));
  assert.equal(result.status, 1);
  assert.match(result.stderr, /^img-unpack: --dest .*occupied exists and is not empty \(remove it, or choose another destination\)\n$/);
  assert.deepEqual(readdirSync(dest), ['mine']);
});

test('a layer whose content does not match its diff_id: an error, and no destination', async () => {
  await writeImage(layout, 'wrong-diffid', [{ tar: await writeTar([{ name: 'file', content: 'x' }]), diffID: `sha256:${'0'.repeat(64)}` }]);
  const dest = join(work.path, 'wrong');
  const result = await tool('img-unpack', unpackArgs('wrong-diffid', dest));
  assert.equal(result.status, 1);
  assert.match(result.stderr, /^img-unpack: layer 1 \(sha256:[0-9a-f]{64}\): its uncompressed content has digest sha256:[0-9a-f]{64}, but the image config's rootfs\.diff_ids\[0\] is sha256:0{64}\n$/);
  assert.ok(!existsSync(dest));
  assert.deepEqual(readdirSync(work.path).filter((n) => n.includes('unpacking')), []);
  const layers = await tool('img-unpack', unpackArgs('wrong-diffid', join(work.path, 'wrong-layers'), ['--layers']));
  assert.equal(layers.status, 1);
  assert.deepEqual(readdirSync(join(work.path, 'wrong-layers')), [], 'no layer dir under its final name');
});

test('a layer that is not valid gzip or zstd: one line naming the layer, and no destination', async () => {
  const tar = await writeTar([{ name: 'file', content: 'x'.repeat(100_000) }]);
  const gzip = gzipSync(tar);
  // A gzip stream cut in the middle, and zstd's magic number followed by garbage.
  await writeImage(layout, 'bad-gzip', [{ tar, stored: gzip.subarray(0, gzip.length >> 1) }]);
  await writeImage(layout, 'bad-zstd', [{ tar, compression: 'zstd', stored: Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), Buffer.alloc(64, 7)]) }]);
  for (const [tag, pattern] of [
    ['bad-gzip', /^img-unpack: layer sha256:[0-9a-f]{64}: not valid gzip data \(.+\)\n$/],
    ['bad-zstd', /^img-unpack: layer sha256:[0-9a-f]{64}: zstd could not decompress it \(.+\)\n$/],
  ] as const) {
    const dest = join(work.path, tag);
    const result = await tool('img-unpack', unpackArgs(tag, dest));
    assert.equal(result.status, 1, result.stderr);
    assert.match(result.stderr, pattern);
    assert.equal(result.stdout, '');
    assert.ok(!existsSync(dest), `${tag}: no destination`);
    assert.deepEqual(readdirSync(work.path).filter((n) => n.includes('unpacking')), [], `${tag}: no temp dir left`);
  }
});

test('hostile layers are contained: our tree equals umoci, and the host is untouched', async () => {
  const before = hostState();
  const climb = '../'.repeat(12);
  const layer1: EntrySpec[] = [
    { name: 'etc/', type: 'dir' },
    { name: 'etc/passwd', content: 'inside\n' },
    { name: `${climb}${outside.slice(1)}/victim`, content: 'pwned by ../\n' },
    { name: `${canary}/absolute`, content: 'pwned by an absolute name\n' },
    { name: 'escape', type: 'symlink', linkname: `${climb}${outside.slice(1)}` },
    { name: 'escape/victim', content: 'pwned through a relative symlink\n' },
    { name: 'root-link', type: 'symlink', linkname: '/' },
    { name: 'hl', type: 'hardlink', linkname: `${climb}etc/passwd` },
    { name: 'shadow', type: 'symlink', linkname: '/etc/shadow' },
    { name: 'shadow-hl', type: 'hardlink', linkname: 'shadow' },
    { name: 'swap/', type: 'dir' },
    { name: 'swap/f', content: 'f' },
  ];
  const layer2: EntrySpec[] = [
    { name: `root-link${canary}/through-lower-symlink`, content: 'pwned through a lower layer symlink\n' },
    { name: 'root-link/tmp/etc/x', content: 'inside\n' },
    { name: `root-link${outside}/.wh.victim` },
    { name: `${climb}.wh.victim` },
    { name: 'swap', type: 'symlink', linkname: outside },
    { name: 'swap/victim', content: 'pwned through a swapped dir\n' },
  ];
  await writeImage(layout, 'hostile', [{ tar: await writeTar(layer1) }, { tar: await writeTar(layer2) }]);
  const dest = join(work.path, 'hostile-root');
  const result = await tool('img-unpack', unpackArgs('hostile', dest));
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stderr, /warning: layer entry "\.\.\/\.\.\/.*victim" names a path outside the root; applied as "\/.*victim" inside it/);
  assert.equal(hostState(), before, 'nothing outside the destination changed');
  assert.equal(readFileSync(join(dest, outside.slice(1), 'victim'), 'utf8'), 'pwned through a swapped dir\n');
  assert.equal(readFileSync(join(dest, canary.slice(1), 'through-lower-symlink'), 'utf8'), 'pwned through a lower layer symlink\n');
  assert.equal(lstatSync(join(dest, 'hl')).ino, lstatSync(join(dest, 'etc/passwd')).ino, 'the hardlink points at the root filesystem');
  assert.ok(lstatSync(join(dest, 'shadow-hl')).isSymbolicLink());
  const theirs = await umociUnpack(layout, 'hostile', join(work.path, 'hostile-umoci'));
  assert.equal(hostState(), before);
  const a = await describeTree(dest, { dirMtimes: false, skipRoot: true });
  const b = await describeTree(theirs, { dirMtimes: false, skipRoot: true });
  assert.deepEqual(a, b, treeDiff(a, b, ['img-unpack', 'umoci']));
});

test('refused entries: one line naming the entry, nothing left behind, host untouched', async () => {
  const before = hostState();
  const cases: Array<[string, EntrySpec[][], RegExp]> = [
    ['loop', [[{ name: 'l1', type: 'symlink', linkname: 'l2' }, { name: 'l2', type: 'symlink', linkname: 'l1' }, { name: 'l1/x', content: 'x' }]], /layer entry "l1\/x": too many levels of symbolic links/],
    ['dot-symlink', [[{ name: '.', type: 'symlink', linkname: outside }, { name: 'victim', content: 'x' }]], /layer entry "\." would replace the root directory with a symlink \(refused\)/],
    ['slash-symlink', [[{ name: '/', type: 'symlink', linkname: outside }]], /layer entry "\/" would replace the root directory with a symlink/],
    ['whiteout-dotdot', [[{ name: 'a/', type: 'dir' }], [{ name: 'a/.wh...' }]], /layer entry "a\/\.wh\.\.\.": a whiteout of "\.\." would remove a parent directory \(refused\)/],
    ['hardlink-outside', [[{ name: 'hl', type: 'hardlink', linkname: '../../../../../etc/hostname' }]], /layer entry "hl": hardlink to "\.\.\/.*etc\/hostname", which is not in this or a lower layer/],
  ];
  for (const [tag, layers, pattern] of cases) {
    await writeImage(layout, tag, await Promise.all(layers.map(async (entries) => ({ tar: await writeTar(entries) }))));
    const dest = join(work.path, `refused-${tag}`);
    const result = await tool('img-unpack', unpackArgs(tag, dest));
    assert.equal(result.status, 1, `${tag}: ${result.stderr}`);
    assert.match(result.stderr, pattern, tag);
    assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
    assert.equal(result.stdout, '');
    assert.ok(!existsSync(dest), tag);
  }
  assert.deepEqual(readdirSync(work.path).filter((n) => n.includes('unpacking')), []);
  assert.equal(hostState(), before);
});

test('the lab busybox image: img-fetch | img-unpack, flat and --layers, equals umoci', async () => {
  const bb = join(work.path, 'busybox');
  await mustExec(join(SCRIPTS, 'build-busybox-image.sh'), [join(bb, 'build'), `oci:${join(bb, 'layout')}:busybox`]);
  const store = join(bb, 'store');
  const fetched = await tool('img-fetch', [`oci:${join(bb, 'layout')}:busybox`, '--store', store]);
  assert.equal(fetched.status, 0, fetched.stderr);
  const flat = await tool('img-unpack', ['--dest', join(bb, 'rootfs')], { input: fetched.stdout });
  assert.equal(flat.status, 0, flat.stderr);
  const doc = JSON.parse(flat.stdout);
  assert.equal(doc.rootfs.path, join(bb, 'rootfs'));
  assert.equal(doc.image.digest, JSON.parse(fetched.stdout).image.digest, 'the image section passes through');
  const theirs = await umociUnpack(join(bb, 'layout'), 'busybox', join(bb, 'umoci'));
  const a = await describeTree(join(bb, 'rootfs'), { dirMtimes: true, skipRoot: true });
  const b = await describeTree(theirs, { dirMtimes: true, skipRoot: true });
  assert.deepEqual(a, b, treeDiff(a, b, ['img-unpack', 'umoci']));
  // --layers without --dest: the layer cache in the store.
  const layered = await tool('img-unpack', ['--layers'], { input: fetched.stdout });
  assert.equal(layered.status, 0, layered.stderr);
  const layers = JSON.parse(layered.stdout).rootfs.layers as string[];
  assert.equal(layers.length, 2);
  for (const dir of layers) assert.ok(dir.startsWith(join(store, 'layers') + '/'), dir);
  await assertOverlayEquals(layers, join(bb, 'rootfs'), join(bb, 'merged'));
});

/** Mounts the layer dirs (lowest first) as a read-only overlay and compares it with a flat tree; always unmounts. */
async function assertOverlayEquals(layers: string[], flat: string, merged: string): Promise<void> {
  mkdirSync(merged, { recursive: true });
  await mustExec('mount', ['-t', 'overlay', 'overlay', '-o', `ro,lowerdir=${[...layers].reverse().join(':')}`, merged]);
  try {
    const a = await describeTree(merged, { dirMtimes: true, skipRoot: true });
    const b = await describeTree(flat, { dirMtimes: true, skipRoot: true });
    assert.deepEqual(a, b, treeDiff(a, b, ['overlay', 'flat']));
  } finally {
    await exec('umount', [merged]);
  }
}

test('the lab debian image (debootstrap minbase, two layers with whiteouts): flat equals umoci, --layers equals flat', { timeout: 900_000 }, async () => {
  const deb = join(work.path, 'debian');
  await mustExec(join(SCRIPTS, 'build-debian-image.sh'), [join(deb, 'build'), `oci:${join(deb, 'layout')}:debian`], { timeoutMs: 900_000 });
  const rootfs = join(deb, 'rootfs');
  const result = await tool('img-unpack', ['--store', join(deb, 'layout'), '--image', 'debian', '--dest', rootfs]);
  assert.equal(result.status, 0, result.stderr);
  const theirs = await umociUnpack(join(deb, 'layout'), 'debian', join(deb, 'umoci'));
  const a = await describeTree(rootfs, { dirMtimes: true, skipRoot: true });
  const b = await describeTree(theirs, { dirMtimes: true, skipRoot: true });
  assert.ok(a.length > 5000, `${a.length} entries`);
  assert.deepEqual(a, b, treeDiff(a, b, ['img-unpack', 'umoci']));
  assert.match(await mustExec('getcap', [join(rootfs, 'usr/local/bin/cap-net-raw')]), /cap_net_raw[=+]ep/);
  assert.equal(lstatSync(join(rootfs, 'usr/local/bin/setuid-true')).mode & 0o7777, 0o4755);
  assert.ok(lstatSync(join(rootfs, 'srv')).isFile() && lstatSync(join(rootfs, 'etc/motd')).isDirectory());
  assert.ok(!existsSync(join(rootfs, 'usr/share/doc/bash')), 'whiteouts of the second layer applied');
  assert.ok(lstatSync(join(rootfs, 'dev/null')).isCharacterDevice());
  const layered = await tool('img-unpack', ['--store', join(deb, 'layout'), '--image', 'debian', '--layers', '--dest', join(deb, 'layers')]);
  assert.equal(layered.status, 0, layered.stderr);
  await assertOverlayEquals(JSON.parse(layered.stdout).rootfs.layers, rootfs, join(deb, 'merged'));
});

test('--explain prints the tar and umoci steps and does nothing', async () => {
  const dest = join(work.path, 'explained');
  const result = await tool('img-unpack', [...unpackArgs('small', dest), '--explain']);
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stdout, /gzip -dc .*\| sha256sum/);
  assert.match(result.stdout, /tar -x -C .*explained --numeric-owner/);
  assert.match(result.stdout, /umoci unpack --image/);
  assert.ok(!existsSync(dest));
});

test('rootless: files owned by the caller, owners in user.rootlesscontainers like umoci --rootless, devices skipped and listed, setuid kept', async () => {
  const user = await createTestUser('cpunpack');
  const USER = user.name;
  const entries: EntrySpec[] = [
    { name: 'dev/', type: 'dir' },
    { name: 'dev/null', type: 'char', mode: 0o666, devmajor: 1, devminor: 3 },
    { name: 'bin/', type: 'dir', mode: 0o555 },
    { name: 'bin/su', content: 'su', mode: 0o4755 },
    { name: 'bin/ping', content: 'ping', mode: 0o755, xattrs: { 'security.capability': Buffer.from('0100000200200000000000000000000000000000', 'hex') } },
    { name: 'home/', type: 'dir' },
    { name: 'home/user/', type: 'dir', mode: 0o700, uid: 1000, gid: 1000 },
    { name: 'home/user/.profile', content: 'x', uid: 1000, gid: 100 },
    { name: 'run/', type: 'dir' },
    { name: 'run/fifo', type: 'fifo', mode: 0o600 },
  ];
  await writeImage(layout, 'rootless', [{ tar: await writeTar(entries) }, { tar: await writeTar([{ name: 'bin/new', content: 'in a 0555 dir', mode: 0o755 }, { name: 'home/.wh.gone' }]) }]);
  const home = user.home;
  const dest = join(home, `rootfs-${process.pid}`);
  const bundle = join(home, `umoci-${process.pid}`);
  const layersDir = join(home, `layers-${process.pid}`);
  const merged = join(home, `merged-${process.pid}`);
  const asUser = (program: string, args: string[]) => exec('runuser', ['-u', USER, '--', program, ...args], { env: { HOME: home } });
  try {
    const result = await asUser(process.execPath, [toolPath('img-unpack'), ...unpackArgs('rootless', dest)]);
    assert.equal(result.status, 0, result.stderr);
    const doc = JSON.parse(result.stdout);
    assert.deepEqual(doc.rootfs.skipped, [
      { path: '/dev/null', reason: 'char device 1:3: creating device nodes needs root' },
      { path: '/bin/ping', reason: 'xattr security.capability: setting it needs root' },
    ]);
    const uid = user.uid;
    assert.equal(lstatSync(join(dest, 'home/user/.profile')).uid, uid);
    assert.equal(lstatSync(join(dest, 'bin/su')).mode & 0o7777, 0o4755, 'setuid kept');
    assert.equal(lstatSync(join(dest, 'bin')).mode & 0o7777, 0o555, 'a read-only directory was written into and restored');
    assert.ok(lstatSync(join(dest, 'run/fifo')).isFIFO(), 'FIFOs need no privilege');
    const umoci = await asUser('umoci', ['unpack', '--rootless', '--image', `${layout}:rootless`, bundle]);
    assert.equal(umoci.status, 0, umoci.stderr);
    // umoci --rootless leaves an empty mode-0 file where a device was; we skip it and say so.
    const options = { dirMtimes: true, skipRoot: true, exclude: (rel: string) => rel === 'dev/null' };
    const a = await describeTree(dest, options);
    const b = await describeTree(join(bundle, 'rootfs'), options);
    assert.deepEqual(a, b, treeDiff(a, b, ['img-unpack', 'umoci --rootless']));
    assert.ok(a.some((line) => line.startsWith('/home/user/.profile ') && line.includes('user.rootlesscontainers=0x08e80710')), a.join('\n'));

    // --layers, rootless: whiteouts as 0/0 devices (no privilege needed), user.overlay.opaque;
    // mounted with userxattr in the user's own user+mount namespace it shows the flat tree.
    const layered = await asUser(process.execPath, [toolPath('img-unpack'), ...unpackArgs('rootless', layersDir, ['--layers'])]);
    assert.equal(layered.status, 0, layered.stderr);
    const rootfs = JSON.parse(layered.stdout).rootfs;
    assert.equal(rootfs.userxattr, true);
    mkdirSync(merged);
    chmodSync(merged, 0o777);
    const treeModule = new URL('../helpers/tree.js', import.meta.url).href;
    const script = `import { describeTree } from '${treeModule}'; const o = { dirMtimes: true, skipRoot: true }; const [a, b] = [await describeTree('${merged}', o), await describeTree('${dest}', o)]; console.log(JSON.stringify(a) === JSON.stringify(b) ? 'same' : JSON.stringify([a, b]));`;
    const lower = [...rootfs.layers].reverse().join(':');
    const compared = await asUser('unshare', ['-Urm', 'sh', '-c', `mount -t overlay overlay -o ro,userxattr,lowerdir=${lower} ${merged} && exec ${process.execPath} --input-type=module -e "$0"`, script]);
    assert.equal(compared.stdout.trim(), 'same', compared.stderr);
  } finally {
    await user.remove();
  }
});

