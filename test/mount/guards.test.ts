/**
 * ovl-mount touches only what it mounted (issue 13, items 8-11): --unmount refuses a tmpfs, a
 * bind mount and a hand-made overlay; concurrent mounts on one target or one upper dir mount
 * once; a busy overlay (a container still runs on it) is not unmounted; a container name keeps
 * its image; a document whose overlay is gone is not run. Everything here goes through the
 * commands, as real processes at once where it is about races. Every test unmounts what it
 * mounted; afterEach fails a test that leaked a mount, then cleans up.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { assertOneLineError, exec, mustExec, tool, type ExecResult } from '../helpers/exec.js';
import { mountingWorkDir, mountsUnder } from '../helpers/mounts.js';
import { toolPath } from '../helpers/paths.js';

let store: string;
const work = mountingWorkDir('cp-guards-', (path) => {
  store = join(path, 'store');
});

/** A lower dir with a static busybox (sh, sleep, echo) and a file, enough to run a container on. */
async function busyboxLower(base: string): Promise<string> {
  const lower = join(base, 'lower');
  await mkdir(join(lower, 'bin'), { recursive: true });
  await mkdir(join(lower, 'etc'), { recursive: true });
  await mustExec('cp', ['/usr/bin/busybox', join(lower, 'bin', 'busybox')]);
  for (const applet of ['sh', 'sleep', 'echo', 'cat', 'touch']) await symlink('busybox', join(lower, 'bin', applet));
  await writeFile(join(lower, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  await writeFile(join(lower, 'etc', 'a'), 'from the lower\n');
  return lower;
}

const ovl = (args: string[], input?: string) => tool('ovl-mount', ['--store', store, ...args], { input, timeoutMs: 60_000 });

async function mounted(args: string[], input?: string): Promise<string> {
  const result = await ovl(args, input);
  assert.equal(result.status, 0, result.stderr);
  return result.stdout;
}

/** Starts ns-enter on a document, running `sh -c SCRIPT`; resolves once the container printed "ready". */
function startContainer(doc: string, script: string): Promise<{ stop: () => Promise<void> }> {
  const child = spawn(process.execPath, [toolPath('ns-enter'), '--', 'sh', '-c', `echo ready; ${script}`], { stdio: ['pipe', 'pipe', 'pipe'] });
  const closed = new Promise<void>((done) => child.once('close', () => done()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  // SIGTERM: ns-enter stops the container and removes its staging dir (SIGKILL would leave it).
  const stop = async () => {
    child.kill('SIGTERM');
    await closed;
    clearTimeout(timer);
  };
  child.stdin.end(doc);
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += String(d)));
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      if (String(d).includes('ready')) resolve({ stop });
    });
    closed.then(() => reject(new Error(`ns-enter ended before the container was ready: ${stderr}`)));
  });
}

/** ovl-mount started now, reading its document from stdin when `send` gives it. */
function startOvlMount(args: string[]): { send: (doc: string) => void; result: Promise<ExecResult> } {
  const child = spawn(process.execPath, [toolPath('ovl-mount'), '--store', store, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  let [stdout, stderr] = ['', ''];
  child.stdout.on('data', (d: Buffer) => (stdout += String(d)));
  child.stderr.on('data', (d: Buffer) => (stderr += String(d)));
  const result = new Promise<ExecResult>((done) => child.once('close', (status, signal) => {
    clearTimeout(timer);
    done({ status, signal, stdout, stderr });
  }));
  return { send: (doc) => child.stdin.end(doc), result };
}

describe('ovl-mount --unmount unmounts only its own overlays', () => {
  test('a tmpfs, a bind mount and a hand-made overlay are refused with one line, and stay mounted with their data', async () => {
    const base = join(work.path, 'foreign');
    const lower = await busyboxLower(base);
    const [tmpfs, bind, handMade, upper, wk] = ['tmpfs', 'bind', 'hand', 'u', 'w'].map((d) => join(base, d)) as [string, string, string, string, string];
    for (const dir of [tmpfs, bind, handMade, upper, wk]) await mkdir(dir, { recursive: true });
    await mustExec('mount', ['-t', 'tmpfs', 'tmpfs', tmpfs]);
    await writeFile(join(tmpfs, 'data'), 'the user\'s\n');
    await mustExec('mount', ['--bind', lower, bind]);
    await mustExec('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${upper},workdir=${wk}`, handMade]);
    try {
      for (const [target, fsType] of [[tmpfs, 'tmpfs'], [bind, '[a-z0-9]+'], [handMade, 'overlay']] as const) {
        const refused = await ovl(['--unmount', target]);
        assertOneLineError(refused, 'ovl-mount', 2, new RegExp(`^ovl-mount: ${target}: the ${fsType} mount there is not one ovl-mount made: not unmounted \\(`));
        assert.deepEqual(mountsUnder(target), [target], `${target} is still mounted`);
      }
      assert.equal(readFileSync(join(tmpfs, 'data'), 'utf8'), 'the user\'s\n');
    } finally {
      for (const target of [tmpfs, bind, handMade]) await exec('umount', [target]);
    }
  });

  test('a mount put where ovl-mount\'s overlay was (its record stale) is refused; ovl-mount\'s own is unmounted', async () => {
    const base = join(work.path, 'stale-record');
    const lower = await busyboxLower(base);
    const target = join(base, 'merged');
    await mounted(['--lower', lower, '--upper', join(base, 'u'), '--work', join(base, 'w'), '--target', target]);
    await mustExec('umount', [target]);
    await mustExec('mount', ['-t', 'tmpfs', 'tmpfs', target]);
    try {
      assertOneLineError(await ovl(['--unmount', target]), 'ovl-mount', 2, /tmpfs mount there is not one ovl-mount made \(its record is of an earlier mount\): not unmounted/);
    } finally {
      await exec('umount', [target]);
    }
    await mounted(['--lower', lower, '--upper', join(base, 'u'), '--work', join(base, 'w'), '--target', target]);
    assert.equal((await ovl(['--unmount', target])).status, 0);
  });
});

describe('races and double mounts', () => {
  test('six ovl-mount on one target at once, three rounds: one overlay each time, the others refused with one line', async () => {
    const base = join(work.path, 'race-target');
    const lower = await busyboxLower(base);
    const doc = JSON.stringify({ documentVersion: 1, rootfs: { mode: 'flat', path: lower } });
    for (const round of [0, 1, 2]) {
      const target = join(base, `merged${round}`);
      // Each waits for its document on stdin; all get it at once, so they check and mount at the same time.
      const starts = [0, 1, 2, 3, 4, 5].map((i) => startOvlMount(['--upper', join(base, `u${round}-${i}`), '--work', join(base, `w${round}-${i}`), '--target', target]));
      await new Promise((done) => setTimeout(done, 500));
      for (const start of starts) start.send(doc);
      const results = await Promise.all(starts.map((start) => start.result));
      try {
        const said = results.map((r) => `${r.status}: ${r.stderr}`).join('');
        assert.equal(mountsUnder(target).length, 1, `one mount at the target, not ${mountsUnder(target).length} (${said})`);
        assert.equal(results.filter((r) => r.status === 0).length, 1, said);
        for (const refused of results.filter((r) => r.status !== 0)) assertOneLineError(refused, 'ovl-mount', 2, /is a mount point already/);
      } finally {
        while (mountsUnder(target).length > 0 && (await ovl(['--unmount', target])).status === 0);
      }
    }
  });

  test('three ovl-mount of one upper dir at once, on three targets: it is mounted once', async () => {
    const base = join(work.path, 'race-upper');
    const lower = await busyboxLower(base);
    const results = await Promise.all([0, 1, 2].map((i) => ovl(['--lower', lower, '--upper', join(base, 'u'), '--work', join(base, 'w'), '--target', join(base, `m${i}`)])));
    try {
      assert.equal(results.filter((r) => r.status === 0).length, 1, results.map((r) => `${r.status}: ${r.stderr}`).join(''));
      for (const refused of results.filter((r) => r.status !== 0)) assertOneLineError(refused, 'ovl-mount', 2, /upper dir .*\/u is in use by the overlay at .*\/m\d \(ovl-mount --unmount .* first\)/);
    } finally {
      for (const i of [0, 1, 2]) if (mountsUnder(join(base, `m${i}`)).length) await ovl(['--unmount', join(base, `m${i}`)]);
    }
  });

  test('a target or an upper dir reached through a symlink is the same one: refused while mounted, unmounted by either name', async () => {
    const base = join(work.path, 'aliases');
    const lower = await busyboxLower(base);
    const [target, upper, wk] = ['merged', 'u', 'w'].map((d) => join(base, 'real', d)) as [string, string, string];
    await mounted(['--lower', lower, '--upper', upper, '--work', wk, '--target', target]);
    await symlink(join(base, 'real'), join(base, 'alias'));
    try {
      const again = await ovl(['--lower', lower, '--upper', join(base, 'u2'), '--work', join(base, 'w2'), '--target', join(base, 'alias', 'merged')]);
      assertOneLineError(again, 'ovl-mount', 2, new RegExp(`${target} is a mount point already`));
      const upperAgain = await ovl(['--lower', lower, '--upper', join(base, 'alias', 'u'), '--work', join(base, 'alias', 'w'), '--target', join(base, 'm2')]);
      assertOneLineError(upperAgain, 'ovl-mount', 2, new RegExp(`upper dir ${upper} is in use by the overlay at ${target}`));
      assert.equal(mountsUnder(target).length, 1);
    } finally {
      assert.equal((await ovl(['--unmount', join(base, 'alias', 'merged')])).status, 0);
    }
  });

  test('an upper dir a hand-made overlay uses is refused, and the refused container leaves no dir behind', async () => {
    const base = join(work.path, 'upper-in-use');
    const lower = await busyboxLower(base);
    const [upper, wk, hand] = ['u', 'w', 'hand'].map((d) => join(base, d)) as [string, string, string];
    for (const dir of [upper, wk, hand]) await mkdir(dir, { recursive: true });
    await mustExec('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${upper},workdir=${wk}`, hand]);
    try {
      const refused = await ovl(['--lower', lower, '--upper', upper, '--work', wk, '--name', 'never']);
      assertOneLineError(refused, 'ovl-mount', 2, new RegExp(`upper dir ${upper} is in use by the overlay at ${hand}`));
      assert.ok(!existsSync(join(store, 'containers', 'never')), 'no containers/never/ left by the refused run');
    } finally {
      await exec('umount', [hand]);
    }
  });

  test('--unmount while a container runs on the overlay is refused, naming the process; the same container cannot be mounted twice', async () => {
    const base = join(work.path, 'busy');
    const lower = await busyboxLower(base);
    const doc = await mounted(['--lower', lower, '--name', 'busy1']);
    const target = JSON.parse(doc).mount.target as string;
    // PID 1 ignores SIGTERM unless it handles it: the shell does, so stop() ends the container at once.
    const container = await startContainer(doc, 'trap "kill $!; exit 0" TERM; sleep 60 & wait');
    let refused: ExecResult;
    try {
      refused = await ovl(['--unmount', target]);
      assertOneLineError(refused, 'ovl-mount', 1, new RegExp(`^ovl-mount: ${target}: target is busy \\(a process still uses it: .*process \\d+ \\((sleep|sh)\\) has its root there\\)`));
      assert.deepEqual(mountsUnder(target), [target], 'still mounted');
      const again = await ovl(['--lower', lower, '--name', 'busy1']);
      assertOneLineError(again, 'ovl-mount', 2, /is a mount point already/);
    } finally {
      await container.stop();
    }
    // bwrap's --die-with-parent ends the container after ns-enter, not with it: the overlay is busy until then.
    let unmounted = await ovl(['--unmount', target]);
    for (let i = 0; i < 100 && unmounted.status !== 0 && /target is busy/.test(unmounted.stderr); i++) {
      await new Promise((done) => setTimeout(done, 100));
      unmounted = await ovl(['--unmount', target]);
    }
    assert.equal(unmounted.status, 0, `unmounted once the container is gone (${unmounted.stderr})`);
  });
});

describe('a container keeps its image', () => {
  /** An img-fetch image section (only its digest matters here). */
  const image = (digest: string) => ({
    reference: 'x', digest, store: join(work.path, 'dir-image'), layout: 'dir',
    manifest: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest, size: 1 },
    config: { rootfs: { type: 'layers', diff_ids: [] } }, layers: [], platform: { os: 'linux', architecture: 'amd64' },
  });
  const document = (digest: string, lower: string) => JSON.stringify({ documentVersion: 1, image: image(digest), rootfs: { mode: 'flat', path: lower } });

  test('--name of a container made from another image is refused with one line; the same image mounts it again', async () => {
    const base = join(work.path, 'names');
    const lower = await busyboxLower(base);
    const other = await busyboxLower(join(base, 'other'));
    const [a, b] = [`sha256:${'a'.repeat(64)}`, `sha256:${'b'.repeat(64)}`];
    const first = JSON.parse(await mounted(['--name', 'keep'], document(a, lower))).mount;
    await writeFile(join(first.target, 'etc', 'changed'), 'in image a\n');
    assert.equal((await ovl(['--unmount', first.target])).status, 0);
    const refused = await ovl(['--name', 'keep'], document(b, lower));
    assertOneLineError(refused, 'ovl-mount', 2, new RegExp(`^ovl-mount: container keep was made from image ${a}, not image ${b}: its upper dir holds that image's changes \\(give another --name, or remove .*containers/keep first\\)`));
    const byLower = await ovl(['--name', 'keep', '--lower', other]);
    assertOneLineError(byLower, 'ovl-mount', 2, /container keep was made from image sha256:a+, not lower dir .*other\/lower/);
    assert.deepEqual(mountsUnder(join(store, 'containers', 'keep')), []);
    const again = JSON.parse(await mounted(['--name', 'keep'], document(a, lower))).mount;
    assert.equal(readFileSync(join(again.target, 'etc', 'changed'), 'utf8'), 'in image a\n');
    assert.equal((await ovl(['--unmount', again.target])).status, 0);
  });

  test('without an image, the lower dirs are what a container is made from', async () => {
    const base = join(work.path, 'names-lower');
    const lower = await busyboxLower(base);
    const other = await busyboxLower(join(base, 'other'));
    const first = JSON.parse(await mounted(['--name', 'bylower', '--lower', lower])).mount;
    assert.equal((await ovl(['--unmount', first.target])).status, 0);
    assertOneLineError(await ovl(['--name', 'bylower', '--lower', other]), 'ovl-mount', 2, /container bylower was made from lower dir .*names-lower\/lower, not lower dir .*other\/lower/);
  });
});

describe('a document whose overlay is gone', () => {
  test('ns-enter and oci-spec refuse it with one line naming ovl-mount, and write nothing into the bare dir', async () => {
    const base = join(work.path, 'stale-doc');
    const lower = await busyboxLower(base);
    const doc = await mounted(['--lower', lower, '--name', 'stale']);
    const target = JSON.parse(doc).mount.target as string;
    assert.equal((await ovl(['--unmount', target])).status, 0);
    const run = await tool('ns-enter', ['--', 'sh', '-c', 'echo x > /written'], { input: doc, timeoutMs: 60_000 });
    assertOneLineError(run, 'ns-enter', 1, new RegExp(`^ns-enter: ${target}: the document's overlay is not mounted any more .*\\(mount it again: pipe the img-unpack document into ovl-mount`));
    const spec = await tool('oci-spec', ['--bundle', join(base, 'bundle'), '--', 'true'], { input: doc, timeoutMs: 60_000 });
    assertOneLineError(spec, 'oci-spec', 1, /the document's overlay is not mounted any more/);
    assert.deepEqual(readdirSync(target), [], 'the mount point stays empty');
    // Another overlay at the same place (another upper) is not the document's either.
    await mounted(['--lower', lower, '--upper', join(base, 'u2'), '--work', join(base, 'w2'), '--target', target]);
    try {
      const other = await tool('ns-enter', ['--', 'true'], { input: doc, timeoutMs: 60_000 });
      assertOneLineError(other, 'ns-enter', 1, /the overlay mounted there has other lower or upper dirs than the document's/);
    } finally {
      await ovl(['--unmount', target]);
    }
  });
});

describe('the mount lock', () => {
  test('ovl-mount waits while another holds the lock, and goes on when the holder is killed -9 (the kernel drops an flock)', async () => {
    const base = join(work.path, 'lock');
    const lower = await busyboxLower(base);
    await mkdir(join(store, 'overlay'), { recursive: true });
    const holder = spawn('flock', ['--exclusive', '--close', join(store, 'overlay', '.lock'), '-c', 'echo held; exec sleep 60 > /dev/null'], { stdio: ['ignore', 'pipe', 'ignore'], detached: true });
    const holderGone = new Promise((done) => holder.once('exit', done));
    const killHolder = () => process.kill(-(holder.pid as number), 'SIGKILL');
    try {
      await new Promise((done) => holder.stdout.once('data', done));
      const target = join(base, 'merged');
      const waiting = ovl(['--lower', lower, '--upper', join(base, 'u'), '--work', join(base, 'w'), '--target', target]);
      // The waiting ovl-mount is seen to wait (nothing mounted yet) until the holder dies.
      for (let i = 0; i < 20; i++) await new Promise((done) => setTimeout(done, 25));
      assert.deepEqual(mountsUnder(target), [], 'nothing is mounted while another holds the lock');
      killHolder();
      const result = await waiting;
      assert.equal(result.status, 0, result.stderr);
      assert.equal((await ovl(['--unmount', target])).status, 0);
    } finally {
      if (holder.exitCode === null && holder.signalCode === null) killHolder();
      await holderGone;
    }
  });
});

describe('a full disk', () => {
  test('a store with no room for the mount record: one line, and no mount is left that ovl-mount could not unmount', async () => {
    const base = join(work.path, 'full');
    const lower = await busyboxLower(base);
    const small = join(base, 'small');
    await mkdir(small, { recursive: true });
    await mustExec('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', small]);
    try {
      const target = join(base, 'merged');
      const args = ['--store', join(small, 'store'), '--lower', lower, '--upper', join(base, 'u'), '--work', join(base, 'w'), '--target', target];
      // The store is made (and used once) while there is room; then the disk fills up.
      assert.equal((await tool('ovl-mount', args)).status, 0);
      assert.equal((await tool('ovl-mount', ['--store', join(small, 'store'), '--unmount', target])).status, 0);
      await exec('dd', ['if=/dev/zero', `of=${join(small, 'fill')}`, 'bs=4k', 'count=64']);
      const result = await tool('ovl-mount', args, { timeoutMs: 60_000 });
      assertOneLineError(result, 'ovl-mount', 1, /no space left on device/);
      assert.deepEqual(mountsUnder(target), [], 'the overlay was unmounted again');
    } finally {
      await exec('umount', [small]);
    }
  });
});
