/**
 * The whole pipeline as an unprivileged user (issue 6, seeds 000, 002, 003): users made here
 * with useradd (one with the /etc/subuid range useradd gives, one without) run img-fetch |
 * img-unpack --layers | ovl-mount | ns-enter, and oci-spec --rootless | runc run, through
 * runuser. Checked: root inside, the image's owners via the subordinate range, writes in the
 * user's upper, the host's /root out of reach through -v /:/mnt, nothing left mounted on the
 * host, --rm removes what the container's other users made; the errors for each missing piece.
 * The users (and everything in their homes) are removed at the end.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, readFileSync } from 'node:fs';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { mustExec, type ExecResult } from '../helpers/exec.js';
import { createTestUser, type TestUser } from '../helpers/users.js';
import { runOnPty } from '../helpers/pty.js';
import { REPO, toolPath, tempDir } from '../helpers/paths.js';
import { registryWithBusybox, type TestRegistry } from '../helpers/registry.js';
import { checkUserNamespaces, subordinateRanges } from '../../lib/core/userns.js';
import { HostError } from '../../lib/core/errors.js';
import { shellQuote } from '../../lib/core/shell.js';

const RANGED = 'cprltest';

/** A static program for inside the container: pushes a command line into every terminal it holds (TIOCSTI). */
const INJECT_C = `#include <fcntl.h>
#include <stdio.h>
#include <sys/ioctl.h>
int main(void) {
  int fds[4] = {0, 1, 2, open("/dev/tty", O_RDWR)};
  for (int i = 0; i < 4; i++) {
    if (fds[i] < 0) continue;
    int ok = 1;
    for (const char *c = "echo INJECTED\\n"; *c && ok; c++) ok = ioctl(fds[i], TIOCSTI, c) == 0;
    printf("%s on %d\\n", ok ? "pushed" : "refused", fds[i]);
  }
  return 0;
}
`;
const UNRANGED = 'cprlnorange';

/** Runs a shell script as the user, from its home. */
function asUser(user: TestUser, script: string): Promise<ExecResult> {
  return user.run('sh', ['-c', `cd "$HOME" && ${script}`], { timeoutMs: 180_000 });
}

const node = shellQuote(process.execPath);
const cmd = (name: string) => `${node} ${shellQuote(toolPath(name))}`;

/** Overlay mounts anywhere below the user's home, as the host sees them. */
function hostMountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(` ${dir}/`) || l.includes(`=${dir}/`));
}

describe('rootless: the pipeline as a user made with useradd', () => {
  let registry: TestRegistry;
  let user: TestUser;
  let image: string;

  before(async () => {
    ({ registry, image } = await registryWithBusybox());
    user = await createTestUser(RANGED);
  });

  after(async () => {
    await registry?.stop();
    await user?.remove();
  });

  const fetchUnpack = () => `${cmd('img-fetch')} ${image} --tls-verify=false -q | ${cmd('img-unpack')} --layers -q`;

  test('img-fetch | img-unpack --layers | ovl-mount | ns-enter: root inside, the image\'s owners, writes in the user\'s upper, nothing mounted on the host', async () => {
    const subuid = subordinateRanges(readFileSync('/etc/subuid', 'utf8'), { name: user.name, id: user.uid })[0];
    assert.ok(subuid, 'useradd gave the user a subordinate uid range');
    const doc = await asUser(user, `${fetchUnpack()} | ${cmd('ovl-mount')} | tee mount.json | ${cmd('ns-enter')} -- sh -c 'id; touch /root/x; ls -ln /root; ls -ln /home; cat /proc/self/uid_map'`);
    assert.equal(doc.status, 0, doc.stderr);
    assert.match(doc.stdout, /^uid=0\(root\) gid=0\(root\)/);
    assert.match(doc.stdout, /-rw-r--r-- +1 0 +0 +0 .* x$/m, 'the new file is root\'s inside');
    assert.match(doc.stdout, /^drwxr-xr-x +2 1000 +1000 .* lab$/m, 'the image\'s /home/lab is 1000:1000 inside (through the subordinate range)');
    assert.match(doc.stdout, new RegExp(`^ +1 +${subuid.start} +${subuid.count}$`, 'm'), 'the range is mapped after root');
    assert.equal(doc.stderr, '', 'no warning with a range');

    const mount = JSON.parse(readFileSync(join(user.home, 'mount.json'), 'utf8')).mount;
    assert.equal(mount.mountedIn, 'container');
    assert.equal(mount.driver, 'overlay');
    assert.match(mount.options, /^userxattr,lowerdir=/);
    assert.ok(mount.upper.startsWith(`${user.home}/.local/share/container-parts/store/containers/`), 'the container lives in the user\'s XDG data dir');
    // The write landed in the user's upper, owned by the user; the layers did not change.
    const written = lstatSync(join(mount.upper, 'root', 'x'));
    assert.equal(written.uid, user.uid);
    for (const lower of mount.lower) assert.ok(!existsSync(join(lower, 'root', 'x')));
    // The image's 1000 is the range's host id on disk.
    const lab = mount.lower.map((l: string) => join(l, 'home', 'lab')).find((p: string) => existsSync(p));
    assert.equal(lstatSync(lab).uid, subuid.start + 999);
    assert.deepEqual(hostMountsUnder(user.home), [], 'the overlay lived and died in the container\'s mount namespace');
  });

  test('130 more lower dirs with long paths: ovl-mount\'s short names, mounted from their dir inside the namespace; --rm removes them', async () => {
    const script = [
      'rm -rf many && mkdir many && i=0 && while [ $i -lt 130 ]; do i=$((i+1)); mkdir "many/an-empty-layer-with-a-long-name-to-overflow-one-page-of-options-$i"; done',
      `lower=$(ls -d "$HOME"/many/* | tr '\\n' :)$(jq -r '.mount.lower | join(":")' mount.json)`,
      `${cmd('ovl-mount')} --lower "$lower" > many.json`,
      `${cmd('ns-enter')} --rm -- sh -c 'ls -ln /home' < many.json`,
    ].join(' && ');
    const result = await asUser(user, script);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /^drwxr-xr-x +2 1000 +1000 .* lab$/m);
    const mount = JSON.parse(readFileSync(join(user.home, 'many.json'), 'utf8')).mount;
    assert.equal(mount.lower.length, 132);
    assert.ok(mount.optionsDir && mount.options.startsWith('userxattr,lowerdir=0:1:2:'), mount.options);
    assert.ok(!existsSync(mount.optionsDir), 'the short-name links went with --rm');
    assert.deepEqual(hostMountsUnder(user.home), []);
  });

  test('a --lower dir of the user\'s own is mounted as it is: no file of it gets the image\'s (or root\'s) owner', async () => {
    const subuid = subordinateRanges(readFileSync('/etc/subuid', 'utf8'), { name: user.name, id: user.uid })[0];
    assert.ok(subuid);
    const result = await asUser(user, [
      'rm -rf own && mkdir -p own/etc && echo mine > own/etc/mine && echo theirs > own/etc/theirs',
      // A file a container's user 1000 made: it belongs to the subordinate range, not to the user.
      'unshare --map-auto --map-root-user -- chown 1000:1000 own/etc/theirs',
      `${cmd('ovl-mount')} --lower "$HOME/own" -q > own.json`,
      'stat -c "%u %n" own/etc/mine own/etc/theirs',
      // ns-enter --rootfs DIR runs DIR as it is too.
      'mkdir -p own/bin && cp /usr/bin/busybox own/bin/ && chown -h "$(id -u)" own/bin own/bin/busybox',
      `${cmd('ns-enter')} --rootfs "$HOME/own" -- /bin/busybox true`,
      'stat -c "rootfs %u %n" own/etc/mine own/etc/theirs',
    ].join(' && '));
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, new RegExp(`^${user.uid} own/etc/mine$`, 'm'));
    assert.match(result.stdout, new RegExp(`^${subuid.start + 999} own/etc/theirs$`, 'm'), 'the range-owned file keeps its owner');
    assert.match(result.stdout, new RegExp(`^rootfs ${subuid.start + 999} own/etc/theirs$`, 'm'), 'and keeps it under ns-enter --rootfs');
  });

  test('seed 002: with -v /:/mnt the container\'s root cannot write the host\'s /root or /etc', async () => {
    const marker = `/root/cp-rootless-${process.pid}`;
    const result = await asUser(user, `${cmd('ns-enter')} -v /:/mnt -- sh -c 'echo hello > /mnt${marker}; echo hello > /mnt/etc/cp-rootless; ls /mnt/root' < mount.json`);
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, new RegExp(`can't create /mnt${marker}: Permission denied`));
    assert.match(result.stderr, /can't create \/mnt\/etc\/cp-rootless: Permission denied/);
    assert.match(result.stderr, /can't open '\/mnt\/root': Permission denied/);
    assert.ok(!existsSync(marker) && !existsSync('/etc/cp-rootless'));
  });

  test('-t as a user: the container gets a pty of its own; TIOCSTI inside never reaches the user terminal', async () => {
    const probe = await tempDir('cp-rootless-tty-');
    try {
      await writeFile(join(probe.path, 'inject.c'), INJECT_C);
      await mustExec('gcc', ['-static', '-o', join(probe.path, 'inject'), join(probe.path, 'inject.c')]);
      await chmod(probe.path, 0o755);
      const pending = `python3 -c 'import fcntl, struct, termios; print("pending=%d" % struct.unpack("i", fcntl.ioctl(0, termios.FIONREAD, b"1234"))[0])'`;
      const asUserOnPty = `runuser -u ${RANGED} -- env HOME=${shellQuote(user.home)} XDG_RUNTIME_DIR= XDG_DATA_HOME= CONTAINER_PARTS_STORE= sh -c ${shellQuote(`cd "$HOME" && ${cmd('ns-enter')} -t -v ${probe.path}:/probe:ro -- /probe/inject < mount.json; ${pending}`)}`;
      const run = await runOnPty(asUserOnPty, { timeoutSeconds: 60 });
      assert.equal(run.timedOut, false, run.output);
      assert.match(run.output, /pushed on 0/, run.output);
      assert.match(run.output, /pending=0/, run.output);
    } finally {
      await probe.cleanup();
    }
  });

  test('a rootless container runs once at a time: a second run and --unmount are refused while the first runs', async () => {
    const result = await asUser(user, [
      'upper=$(jq -r .mount.upper mount.json) && rm -f "$upper/tmp/started"',
      `(${cmd('ns-enter')} -- sh -c 'touch /tmp/started; exec sleep 120' < mount.json > first.log 2>&1 &)`,
      'i=0; while [ ! -e "$upper/tmp/started" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done',
      `{ ${cmd('ns-enter')} -- true < mount.json; echo "second $?"; }`,
      `{ ${cmd('ovl-mount')} --unmount < mount.json; echo "unmount $?"; }`,
      'pkill -KILL -u "$(id -u)" -x sleep; rm -f "$upper/tmp/started"; true',
    ].join(' && '));
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /^second 1$/m);
    assert.match(result.stdout, /^unmount 1$/m);
    assert.match(result.stderr, /^ns-enter: .*merged: the container's upper dir .* is mounted already, by the run of process \d+ \(one run at a time/m);
    assert.match(result.stderr, /^ovl-mount: .*merged: target is busy \(the container still runs: process \d+ has its overlay mounted\)$/m);
  });

  test('another image user (-u lab) writes as 1000; --rm removes what it made, though the range owns it', async () => {
    const result = await asUser(user, `${cmd('ns-enter')} -u lab -- sh -c 'id -u; mkdir /tmp/private; chmod 700 /tmp/private; touch /tmp/private/f' < mount.json && ${cmd('ns-enter')} --rm -- true < mount.json`);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout.trim(), '1000');
    const mount = JSON.parse(readFileSync(join(user.home, 'mount.json'), 'utf8')).mount;
    assert.ok(!existsSync(mount.container.dir), 'the container dir is gone');
  });

  test('oci-spec --rootless | runc run: the flat rootfs and the overlay, with the same maps and owners', async () => {
    const run = `id; touch /root/x; ls -ln /home`;
    const result = await asUser(user, [
      `mkdir -p runc-root`,
      `${cmd('img-fetch')} ${image} --tls-verify=false -q | ${cmd('img-unpack')} -q | ${cmd('oci-spec')} --rootless --bundle flat -- sh -c '${run}' > /dev/null`,
      `runc --root "$HOME/runc-root" run -b flat c-flat`,
      `${fetchUnpack()} | ${cmd('ovl-mount')} | ${cmd('oci-spec')} --rootless --bundle layered -- sh -c '${run}; mount | head -1' > layered.json`,
      `runc --root "$HOME/runc-root" run -b layered c-layered`,
    ].join(' && '));
    assert.equal(result.status, 0, result.stderr);
    const outputs = result.stdout.split(/(?=^uid=)/m);
    assert.equal(outputs.length, 2, result.stdout);
    for (const output of outputs) {
      assert.match(output, /^uid=0\(root\) gid=0\(root\)/);
      assert.match(output, /^drwxr-xr-x +2 1000 +1000 .* lab$/m);
    }
    assert.match(outputs[1] as string, /^overlay on \/ type overlay \(.*userxattr/m, 'runc mounted the overlay in its own namespaces');
    const config = JSON.parse(readFileSync(join(user.home, 'layered', 'config.json'), 'utf8'));
    assert.equal(config.linux.uidMappings.length, 2);
    assert.deepEqual(config.mounts[0].destination, '/');
    assert.deepEqual(hostMountsUnder(user.home), []);
  });

  test('neither overlay path: one line naming why the kernel\'s and fuse-overlayfs each failed', async () => {
    // The kernel refuses a work dir inside the upper dir; /dev/fuse is root's on this machine.
    const result = await asUser(user, `mkdir -p bad/lower bad/upper/work && ${cmd('ovl-mount')} --lower "$HOME/bad/lower" --upper "$HOME/bad/upper" --work "$HOME/bad/upper/work" --target "$HOME/bad/merged"`);
    assert.equal(result.status, 1);
    const lines = result.stderr.trim().split('\n');
    assert.equal(lines.length, 1, result.stderr);
    assert.match(lines[0] as string, /^ovl-mount: cannot mount an overlay without root at .*: kernel overlay in a user namespace: mount -t overlay -o userxattr in a user namespace failed: .*; fuse-overlayfs: /);
    if (!(lstatSync('/dev/fuse').mode & 0o006)) assert.match(lines[0] as string, /\/dev\/fuse is mode 0600, not open to you/);
  });

  test('no subordinate range: a warning, a single-id map, root inside', async () => {
    const bare = await createTestUser(UNRANGED, ['-K', 'SUB_UID_COUNT=0', '-K', 'SUB_GID_COUNT=0']);
    try {
      const result = await asUser(bare, `${fetchUnpack()} | ${cmd('ovl-mount')} -q | ${cmd('ns-enter')} --rm -- sh -c 'id -u; cat /proc/self/uid_map; ls -ln /home'`);
      assert.equal(result.status, 0, result.stderr);
      assert.match(result.stdout, /^0\n +0 +\d+ +1\n/);
      assert.match(result.stdout, /^drwxr-xr-x +2 0 +0 .* lab$/m, 'without a range every file is root\'s');
      assert.match(result.stderr, /^ns-enter: warning: no range for cprlnorange in \/etc\/subuid: only your own id is mapped/m);
      const named = await asUser(bare, `${fetchUnpack()} | ${cmd('ovl-mount')} -q | ${cmd('ns-enter')} -u lab -- id`);
      assert.equal(named.status, 2);
      assert.match(named.stderr, /user 1000: not mapped in a rootless container \(mapped uids: 0-0\)/);
      assert.deepEqual(hostMountsUnder(bare.home), []);
    } finally {
      await bare.remove();
    }
  });

  test('the lab debian image: its group owners, setuid bits, and su to another image user', { timeout: 1_200_000 }, async () => {
    const work = await tempDir('cp-rootless-debian-');
    try {
      // debootstrap's tree is cached by the script (/var/cache/container-parts): minutes only the first time.
      await mustExec(join(REPO, 'scripts', 'build-debian-image.sh'), [work.path, `docker://${registry.host}/lab/debian:latest`], { timeoutMs: 900_000 });
    } finally {
      await work.cleanup();
    }
    const script = 'id -u; touch /root/x; ls -ln /root; stat -c "%u %g %a %n" /var/mail /usr/bin/passwd; su nobody -s /bin/sh -c "touch /tmp/n; stat -c %u:%g /tmp/n"';
    const result = await asUser(user, `${cmd('img-fetch')} docker://${registry.host}/lab/debian:latest --tls-verify=false -q | ${cmd('img-unpack')} --layers -q | ${cmd('ovl-mount')} -q | ${cmd('ns-enter')} --rm -- sh -c '${script}'`);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /^0\n/);
    assert.match(result.stdout, /-rw-r--r-- 1 0 0 0 .* x$/m);
    assert.match(result.stdout, /^0 8 2775 \/var\/mail$/m, 'root:mail and setgid, as in the image');
    assert.match(result.stdout, /^0 0 4755 \/usr\/bin\/passwd$/m, 'the setuid bit chown would clear is kept');
    assert.match(result.stdout, /^65534:65534$/m, 'su to nobody works: its id is mapped');
    assert.deepEqual(hostMountsUnder(user.home), []);
  });

  test('cgroup limits without a delegated cgroup tree: a clear error', async () => {
    const result = await asUser(user, `${fetchUnpack()} | ${cmd('ovl-mount')} -q | ${cmd('ns-enter')} --rm --memory 64m -- true`);
    assert.equal(result.status, 1);
    assert.match(result.stderr, /^ns-enter: cannot create cgroup .*: EACCES \(the cgroup tree is not delegated to you\)/);
  });
});

describe('rootless: the pieces', () => {
  test('subordinateRanges reads /etc/subuid by name or by id, every range in order', () => {
    const text = 'alice:100000:65536\n# a comment\nbob:165536:65536\n1001:300000:1000\nalice:400000:10\nbroken\n';
    assert.deepEqual(subordinateRanges(text, { name: 'alice', id: 1000 }), [{ start: 100000, count: 65536 }, { start: 400000, count: 10 }]);
    assert.deepEqual(subordinateRanges(text, { name: 'carol', id: 1001 }), [{ start: 300000, count: 1000 }]);
    assert.deepEqual(subordinateRanges(text, { name: 'dave', id: 1002 }), []);
  });

  test('user namespaces disabled: the error names the sysctl that forbids them', () => {
    // This machine's root lacks CAP_SYS_RESOURCE, so the real sysctl cannot be set to 0 here: the reads are given.
    const knobs = (values: Record<string, string>) => (file: string) => values[file];
    assert.throws(() => checkUserNamespaces(knobs({ '/proc/sys/user/max_user_namespaces': '0' })), (e: unknown) => e instanceof HostError && /user namespaces are disabled on this host \(\/proc\/sys\/user\/max_user_namespaces is 0\)/.test(e.message));
    assert.throws(() => checkUserNamespaces(knobs({ '/proc/sys/user/max_user_namespaces': '100', '/proc/sys/kernel/unprivileged_userns_clone': '0' })), /unprivileged_userns_clone is 0/);
    assert.throws(() => checkUserNamespaces(knobs({ '/proc/sys/kernel/apparmor_restrict_unprivileged_userns': '1' })), /AppArmor restricts/);
    checkUserNamespaces(knobs({ '/proc/sys/user/max_user_namespaces': '100' }));
    checkUserNamespaces();
  });
});
