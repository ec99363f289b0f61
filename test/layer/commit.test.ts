/**
 * img-commit against the real kernel's overlay and the oracles: umoci unpack of the committed
 * image is the merged tree the container saw; the same changes committed twice (a clamped
 * timestamp) are the same image, byte for byte; runc runs the result; bad input is one line
 * and leaves the store as it was. Each oracle comparison has a negative twin that must differ.
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { link, mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { assertOneLineError, exec, mustExec, tool } from '../helpers/exec.js';
import { mountingWorkDir } from '../helpers/mounts.js';
import { SCRIPTS, toolPath } from '../helpers/paths.js';
import { describeTree, treeDiff } from '../helpers/tree.js';
import { snapshotStore } from '../helpers/store-snapshot.js';
import { ociSchema } from '../helpers/oci-schema.js';

let store: string;
const work = mountingWorkDir('cp-commit-', (path) => {
  store = join(path, 'store');
});
let fetched: string;

/** A new container of the lab busybox image (img-unpack --layers | ovl-mount): its document and merged dir. */
async function container(name: string): Promise<{ doc: string; merged: string; file: string }> {
  const unpacked = await tool('img-unpack', ['--layers'], { input: fetched });
  assert.equal(unpacked.status, 0, unpacked.stderr);
  const mounted = await tool('ovl-mount', ['--name', name], { input: unpacked.stdout });
  assert.equal(mounted.status, 0, mounted.stderr);
  const file = join(work.path, `${name}.json`);
  await writeFile(file, mounted.stdout);
  return { doc: mounted.stdout, merged: JSON.parse(mounted.stdout).mount.target, file };
}

async function unmount(doc: string): Promise<void> {
  await tool('ovl-mount', ['--unmount'], { input: doc });
}

/** What a container does to its root: every kind of change a layer must carry. */
async function changeRoot(merged: string): Promise<void> {
  await writeFile(join(merged, 'etc', 'motd'), 'hi\n');
  await rm(join(merged, 'bin', 'ls'));
  await rm(join(merged, 'etc'), { recursive: true, force: true, maxRetries: 0 }).catch(() => undefined);
  await mkdir(join(merged, 'etc'), { recursive: true });
  await writeFile(join(merged, 'etc', 'motd'), 'hi\n');
  await mkdir(join(merged, 'opt', 'deep', 'er'), { recursive: true, mode: 0o750 });
  await writeFile(join(merged, 'opt', 'deep', 'er', 'f'), Buffer.alloc(70_000, 7), { mode: 0o4755 });
  await link(join(merged, 'opt', 'deep', 'er', 'f'), join(merged, 'opt', 'hardlink'));
  await symlink('../etc/motd', join(merged, 'opt', 'symlink'));
  await writeFile(join(merged, 'opt', `${'long-name-'.repeat(12)}.txt`), 'a name over 100 bytes\n');
  await mustExec('mkfifo', [join(merged, 'opt', 'fifo')]);
  await mustExec('mknod', [join(merged, 'opt', 'null'), 'c', '1', '3']);
  await mustExec('chown', ['1234:5678', join(merged, 'opt', 'fifo')]);
  await mustExec('chown', ['-h', '1234:5678', join(merged, 'opt', 'symlink')]);
  await mustExec('setcap', ['cap_net_raw+ep', join(merged, 'bin', 'busybox')]);
  await mustExec('setfattr', ['-n', 'user.note', '-v', 'kept', join(merged, 'etc', 'motd')]);
  // Bound by a relative name: a socket's path may be at most 108 bytes.
  await mustExec('python3', ['-c', "import socket; socket.socket(socket.AF_UNIX).bind('sock')"], { cwd: join(merged, 'opt') });
}

const NOT_SOCKET = (rel: string) => rel === 'opt/sock';

/** Layers keep whole seconds (as docker's and buildah's do): the merged tree's mtimes, cut to seconds. */
function toSeconds(lines: string[]): string[] {
  return lines.map((line) => line.replace(/mtime=(\d+)\d{3}\b/, 'mtime=$1000'));
}

async function commit(args: string[], input: string, env: NodeJS.ProcessEnv = {}): Promise<{ doc: Record<string, any>; stderr: string }> {
  const result = await tool('img-commit', args, { input, env });
  assert.equal(result.status, 0, result.stderr);
  return { doc: JSON.parse(result.stdout), stderr: result.stderr };
}

async function umociTree(name: string, dir: string): Promise<string[]> {
  await mustExec('umoci', ['unpack', '--image', `${store}:${name}`, dir]);
  return describeTree(join(dir, 'rootfs'), { skipRoot: true });
}

/**
 * A layer's entries as python's tarfile reads them (name, type, permission bits (Go's tar adds the
 * file type's, GNU tar and we do not; a whiteout's are nobody's business), owner, size, link, device, PAX xattrs), sorted, without mtimes.
 */
async function layerEntries(blob: string): Promise<string[]> {
  const script = String.raw`
import sys, tarfile
with tarfile.open(sys.argv[1]) as t:
    for m in t:
        x = sorted(k + "=" + v.encode("utf-8", "surrogateescape").hex() for k, v in m.pax_headers.items() if k.startswith("SCHILY.xattr."))
        print(m.name, m.type.decode(), "-" if "/.wh." in "/" + m.name else oct(m.mode & 0o7777), m.uid, m.gid, m.size, m.linkname, m.devmajor if m.ischr() else "", m.devminor if m.ischr() else "", *x)
`;
  return (await mustExec('python3', ['-c', script, blob])).split('\n').filter(Boolean).sort();
}

/** buildah (its own root, runroot and containers.conf) from the same image, the same changes made in its mount, committed uncompressed: its new layer. */
async function buildahLayer(dir: string, layout: string, change: (merged: string) => Promise<void>): Promise<string> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'containers.conf'), '');
  await writeFile(join(dir, 'registries.conf'), 'unqualified-search-registries = []\n');
  const env = { CONTAINERS_CONF: join(dir, 'containers.conf'), CONTAINERS_REGISTRIES_CONF: join(dir, 'registries.conf') };
  const buildah = (args: string[]) => mustExec('buildah', ['--root', join(dir, 'root'), '--runroot', join(dir, 'run'), '--storage-driver', 'overlay', ...args], { env, timeoutMs: 120_000 });
  const name = `cp-commit-${process.pid}`;
  // Through skopeo: buildah names an image pulled from oci:PATH after the path, which may not be a valid name.
  await mustExec('skopeo', ['copy', '-q', `oci:${layout}:busybox`, `containers-storage:[overlay@${join(dir, 'root')}+${join(dir, 'run')}]localhost/lab-busybox:latest`], { env, timeoutMs: 120_000 });
  await buildah(['from', '--pull-never', '--name', name, 'localhost/lab-busybox:latest']);
  try {
    await change((await buildah(['mount', name])).trim());
    await buildah(['commit', '--disable-compression', name, `oci:${join(dir, 'out')}:x`]);
  } finally {
    await buildah(['rm', name]).catch(() => undefined);
  }
  const index = JSON.parse(await readFile(join(dir, 'out', 'index.json'), 'utf8'));
  const manifest = JSON.parse(await readFile(join(dir, 'out', 'blobs', 'sha256', (index.manifests[0].digest as string).slice(7)), 'utf8'));
  return join(dir, 'out', 'blobs', 'sha256', (manifest.layers.at(-1).digest as string).slice(7));
}

describe('img-commit', () => {
  before(async () => {
    const layout = join(work.path, 'layout');
    await mustExec(join(SCRIPTS, 'build-busybox-image.sh'), [join(work.path, 'build'), `oci:${layout}:busybox`]);
    const result = await tool('img-fetch', [`oci:${layout}:busybox`, '--store', store]);
    assert.equal(result.status, 0, result.stderr);
    fetched = result.stdout;
  });

  test('umoci unpack of the committed image is the merged tree; the base image is not (the negative twin)', async () => {
    const c = await container('oracle');
    try {
      await changeRoot(c.merged);
      const merged = toSeconds(await describeTree(c.merged, { skipRoot: true, exclude: NOT_SOCKET }));
      const { doc, stderr } = await commit(['--name', 'localhost/oracle:1'], c.doc);
      assert.match(stderr, /skipped \/opt\/sock/);
      assert.deepEqual(doc.commit.skipped, ['/opt/sock']);
      const ours = await umociTree('localhost/oracle:1', join(work.path, 'oracle-umoci'));
      assert.deepEqual(ours, merged, treeDiff(ours, merged, ['umoci', 'merged']));
      assert.ok(ours.some((l) => l.startsWith('/bin/busybox ') && l.includes('security.capability=0x01000002')), 'the capability is kept byte for byte');
      assert.ok(!ours.some((l) => l.includes('trusted.overlay')), "overlay's own xattrs are not in the layer");
      const base = await umociTree(JSON.parse(fetched).image.reference, join(work.path, 'oracle-base'));
      assert.notDeepEqual(base, merged, 'the base image differs from the changed tree');
    } finally {
      await unmount(c.doc);
    }
  });

  test('buildah commit of the same changes has the same entries; of other changes, not (the twin)', async () => {
    const c = await container('buildah');
    let ours: string[];
    try {
      await changeRoot(c.merged);
      const { doc } = await commit(['--compression', 'none', '--name', 'localhost/buildah:1'], c.doc);
      ours = await layerEntries(join(store, 'blobs', 'sha256', (doc.commit.layer.digest as string).slice(7)));
    } finally {
      await unmount(c.doc);
    }
    const layout = join(work.path, 'layout');
    const theirs = await layerEntries(await buildahLayer(join(work.path, 'buildah-same'), layout, changeRoot));
    assert.deepEqual(ours, theirs, treeDiff(ours, theirs, ['img-commit', 'buildah']));
    const other = await layerEntries(await buildahLayer(join(work.path, 'buildah-other'), layout, (merged) => writeFile(join(merged, 'etc', 'motd'), 'hi\n')));
    assert.notDeepEqual(ours, other);
  });

  test('the layer: whiteouts before their siblings, the opaque marker, sorted, no user or group names', async () => {
    const c = await container('entries');
    try {
      await changeRoot(c.merged);
      const { doc } = await commit(['--compression', 'none', '--name', 'localhost/entries:1'], c.doc);
      const blob = join(store, 'blobs', 'sha256', (doc.commit.layer.digest as string).slice(7));
      assert.equal(doc.commit.layer.digest, doc.commit.layer.diffID, 'uncompressed: the digest is the diff_id');
      const listing = (await mustExec('tar', ['-tvf', blob])).split('\n').filter(Boolean);
      const names = listing.map((l) => l.split(/\s+/).slice(5).join(' ').replace(/ -> .*| link to .*/, ''));
      assert.deepEqual(names.slice(0, 3), ['bin/', 'bin/.wh.ls', 'bin/busybox']);
      assert.equal(names[names.indexOf('etc/') + 1], 'etc/.wh..wh..opq', 'the recreated etc/ is opaque, its marker first');
      assert.ok(listing.every((l) => / 0\/0 | 1234\/5678 /.test(l.replace(/\s+/g, ' '))), 'numeric owners, no names');
      const ustar = await readFile(blob);
      assert.equal(ustar.subarray(265, 265 + 32).toString().replace(/\0+$/, ''), '', 'uname empty');
    } finally {
      await unmount(c.doc);
    }
  });

  test('the same changes committed twice with SOURCE_DATE_EPOCH: the same diff_id, blob and manifest; another timestamp differs', async () => {
    const digests: string[][] = [];
    for (const [name, epoch] of [['again-a', '1700000000'], ['again-b', '1700000000'], ['again-c', '1600000000']] as const) {
      const c = await container(name);
      try {
        await writeFile(join(c.merged, 'etc', 'motd'), 'same\n');
        await rm(join(c.merged, 'bin', 'ls'));
        const { doc } = await commit(['--name', `localhost/again:${name}`, '--change', 'CMD ["cat","/etc/motd"]'], c.doc, { SOURCE_DATE_EPOCH: epoch });
        digests.push([doc.commit.layer.diffID, doc.commit.layer.digest, doc.image.digest]);
        assert.equal(doc.image.config.created, new Date(Number(epoch) * 1000).toISOString().replace('.000Z', 'Z'));
      } finally {
        await unmount(c.doc);
      }
    }
    assert.deepEqual(digests[0], digests[1]);
    assert.notEqual(digests[2]?.[0], digests[0]?.[0], 'a later timestamp is another layer');
  });

  test('zstd and --format docker: the diff_id is the same tar, the digest the blob as stored', async () => {
    const c = await container('formats');
    try {
      await writeFile(join(c.merged, 'etc', 'motd'), 'formats\n');
      const env = { SOURCE_DATE_EPOCH: '1700000000' };
      const gzip = (await commit(['--name', 'localhost/f:gzip'], c.doc, env)).doc;
      const zstd = (await commit(['--name', 'localhost/f:zstd', '--compression', 'zstd'], c.doc, env)).doc;
      const docker = (await commit(['--name', 'localhost/f:docker', '--format', 'docker'], c.doc, env)).doc;
      assert.equal(zstd.commit.layer.diffID, gzip.commit.layer.diffID);
      assert.notEqual(zstd.commit.layer.digest, gzip.commit.layer.digest);
      assert.equal(zstd.commit.layer.mediaType, 'application/vnd.oci.image.layer.v1.tar+zstd');
      const blob = await readFile(join(store, 'blobs', 'sha256', (zstd.commit.layer.digest as string).slice(7)));
      assert.equal(`sha256:${createHash('sha256').update(blob).digest('hex')}`, zstd.commit.layer.digest);
      const oci = JSON.parse(await readFile(join(store, 'blobs', 'sha256', (gzip.image.digest as string).slice(7)), 'utf8'));
      ociSchema('image-manifest-schema.json')(oci);
      ociSchema('config-schema.json')(JSON.parse(await readFile(join(store, 'blobs', 'sha256', (oci.config.digest as string).slice(7)), 'utf8')));
      assert.equal(docker.image.manifest.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
      const manifest = JSON.parse(await readFile(join(store, 'blobs', 'sha256', (docker.image.digest as string).slice(7)), 'utf8'));
      assert.ok(manifest.layers.every((l: { mediaType: string }) => l.mediaType === 'application/vnd.docker.image.rootfs.diff.tar.gzip'));
      const unpacked = await tool('img-unpack', ['--dest', join(work.path, 'formats-rootfs')], { input: JSON.stringify(docker) });
      assert.equal(unpacked.status, 0, unpacked.stderr);
      assert.equal(await readFile(join(work.path, 'formats-rootfs', 'etc', 'motd'), 'utf8'), 'formats\n');
      assertOneLineError(await tool('img-commit', ['--format', 'docker', '--compression', 'zstd'], { input: c.doc }), 'img-commit', 2, /zstd/);
    } finally {
      await unmount(c.doc);
    }
  });

  test('runc runs the committed image (img-unpack | oci-spec); the base image does not print the motd (the twin)', async () => {
    const c = await container('runc');
    let committed: Record<string, any>;
    try {
      await writeFile(join(c.merged, 'etc', 'motd'), 'hello from the commit\n');
      committed = (await commit(['--change', 'CMD ["cat","/etc/motd"]'], c.doc)).doc;
      assert.equal(committed.image.reference, 'localhost/runc:latest', 'named after the container by default');
    } finally {
      await unmount(c.doc);
    }
    const run = async (doc: string, dir: string) => {
      const unpacked = await tool('img-unpack', ['--dest', join(dir, 'rootfs')], { input: doc });
      assert.equal(unpacked.status, 0, unpacked.stderr);
      const spec = await tool('oci-spec', ['--bundle', dir, '--', 'cat', '/etc/motd'], { input: unpacked.stdout });
      assert.equal(spec.status, 0, spec.stderr);
      const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'));
      config.process.terminal = false;
      await writeFile(join(dir, 'config.json'), JSON.stringify(config));
      return exec('runc', ['run', '--bundle', dir, `cp-commit-${process.pid}-${dir.endsWith('ours') ? 'ours' : 'base'}`], { timeoutMs: 60_000 });
    };
    const ours = await run(JSON.stringify(committed), join(work.path, 'run-ours'));
    assert.equal(ours.stdout, 'hello from the commit\n', ours.stderr);
    const base = await run(fetched, join(work.path, 'run-base'));
    assert.notEqual(base.stdout, 'hello from the commit\n');
  });

  test("ns-enter's empty mount points (/etc/hosts, /run/.containerenv, ...) that the image lacks are not committed; an /etc/hosts with content is (the twin)", async () => {
    const c = await container('placeholders');
    try {
      const ran = await tool('ns-enter', ['--input', c.file, '--', 'sh', '-c', 'echo hi > /etc/motd; : > /empty']);
      assert.equal(ran.status, 0, ran.stderr);
      const upper = JSON.parse(c.doc).mount.upper as string;
      const placeholders = ['etc/hosts', 'etc/hostname', 'etc/resolv.conf', 'run/.containerenv'];
      const made = (await Promise.all(placeholders.map((p) => readFile(join(upper, p)).then((b) => (b.length === 0 ? p : undefined), () => undefined)))).filter(Boolean);
      assert.ok(made.length >= 2, `ns-enter left empty mount points in the upper dir (${made.join(', ')})`);
      const names = async (tag: string) => {
        const { doc } = await commit(['--compression', 'none', '--name', `localhost/placeholders:${tag}`], c.doc);
        return (await layerEntries(join(store, 'blobs', 'sha256', (doc.commit.layer.digest as string).slice(7)))).map((l) => l.split(' ')[0]);
      };
      const committed = await names('1');
      assert.deepEqual(made.filter((p) => committed.includes(p as string)), [], 'no placeholder in the layer');
      assert.ok(committed.includes('etc/motd') && committed.includes('empty'), 'the changes are, an empty file of the container\'s too');
      await writeFile(join(upper, 'etc', 'hosts'), '10.0.0.1 db\n');
      assert.ok((await names('2')).includes('etc/hosts'), 'an /etc/hosts with content is a change');
    } finally {
      await unmount(c.doc);
    }
  });

  test('bad input: no mount section, another image, a redirect xattr, a full disk: one line, the store as it was', async () => {
    assertOneLineError(await tool('img-commit', [], { input: fetched }), 'img-commit', 2, /no mount section: run ovl-mount/);
    const c = await container('bad');
    try {
      await writeFile(join(c.merged, 'etc', 'motd'), 'x\n');
      const doc = JSON.parse(c.doc);
      const other = { ...doc, image: { ...doc.image, digest: `sha256:${'0'.repeat(64)}` } };
      const before = await snapshotStore(store);
      assertOneLineError(await tool('img-commit', [], { input: JSON.stringify(other) }), 'img-commit', 2, /holds changes to image sha256:/);
      const upper = join(work.path, 'redirect-upper');
      await mkdir(join(upper, 'moved'), { recursive: true });
      await mustExec('setfattr', ['-n', 'trusted.overlay.redirect', '-v', '/bin', join(upper, 'moved')]);
      const result = await tool('img-commit', ['--store', store, '--image', doc.image.reference, '--upper', upper, '--name', 'localhost/redirect:1']);
      assertOneLineError(result, 'img-commit', 1, /trusted\.overlay\.redirect.*redirect_dir or metacopy/);
      assert.deepEqual(await snapshotStore(store), before, 'nothing was written');
      assertOneLineError(await tool('img-commit', ['--input', c.file, '--change', 'FROM x']), 'img-commit', 2, /--change "FROM x": takes CMD/);
      const explained = await tool('img-commit', ['--input', c.file, '--explain', '--timestamp', '5']);
      assert.equal(explained.status, 0, explained.stderr);
      assert.match(explained.stdout, /tar -C .*upper --sort=name .*--mtime=@5 --clamp-mtime/);
      assert.deepEqual(await snapshotStore(store), before, '--explain writes nothing');
    } finally {
      await unmount(c.doc);
    }
  });

  test('kill -9 in the middle of a commit: the name is absent or whole, and the next commit sweeps the staging', async () => {
    const upper = join(work.path, 'killed-upper');
    await mkdir(upper);
    await writeFile(join(upper, 'noise'), randomBytes(48 << 20));
    const reference = JSON.parse(fetched).image.reference as string;
    const child = spawn(process.execPath, [toolPath('img-commit'), '--store', store, '--image', reference, '--upper', upper, '--name', 'localhost/killed:1'], { stdio: 'ignore' });
    const exited = new Promise((resolve) => child.once('close', resolve));
    const staging = async () => (await readdir(store)).filter((n) => n.startsWith('.staging-'));
    for (let i = 0; i < 2000 && child.exitCode === null && (await staging()).length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    child.kill('SIGKILL');
    await exited;
    const index = JSON.parse(await readFile(join(store, 'index.json'), 'utf8'));
    const named = index.manifests.find((m: { annotations?: Record<string, string> }) => m.annotations?.['org.opencontainers.image.ref.name'] === 'localhost/killed:1');
    if (named) await readFile(join(store, 'blobs', 'sha256', (named.digest as string).slice(7)));
    const small = join(work.path, 'after-kill-upper');
    await mkdir(small);
    await writeFile(join(small, 'f'), 'x');
    await commit(['--store', store, '--image', reference, '--upper', small, '--name', 'localhost/after-kill:1'], '');
    // (A `.staging-new-…` dir, killed before it had its record, stays until it is stale: the store's rule.)
    assert.deepEqual((await staging()).filter((n) => n.startsWith(`.staging-${child.pid}-`)), [], 'the dead commit\'s staging is swept');
  });

  test('a disk that fills during a commit leaves nothing in the store', async () => {
    const disk = join(work.path, 'small-disk');
    await mkdir(disk);
    await mustExec('mount', ['-t', 'tmpfs', '-o', 'size=6m', 'tmpfs', disk]);
    try {
      const small = join(disk, 'store');
      const fetchedSmall = await tool('img-fetch', [`oci:${join(work.path, 'layout')}:busybox`, '--store', small]);
      assert.equal(fetchedSmall.status, 0, fetchedSmall.stderr);
      const upper = join(work.path, 'big-upper');
      await mkdir(upper);
      await writeFile(join(upper, 'big'), Buffer.alloc(8 << 20, 1));
      const before = await snapshotStore(small);
      const result = await tool('img-commit', ['--store', small, '--image', JSON.parse(fetchedSmall.stdout).image.reference, '--upper', upper, '--name', 'localhost/big:1', '--compression', 'none']);
      assertOneLineError(result, 'img-commit', 1, /no space left on device/);
      assert.deepEqual(await snapshotStore(small), before, 'the store is as it was');
    } finally {
      await mustExec('umount', ['-l', disk]);
    }
  });
});
