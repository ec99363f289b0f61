/**
 * The config oci-spec builds from an image and run flags, against the one podman 4.3 writes
 * (`podman create` then `podman init`) for the same image and flags: env, mounts, seccomp,
 * sysctls, capabilities, masked and read-only paths, namespaces, user and cwd. The only
 * differences allowed are the ones the README lists, each normalised here with its reason.
 * Each row has a negative twin: our config for the next row must not match podman's for this one.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RuntimeConfig, SeccompRule } from '../../lib/run/runtime-spec.js';
import { tool } from '../helpers/exec.js';
import { busyboxRootfs } from '../helpers/mounts.js';
import { tempDir } from '../helpers/paths.js';
import { podmanOracle, type PodmanOracle } from '../helpers/podman.js';

/** Debian's containers.conf adds these to podman 4's default capabilities; we keep podman 4's upstream list. */
const DEBIAN_EXTRA_CAPS = new Set(['CAP_AUDIT_WRITE', 'CAP_MKNOD', 'CAP_NET_RAW']);

/** The profile's rules for socket alone are the ones that follow CAP_AUDIT_WRITE (socket(AF_NETLINK, *, NETLINK_AUDIT) denied without it). */
function isAuditSocketRule(rule: SeccompRule): boolean {
  return rule.names.join() === 'socket';
}

/** What is compared, with the listed differences taken out. */
function view(config: RuntimeConfig, side: 'ours' | 'podman') {
  // --privileged: every capability of the bounding set on both sides, Debian's extras among them.
  const privileged = config.annotations?.['io.podman.annotations.privileged'] === 'TRUE';
  const caps = Object.fromEntries(Object.entries(config.process?.capabilities ?? {}).map(([set, list]) => [set, (list as string[]).filter((c) => side === 'ours' || privileged || !DEBIAN_EXTRA_CAPS.has(c))]));
  const seccomp = config.linux?.seccomp && { ...config.linux.seccomp, syscalls: config.linux.seccomp.syscalls?.filter((r) => !isAuditSocketRule(r)) };
  const tty = config.process?.terminal === true;
  const env = (config.process?.env ?? [])
    // container= names the engine (podman / container-parts); podman's containers.conf sets TERM=xterm even without -t.
    .map((e) => (e.startsWith('container=') ? 'container=ENGINE' : e))
    .filter((e) => tty || e !== 'TERM=xterm')
    .sort();
  const { uid, gid, additionalGids } = config.process?.user ?? { uid: -1, gid: -1 };
  return {
    env,
    // podman also binds /dev/shm from its userdata (we keep runc's tmpfs): the destination is the same.
    mounts: (config.mounts ?? []).map((m) => m.destination).sort(),
    seccomp,
    sysctl: config.linux?.sysctl ?? {},
    capabilities: Object.fromEntries(Object.entries(caps).filter(([, list]) => list.length > 0)),
    maskedPaths: config.linux?.maskedPaths,
    readonlyPaths: config.linux?.readonlyPaths,
    namespaces: (config.linux?.namespaces ?? []).map((ns) => ns.type).sort(),
    // podman writes umask 0022; runc's default is the same umask, unwritten.
    user: { uid, gid, additionalGids: additionalGids ?? [] },
    cwd: config.process?.cwd,
    // The host's /dev/ptmx is the host's pty namespace: ours comes with the container's devpts (runc does the same for /dev/ptmx).
    devices: (config.linux?.devices ?? []).filter((d) => d.path !== '/dev/ptmx').map((d) => `${d.path} ${d.type} ${d.major}:${d.minor}`).sort(),
    terminal: tty,
  };
}

const ROWS: string[][] = [
  ['--network', 'none'],
  ['--network', 'host'],
  // A named user: podman also gives a numeric -u its passwd entry's groups, where conversion.md (and we) give them only to a named user (README).
  ['--network', 'none', '-u', 'lab'],
  ['--network', 'none', '-w', '/tmp', '-e', 'A=1'],
  ['--network', 'none', '--cap-add', 'SYS_ADMIN', '--cap-drop', 'CHOWN'],
  ['--network', 'none', '--sysctl', 'kernel.shmmax=1234'],
  ['--network', 'none', '--security-opt', 'seccomp=unconfined'],
  ['--network', 'none', '-t'],
  ['--network', 'none', '--privileged'],
  ['--network', 'none', '--pid', 'host', '--ipc', 'host', '--group-add', '10'],
];

let work: { path: string; cleanup: () => Promise<void> };
let podman: PodmanOracle;
let document: string;

before(async () => {
  work = await tempDir('cp-podman-config-');
  const box = await busyboxRootfs(work.path);
  podman = await podmanOracle(join(work.path, 'podman'), box.layout, 'busybox');
  const blob = (digest: string) => JSON.parse(readFileSync(join(box.layout, 'blobs', 'sha256', digest.slice(7)), 'utf8'));
  const manifest = blob((JSON.parse(readFileSync(join(box.layout, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> }).manifests[0]?.digest as string);
  document = JSON.stringify({ documentVersion: 1, rootfs: { mode: 'flat', path: box.rootfs, config: blob(manifest.config.digest) } });
});

after(async () => {
  await podman?.cleanup();
  await work?.cleanup();
});

async function ours(flags: string[], name: string): Promise<RuntimeConfig> {
  const bundle = join(work.path, `bundle-${name}`);
  const result = await tool('oci-spec', ['--bundle', bundle, '--hostname', 'box', ...flags, '--', 'sh'], { input: document });
  assert.equal(result.status, 0, result.stderr);
  return JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')) as RuntimeConfig;
}

describe('oci-spec against podman 4.3, flag set by flag set', () => {
  const theirs: RuntimeConfig[] = [];
  before(async () => {
    for (const flags of ROWS) theirs.push(await podman.config(['--hostname', 'box', ...flags], ['sh']));
  });
  for (const [i, flags] of ROWS.entries()) {
    test(`${flags.join(' ')}: the same as podman's, but for the listed differences`, async () => {
      assert.deepEqual(view(await ours(flags, String(i)), 'ours'), view(theirs[i] as RuntimeConfig, 'podman'));
    });
    test(`negative twin of ${flags.join(' ')}: our config for the next flag set differs from podman's for this one`, async () => {
      const next = ROWS[(i + 1) % ROWS.length] as string[];
      assert.notDeepEqual(view(await ours(next, `${i}-twin`), 'ours'), view(theirs[i] as RuntimeConfig, 'podman'));
    });
  }
});
