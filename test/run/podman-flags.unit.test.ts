/**
 * podman's run flags in process (podman-flags.test.ts runs them through oci-spec and ns-enter):
 * each flag's accepted forms and its one-line refusals, --env-file's format, and where each
 * extra goes in a config (replacing what it replaces, keeping the rest and runc's field order).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from '../../lib/core/errors.js';
import { applyPodmanExtras, envFileEntries, INIT_PATH, parsePodmanFlags, withCatatonit } from '../../lib/run/podman-flags.js';
import type { RuntimeConfig } from '../../lib/run/runtime-spec.js';
import { withTempDir } from '../helpers/paths.js';

const refused = (message: string | RegExp) => (e: unknown) => e instanceof UsageError && (typeof message === 'string' ? e.message === message : message.test(e.message));

test('nothing given: no extras', () => {
  assert.deepEqual(parsePodmanFlags({}), {});
  assert.deepEqual(parsePodmanFlags({ ulimit: [], 'group-add': [], label: [], device: [], pid: 'private', ipc: 'private', uts: 'private' }), {});
});

test('--ulimit NAME=SOFT[:HARD]: RLIMIT_NAME, -1 is unlimited, the hard limit defaults to the soft', () => {
  assert.deepEqual(parsePodmanFlags({ ulimit: ['nofile=100:200', 'core=-1', 'nproc=5', 'stack=-1:-1'] }).ulimits, [
    { type: 'RLIMIT_NOFILE', soft: 100, hard: 200 },
    { type: 'RLIMIT_CORE', soft: 2 ** 64 - 1, hard: 2 ** 64 - 1 },
    { type: 'RLIMIT_NPROC', soft: 5, hard: 5 },
    { type: 'RLIMIT_STACK', soft: 2 ** 64 - 1, hard: 2 ** 64 - 1 },
  ]);
  assert.deepEqual(parsePodmanFlags({ ulimit: ['cpu=7:7'] }).ulimits, [{ type: 'RLIMIT_CPU', soft: 7, hard: 7 }]);
  for (const value of ['nofile', 'nofile=', 'nofile=a', 'NOFILE=1', 'bogus=1', 'nofile=1:2:3', ' nofile=1', 'nofile=1 ', 'xnofile=1']) {
    assert.throws(() => parsePodmanFlags({ ulimit: [value] }), refused(`--ulimit ${JSON.stringify(value)}: expected NAME=SOFT[:HARD] with NAME one of as, core, cpu, data, fsize, locks, memlock, msgqueue, nice, nofile, nproc, rss, rtprio, rttime, sigpending, stack`), value);
  }
  assert.throws(() => parsePodmanFlags({ ulimit: ['nofile=200:100'] }), refused('--ulimit nofile=200:100: the soft limit is above the hard one'));
  assert.throws(() => parsePodmanFlags({ ulimit: ['nofile=-1:100'] }), refused('--ulimit nofile=-1:100: the soft limit is above the hard one'));
});

test('--shm-size: bytes, k, m, g in either case; zero or anything else is refused', () => {
  const size = (value: string) => parsePodmanFlags({ 'shm-size': value }).shmSize;
  assert.equal(size('100'), 100);
  assert.equal(size('100b'), 100);
  assert.equal(size('2k'), 2048);
  assert.equal(size('64m'), 64 * 1024 ** 2);
  assert.equal(size('64M'), 64 * 1024 ** 2);
  assert.equal(size('1g'), 1024 ** 3);
  assert.equal(size(' 3k '), 3072);
  for (const value of ['0', '0m', 'm', '1t', '1.5m', '-1', 'x1m', '1mb']) assert.throws(() => size(value), refused(`--shm-size ${JSON.stringify(value)}: expected a size like 64m`), value);
});

test('--group-add: numeric gids only', () => {
  assert.deepEqual(parsePodmanFlags({ 'group-add': ['10', '0'] }).groupAdd, [10, 0]);
  for (const value of ['wheel', '-1', '1x', 'x1', '']) assert.throws(() => parsePodmanFlags({ 'group-add': [value] }), refused(`--group-add ${JSON.stringify(value)}: give a numeric gid (group names are not looked up)`), value);
});

test('--stop-signal: a name with or without SIG, in any case, or a number', () => {
  const signal = (value: string) => parsePodmanFlags({ 'stop-signal': value }).stopSignal;
  assert.equal(signal('term'), 'SIGTERM');
  assert.equal(signal('SIGKILL'), 'SIGKILL');
  assert.equal(signal('sigusr1'), 'SIGUSR1');
  assert.equal(signal('RTMIN+3'), 'SIGRTMIN+3');
  assert.equal(signal('15'), '15');
  for (const value of ['', 'SIG TERM', 'term!', '1.5']) assert.throws(() => signal(value), refused(`--stop-signal ${JSON.stringify(value)}: not a signal`), value);
});

test('--pid/--ipc/--uts: host shares, private is the default, anything else is refused naming the flag', () => {
  assert.deepEqual(parsePodmanFlags({ pid: 'host', uts: 'host' }).hostNamespaces, ['pid', 'uts']);
  assert.deepEqual(parsePodmanFlags({ ipc: 'host' }).hostNamespaces, ['ipc']);
  for (const ns of ['pid', 'ipc', 'uts'] as const) {
    assert.throws(() => parsePodmanFlags({ [ns]: 'container:x' }), refused(`--${ns} "container:x": only host or private are supported (joining another container's namespace is not)`));
  }
});

test('--label and --device are refused in one line, with what to use', () => {
  assert.throws(() => parsePodmanFlags({ label: ['a=b'] }), (e: unknown) => refused(/^--label is not supported: /)(e) && (e as UsageError).hint === 'use --annotation KEY=VALUE');
  assert.throws(() => parsePodmanFlags({ device: ['/dev/fuse'] }), (e: unknown) => refused(/^--device is not supported yet: /)(e) && (e as UsageError).hint === 'use --privileged for every host device');
});

test('--env-file: NAME=VALUE or NAME lines, comments and blank lines skipped, CRLF read, files in order; a missing file in one line', () =>
  withTempDir('cp-env-file-', async (dir) => {
    const a = join(dir, 'a');
    const b = join(dir, 'b');
    writeFileSync(a, '# a comment\nX=1\r\n\n   \n  # indented comment\nNAME_ONLY\nY= spaced value \n');
    writeFileSync(b, 'Z=3');
    assert.deepEqual(envFileEntries([a, b]), ['X=1', 'NAME_ONLY', 'Y= spaced value ', 'Z=3']);
    assert.deepEqual(envFileEntries([]), []);
    assert.throws(() => envFileEntries([join(dir, 'missing')]), refused(`--env-file ${join(dir, 'missing')}: cannot read: no such file`));
    assert.throws(() => envFileEntries([dir]), refused(new RegExp(`^--env-file ${dir}: cannot read: EISDIR`)));
  }));

const base = (): RuntimeConfig =>
  ({
    ociVersion: '1.0.2',
    process: { args: ['sh'], user: { uid: 0, gid: 0, additionalGids: [10] }, cwd: '/', rlimits: [{ type: 'RLIMIT_NOFILE', soft: 1024, hard: 1024 }, { type: 'RLIMIT_CORE', soft: 0, hard: 0 }] },
    root: { path: 'rootfs' },
    hostname: 'box',
    mounts: [{ destination: '/proc', type: 'proc', source: 'proc' }, { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'size=65536k'] }],
    linux: { namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }] },
  }) as unknown as RuntimeConfig;

test('applyPodmanExtras: each extra where podman puts it, the rest as it was, runc\'s field order kept', () => {
  const config = base();
  assert.equal(applyPodmanExtras(config, undefined), config);
  assert.deepEqual(applyPodmanExtras(config, {}), config);
  const applied = applyPodmanExtras(config, { ulimits: [{ type: 'RLIMIT_NOFILE', soft: 1, hard: 2 }], groupAdd: [10, 20], shmSize: 1024 * 1024 + 1, stopSignal: 'SIGTERM', hostNamespaces: ['pid', 'uts'] });
  assert.deepEqual(applied.process?.rlimits, [{ type: 'RLIMIT_CORE', soft: 0, hard: 0 }, { type: 'RLIMIT_NOFILE', soft: 1, hard: 2 }], 'the same type replaced');
  assert.deepEqual(applied.process?.user, { uid: 0, gid: 0, additionalGids: [10, 20] }, 'gids added once');
  assert.deepEqual(applied.mounts?.[1]?.options, ['nosuid', 'size=1025k'], 'the size replaced, rounded up to k');
  assert.deepEqual(applied.mounts?.[0], config.mounts?.[0]);
  assert.deepEqual(applied.linux?.namespaces, [{ type: 'network' }, { type: 'ipc' }, { type: 'mount' }]);
  assert.deepEqual(applied.annotations, { 'org.opencontainers.image.stopSignal': 'SIGTERM' });
  assert.equal('hostname' in applied, false, 'the host\'s uts: no hostname');
  assert.deepEqual(Object.keys(applied), ['ociVersion', 'process', 'root', 'mounts', 'linux', 'annotations']);
  assert.deepEqual(config, base(), 'the config given is not changed');
  const noRlimits = base();
  delete (noRlimits.process as { rlimits?: unknown }).rlimits;
  (noRlimits.process as { user: object }).user = { uid: 0, gid: 0 };
  const fresh = applyPodmanExtras(noRlimits, { ulimits: [{ type: 'RLIMIT_NPROC', soft: 1, hard: 1 }], groupAdd: [5] });
  assert.deepEqual(fresh.process?.rlimits, [{ type: 'RLIMIT_NPROC', soft: 1, hard: 1 }]);
  assert.deepEqual(fresh.process?.user.additionalGids, [5]);
  assert.equal(fresh.hostname, 'box');
  assert.deepEqual(fresh.linux?.namespaces, config.linux?.namespaces);
  const annotated = applyPodmanExtras({ ...base(), annotations: { a: 'b' } } as RuntimeConfig, { stopSignal: '9' });
  assert.deepEqual(annotated.annotations, { a: 'b', 'org.opencontainers.image.stopSignal': '9' });
  const bare = applyPodmanExtras({ ociVersion: '1.0.2', root: { path: 'rootfs' } } as unknown as RuntimeConfig, { ulimits: [{ type: 'RLIMIT_NPROC', soft: 1, hard: 1 }], shmSize: 1024, groupAdd: [1], hostNamespaces: ['ipc'] });
  assert.deepEqual(bare, { ociVersion: '1.0.2', root: { path: 'rootfs' } }, 'nothing to put them in: nothing added');
  const noShmOptions = applyPodmanExtras({ ...base(), mounts: [{ destination: '/dev/shm', type: 'tmpfs', source: 'shm' }] } as RuntimeConfig, { shmSize: 2048 });
  assert.deepEqual(noShmOptions.mounts?.[0]?.options, ['size=2k']);
});

test('withCatatonit: the host\'s catatonit bound read-only and run first, with the command after --', () => {
  const config = withCatatonit(base());
  assert.deepEqual(config.process?.args, [INIT_PATH, '--', 'sh']);
  const init = config.mounts?.at(-1);
  assert.equal(init?.destination, INIT_PATH);
  assert.equal(init?.type, 'bind');
  assert.match(init?.source ?? '', /\/catatonit$/);
  assert.deepEqual(init?.options, ['bind', 'private', 'ro']);
  assert.equal(config.mounts?.length, 3);
  const bare = withCatatonit({ ociVersion: '1.0.2' } as unknown as RuntimeConfig);
  assert.equal('process' in bare, false);
  assert.equal(bare.mounts?.length, 1);
  const noArgs = withCatatonit({ ...base(), process: { ...base().process, args: undefined } } as unknown as RuntimeConfig);
  assert.deepEqual(noArgs.process?.args, [INIT_PATH, '--']);
});
