/**
 * The container's /etc files in process (etc-files.test.ts has them through oci-spec and
 * ns-enter): which files a config gets, their content from a host /etc of the test's own, where
 * their binds go among the mounts, and the ones left out (a mount the user gave, a read-only
 * root without the mount point).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ETC_FILE_NAMES, etcFilesFor, hostsFile, withEtcFiles } from '../../lib/run/etc-files.js';
import type { RuntimeConfig } from '../../lib/run/runtime-spec.js';
import { withTempDir } from '../helpers/paths.js';

const withHostEtc = (fn: (dir: string, etc: string) => Promise<void> | void) =>
  withTempDir('cp-etc-files-', async (dir) => {
    const etc = join(dir, 'host-etc');
    mkdirSync(etc);
    writeFileSync(join(etc, 'resolv.conf'), 'nameserver 192.0.2.53\n');
    writeFileSync(join(etc, 'hosts'), '127.0.0.1 localhost\n# a comment\n192.0.2.1   gw  gateway # trailing\n\nlonely\n');
    await fn(dir, etc);
  });

const config = (extra: Partial<RuntimeConfig> = {}): RuntimeConfig =>
  ({ ociVersion: '1.0.2', hostname: 'box', mounts: [{ destination: '/proc', type: 'proc', source: 'proc' }, { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup' }, { destination: '/data', type: 'bind', source: '/x' }], linux: { namespaces: [{ type: 'network' }, { type: 'uts' }] }, ...extra }) as unknown as RuntimeConfig;

test('hostsFile: the host\'s entries as ADDRESS, a tab, the names (comments and lone words dropped), localhost added when missing, the hostname last', () => {
  assert.equal(hostsFile('127.0.0.1 localhost\n192.0.2.1   gw  gateway # x\n# only a comment\nlonely\n', 'box'), '127.0.0.1\tlocalhost\n192.0.2.1\tgw gateway\n127.0.0.1\tbox\n');
  assert.equal(hostsFile('', undefined), '127.0.0.1\tlocalhost\n::1\tlocalhost\n');
  assert.equal(hostsFile('10.0.0.1 db\n', 'box'), '127.0.0.1\tlocalhost\n::1\tlocalhost\n10.0.0.1\tdb\n127.0.0.1\tbox\n');
  assert.equal(hostsFile('::1 ip6-localhost localhost\n', undefined), '::1\tip6-localhost localhost\n');
});

test('a private network: .containerenv, hostname and hosts with the hostname, no resolv.conf; the host\'s network: resolv.conf and hosts without it', () =>
  withHostEtc((_dir, etc) => {
    const own = etcFilesFor(config(), etc);
    assert.deepEqual(own.map((f) => [f.name, f.destination]), [['.containerenv', '/run/.containerenv'], ['hostname', '/etc/hostname'], ['hosts', '/etc/hosts']]);
    assert.deepEqual(own.map((f) => f.content), ['', 'box\n', '127.0.0.1\tlocalhost\n192.0.2.1\tgw gateway\n127.0.0.1\tbox\n']);
    const host = etcFilesFor(config({ linux: { namespaces: [{ type: 'uts' }] } } as Partial<RuntimeConfig>), etc);
    assert.deepEqual(host.map((f) => f.name), ['.containerenv', 'hostname', 'resolv.conf', 'hosts']);
    assert.equal(host[2]?.content, 'nameserver 192.0.2.53\n');
    assert.equal(host[3]?.content, '127.0.0.1\tlocalhost\n192.0.2.1\tgw gateway\n', 'the host\'s name resolves as on the host');
    const nameless = etcFilesFor(config({ hostname: '' }), etc);
    assert.deepEqual(nameless.map((f) => f.name), ['.containerenv', 'hosts']);
    assert.equal(etcFilesFor({ ociVersion: '1.0.2' } as RuntimeConfig, join(etc, 'missing')).find((f) => f.name === 'resolv.conf')?.content, '', 'no linux section: the host network; an unreadable host file is empty');
    assert.deepEqual([...ETC_FILE_NAMES].sort(), ['.containerenv', 'hostname', 'hosts', 'resolv.conf']);
  }));

test('withEtcFiles: the files written (0644) into the dir, bound after /sys/fs/cgroup, a destination the config mounts already left to it', () =>
  withHostEtc((dir, etc) => {
    const staged = join(dir, 'staged', 'etc');
    const result = withEtcFiles(config({ mounts: [...(config().mounts ?? []), { destination: '/etc/hostname', type: 'bind', source: '/mine' }] } as Partial<RuntimeConfig>), staged, { hostEtc: etc });
    assert.deepEqual(result.mounts?.map((m) => m.destination), ['/proc', '/sys/fs/cgroup', '/run/.containerenv', '/etc/hosts', '/data', '/etc/hostname']);
    assert.deepEqual(result.mounts?.[2], { destination: '/run/.containerenv', type: 'bind', source: join(staged, '.containerenv'), options: ['bind', 'rprivate'] });
    assert.deepEqual(readdirSync(staged).sort(), ['.containerenv', 'hosts']);
    assert.equal(readFileSync(join(staged, 'hosts'), 'utf8'), '127.0.0.1\tlocalhost\n192.0.2.1\tgw gateway\n127.0.0.1\tbox\n');
    assert.equal(statSync(join(staged, 'hosts')).mode & 0o777, 0o644);
    assert.equal(statSync(staged).mode & 0o777, 0o755);
    const noCgroup = withEtcFiles(config({ mounts: [{ destination: '/proc', type: 'proc', source: 'proc' }] } as Partial<RuntimeConfig>), join(dir, 'b'), { hostEtc: etc });
    assert.deepEqual(noCgroup.mounts?.map((m) => m.destination), ['/proc', '/run/.containerenv', '/etc/hostname', '/etc/hosts'], 'no cgroup mount: at the end');
    const bare = withEtcFiles({ ociVersion: '1.0.2', hostname: 'h' } as RuntimeConfig, join(dir, 'c'), { hostEtc: etc });
    assert.deepEqual(bare.mounts?.map((m) => m.destination), ['/run/.containerenv', '/etc/hostname', '/etc/resolv.conf', '/etc/hosts']);
  }));

test('withEtcFiles over a root on the host: only where the root has the mount point (a read-only root is not written to)', () =>
  withHostEtc((dir, etc) => {
    const root = join(dir, 'rootfs');
    mkdirSync(join(root, 'etc'), { recursive: true });
    writeFileSync(join(root, 'etc', 'hosts'), '');
    const result = withEtcFiles(config(), join(dir, 'staged'), { hostEtc: etc, rootOnHost: root });
    assert.deepEqual(result.mounts?.map((m) => m.destination), ['/proc', '/sys/fs/cgroup', '/etc/hosts', '/data']);
    assert.deepEqual(readdirSync(join(dir, 'staged')), ['hosts']);
  }));
