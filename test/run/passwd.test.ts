/** lib/passwd.ts: USER[:GROUP] from the rootfs's own /etc/passwd and /etc/group, never the host's. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { NotFoundError } from '../../lib/core/errors.js';
import { parseGroup, parsePasswd, resolveUser } from '../../lib/run/passwd.js';
import { resolveInRoot } from '../../lib/core/root-resolver.js';
import { tempDir } from '../helpers/paths.js';

const PASSWD = 'root:x:0:0:root:/root:/bin/sh\nlab:x:1000:1000:lab user:/home/lab:/bin/sh\n# comment\nbroken line\nnobody:x:65534:65534::/nonexistent:/bin/false\n';
const GROUP = 'root:x:0:\nwheel:x:10:lab\nlab:x:1000:\naudio:x:29:other, lab\nnogroup:x:65534:\n';

async function rootfs(files: Record<string, string>): Promise<{ path: string; cleanup: () => Promise<void> }> {
  const dir = await tempDir('cp-passwd-');
  for (const [name, text] of Object.entries(files)) {
    await mkdir(join(dir.path, 'root', name, '..'), { recursive: true });
    await writeFile(join(dir.path, 'root', name), text);
  }
  return { path: dir.path, cleanup: dir.cleanup };
}

test('parsing skips comments and lines that do not parse', () => {
  assert.deepEqual(parsePasswd(PASSWD).map((e) => e.name), ['root', 'lab', 'nobody']);
  assert.deepEqual(parseGroup(GROUP).find((g) => g.name === 'audio')?.members, ['other', 'lab']);
});

test('names, numbers and groups resolve per conversion.md', async () => {
  const dir = await rootfs({ 'etc/passwd': PASSWD, 'etc/group': GROUP });
  try {
    const root = join(dir.path, 'root');
    // A name: its primary group, and (as initgroups) that group and the ones listing it as supplementary groups.
    assert.deepEqual(resolveUser(root, 'lab'), { uid: 1000, gid: 1000, additionalGids: [1000, 10, 29] });
    // A name with a group: no supplementary groups.
    assert.deepEqual(resolveUser(root, 'lab:wheel'), { uid: 1000, gid: 10, additionalGids: [] });
    // Numbers are verbatim; a known uid gets its primary group.
    assert.deepEqual(resolveUser(root, '1000'), { uid: 1000, gid: 1000, additionalGids: [] });
    assert.deepEqual(resolveUser(root, '4242'), { uid: 4242, gid: 0, additionalGids: [] });
    assert.deepEqual(resolveUser(root, '4242:77'), { uid: 4242, gid: 77, additionalGids: [] });
    assert.deepEqual(resolveUser(root, '0:nogroup'), { uid: 0, gid: 65534, additionalGids: [] });
    assert.throws(() => resolveUser(root, 'ghost'), (e: unknown) => e instanceof NotFoundError && /user "ghost": no such user in the rootfs's \/etc\/passwd/.test(e.message));
    assert.throws(() => resolveUser(root, 'lab:ghosts'), (e: unknown) => e instanceof NotFoundError && /group "ghosts": no such group/.test(e.message));
    assert.throws(() => resolveUser(root, 'lab:'), /expected USER\[:GROUP\]/);
  } finally {
    await dir.cleanup();
  }
});

test('no /etc/passwd: numbers still work, names are an error', async () => {
  const dir = await rootfs({ 'bin/sh': '' });
  try {
    const root = join(dir.path, 'root');
    assert.deepEqual(resolveUser(root, '0'), { uid: 0, gid: 0, additionalGids: [] });
    assert.throws(() => resolveUser(root, 'root'), NotFoundError);
  } finally {
    await dir.cleanup();
  }
});

test('a symlinked /etc/passwd resolves inside the rootfs, never to the host', async () => {
  const dir = await rootfs({ 'real/passwd': 'inside:x:7:7::/:/bin/sh\n' });
  try {
    const root = join(dir.path, 'root');
    // A file beside the rootfs that a naive path join through the symlinks would reach.
    await writeFile(join(dir.path, 'passwd'), 'escaped:x:0:0::/:/bin/sh\n');
    await mkdir(join(root, 'etc'));
    await symlink('../../../../../../passwd', join(root, 'etc', 'passwd'));
    // `..` stops at the root: the link names /passwd of the rootfs, which does not exist.
    assert.equal(resolveInRoot(root, '/etc/passwd'), undefined);
    assert.throws(() => resolveUser(root, 'escaped'), NotFoundError);

    await writeFile(join(root, 'passwd'), 'clamped:x:9:9::/:/bin/sh\n');
    assert.equal(resolveInRoot(root, '/etc/passwd'), join(root, 'passwd'));
    assert.deepEqual(resolveUser(root, 'clamped'), { uid: 9, gid: 9, additionalGids: [9] });

    // An absolute target is taken from the rootfs, not from the host's /.
    await symlink('/real/passwd', join(root, 'etc', 'group'));
    assert.equal(resolveInRoot(root, '/etc/group'), join(root, 'real', 'passwd'));
    // /etc itself a symlink to the host's /etc: still the rootfs's.
    const other = await rootfs({ 'etc2/passwd': 'mine:x:5:5::/:/bin/sh\n' });
    try {
      const otherRoot = join(other.path, 'root');
      await symlink('/etc2', join(otherRoot, 'etc'));
      assert.deepEqual(resolveUser(otherRoot, 'mine'), { uid: 5, gid: 5, additionalGids: [5] });
      await symlink('/etc', join(otherRoot, 'loop'));
      await symlink('/loop2', join(otherRoot, 'loop1'));
      await symlink('/loop1', join(otherRoot, 'loop2'));
      assert.throws(() => resolveInRoot(otherRoot, '/loop1/passwd'), /too many levels of symbolic links/);
    } finally {
      await other.cleanup();
    }
  } finally {
    await dir.cleanup();
  }
});
