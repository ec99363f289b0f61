/**
 * lib/spec.ts and oci-spec, against the oracles: `runc spec` on this machine (byte for byte,
 * field by field), the official runtime-spec JSON Schema and its good/bad examples, and
 * `runc run` of the bundles we write from the lab busybox image.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { ImageConfig, PipeDocument } from '../../lib/cli/document.js';
import { NotFoundError, UsageError } from '../../lib/core/errors.js';
import { parseRunFlags, type RunFlags } from '../../lib/run/runflags.js';
import type { RuntimeConfig } from '../../lib/run/runtime-spec.js';
import { DEFAULT_PATH, formatConfig, runcDefaultConfig, validateRuntimeConfig } from '../../lib/run/spec.js';
import { buildConfig, CONTAINER_ENV, PODMAN_DEFAULT_CAPABILITIES, PODMAN_MASKED_PATHS, PODMAN_READONLY_PATHS } from '../../lib/run/config-from-image.js';
import { rootFromEarlierSteps } from '../../lib/run/earlier-steps.js';
import { exec, mustExec, tool } from '../helpers/exec.js';
import { REPO, SPECS, tempDir, toolPath } from '../helpers/paths.js';
import { pushBusybox, startRegistry, type TestRegistry } from '../helpers/registry.js';

const SCHEMA_DIR = join(SPECS, 'runtime-spec', 'schema');
const EXAMPLES = join(SCHEMA_DIR, 'test', 'config');

/** The official schema: draft-04 with bare file-name $refs, so every file is added under its own name. */
function officialValidator(): (value: unknown) => string | undefined {
  const require = createRequire(import.meta.url);
  const Ajv = (require('ajv-draft-04') as { default: new (o: object) => { addSchema(s: object, key: string): void; getSchema(key: string): ((v: unknown) => boolean) & { errors?: unknown[] } } }).default;
  const ajv = new Ajv({ strict: false, allErrors: true });
  for (const file of readdirSync(SCHEMA_DIR).filter((f) => f.endsWith('.json'))) ajv.addSchema(JSON.parse(readFileSync(join(SCHEMA_DIR, file), 'utf8')), file);
  const validate = ajv.getSchema('config-schema.json');
  assert.ok(validate, 'config-schema.json compiles');
  return (value) => (validate(value) ? undefined : JSON.stringify(validate.errors));
}
const official = officialValidator();

function noFlags(): RunFlags {
  return parseRunFlags({ 'read-only': false, tty: false, init: false, rm: false });
}

function flagsWith(extra: Partial<RunFlags>): RunFlags {
  return { ...noFlags(), ...extra };
}

async function runcSpec(args: string[]): Promise<string> {
  const dir = await tempDir('cp-runc-spec-');
  try {
    await mustExec('runc', ['spec', ...args], { cwd: dir.path });
    return await readFile(join(dir.path, 'config.json'), 'utf8');
  } finally {
    await dir.cleanup();
  }
}

/** Field by field, so a difference names the field; then the whole. */
function assertSameConfig(ours: Record<string, unknown>, reference: Record<string, unknown>, where = ''): void {
  for (const key of new Set([...Object.keys(reference), ...Object.keys(ours)])) {
    const a = ours[key];
    const b = reference[key];
    if (typeof a === 'object' && a !== null && !Array.isArray(a) && typeof b === 'object' && b !== null && !Array.isArray(b)) {
      assertSameConfig(a as Record<string, unknown>, b as Record<string, unknown>, `${where}${key}.`);
    } else {
      assert.deepEqual(a, b, `${where}${key}`);
    }
  }
}

describe('runc spec is the reference for the defaults', () => {
  for (const rootless of [false, true]) {
    const flag = rootless ? ['--rootless'] : [];
    test(`oci-spec ${flag.join(' ')} prints what runc spec ${flag.join(' ')} writes, byte for byte`, async () => {
      const reference = await runcSpec(flag);
      const ours = await tool('oci-spec', flag);
      assert.equal(ours.status, 0, ours.stderr);
      assertSameConfig(JSON.parse(ours.stdout), JSON.parse(reference));
      assert.equal(ours.stdout, reference);
      assert.equal(official(JSON.parse(ours.stdout)), undefined);
    });

    test(`oci-spec ${flag.join(' ')} --bundle DIR writes DIR/config.json like runc spec -b DIR and emits a bundle section`, async () => {
      const dir = await tempDir('cp-spec-bundle-');
      try {
        const result = await tool('oci-spec', [...flag, '--bundle', join(dir.path, 'b')]);
        assert.equal(result.status, 0, result.stderr);
        assert.equal(await readFile(join(dir.path, 'b', 'config.json'), 'utf8'), await runcSpec(flag));
        const doc = JSON.parse(result.stdout) as PipeDocument;
        assert.deepEqual(doc.bundle, { path: join(dir.path, 'b'), config: join(dir.path, 'b', 'config.json'), root: join(dir.path, 'b', 'rootfs'), rootless });
      } finally {
        await dir.cleanup();
      }
    });
  }

  test("formatConfig writes Go's encoding: tab indent, no final newline, <, > and & escaped", () => {
    assert.equal(formatConfig({ ociVersion: '1.0.2-dev', annotations: { a: '<b> & c' } }), '{\n\t"ociVersion": "1.0.2-dev",\n\t"annotations": {\n\t\t"a": "\\u003cb\\u003e \\u0026 c"\n\t}\n}');
  });

  test('a config built from an image keeps runc\'s namespaces, mounts, rlimits and devices rule; seccomp, sysctl, masked and read-only paths are podman\'s', async () => {
    const reference = JSON.parse(await runcSpec([])) as RuntimeConfig;
    const built = buildConfig({ image: imageConfig({ Cmd: ['sh'] }), rootfs: '/nonexistent', flags: noFlags(), rootless: false });
    assert.deepEqual(built.mounts, reference.mounts);
    // Issue 19: a config built from an image adds podman's default seccomp profile (test/run/seccomp.test.ts),
    // its ping sysctl and its masked and read-only paths (test/run/podman-config.test.ts); the rest is runc's.
    const podmanFields = (linux: RuntimeConfig['linux']) => {
      const { seccomp, sysctl, maskedPaths, readonlyPaths, ...rest } = linux ?? {};
      return { podman: { seccomp, sysctl, maskedPaths, readonlyPaths }, rest };
    };
    const { podman, rest } = podmanFields(built.linux);
    const { maskedPaths: _m, readonlyPaths: _r, ...referenceRest } = reference.linux ?? {};
    assert.deepEqual(rest, referenceRest);
    assert.equal((podman.seccomp as { defaultAction?: string } | undefined)?.defaultAction, 'SCMP_ACT_ERRNO');
    assert.deepEqual(podman.sysctl, { 'net.ipv4.ping_group_range': '0 0' });
    assert.deepEqual([podman.maskedPaths, podman.readonlyPaths], [PODMAN_MASKED_PATHS, PODMAN_READONLY_PATHS]);
    assert.deepEqual(built.process?.rlimits, reference.process?.rlimits);
    assert.equal(built.process?.noNewPrivileges, reference.process?.noNewPrivileges);
    assert.equal(built.hostname, reference.hostname);
    const rootlessReference = JSON.parse(await runcSpec(['--rootless'])) as RuntimeConfig;
    const rootlessBuilt = buildConfig({ image: imageConfig({ Cmd: ['sh'] }), rootfs: '/nonexistent', flags: noFlags(), rootless: true });
    assert.deepEqual(rootlessBuilt.mounts, rootlessReference.mounts);
    const rootless = podmanFields(rootlessBuilt.linux);
    const { maskedPaths: _rm, readonlyPaths: _rr, ...rootlessReferenceRest } = rootlessReference.linux ?? {};
    assert.deepEqual(rootless.rest, rootlessReferenceRest);
    assert.ok(rootless.podman.seccomp);
    assert.equal(rootless.podman.sysctl, undefined, 'no network namespace of its own: no ping sysctl');
  });
});

describe('the official runtime-spec schema is the oracle for validation', () => {
  const good = readdirSync(join(EXAMPLES, 'good'));
  const bad = readdirSync(join(EXAMPLES, 'bad'));
  const badField: Record<string, RegExp> = {
    'freebsd-vnet-disable.json': /: freebsd\.jail\.vnet: must be one of "new", "inherit"$/,
    'invalid-json.json': /: not JSON/,
    'linux-hugepage.json': /: linux\.resources\.hugepageLimits\[0\]\.pageSize: must match/,
    'linux-netdevice.json': /: linux\.netDevices\.eth0\.name: must be string$/,
    'linux-rdma.json': /: linux\.resources\.rdma\.mlx5_1\.hcaHandles: must be integer$/,
  };

  for (const file of good) {
    test(`good example ${file}: the official schema and oci-spec --validate accept it`, async () => {
      const path = join(EXAMPLES, 'good', file);
      assert.equal(official(JSON.parse(readFileSync(path, 'utf8'))), undefined);
      const result = await tool('oci-spec', ['--validate', path]);
      assert.equal(result.status, 0, result.stderr);
      assert.equal(result.stdout, '');
    });
  }

  for (const file of bad) {
    test(`bad example ${file}: the official schema and oci-spec --validate refuse it, naming the field`, async () => {
      const path = join(EXAMPLES, 'bad', file);
      const text = readFileSync(path, 'utf8');
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
      if (parsed !== undefined) assert.notEqual(official(parsed), undefined, 'the official schema refuses it');
      const result = await tool('oci-spec', ['--validate', path]);
      assert.equal(result.status, 2);
      assert.equal(result.stdout, '');
      const lines = result.stderr.split('\n').filter(Boolean);
      assert.equal(lines.length, 1, result.stderr);
      assert.match(lines[0] as string, new RegExp(`^oci-spec: ${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
      const field = badField[file];
      assert.ok(field, `${file}: a new bad example; add the field it breaks to badField`);
      assert.match(lines[0] as string, field);
    });
  }

  test('--rm belongs to ns-enter: oci-spec refuses it (--init binds catatonit: test/run/podman-flags.test.ts)', async () => {
    const result = await tool('oci-spec', ['--rm']);
    assert.equal(result.status, 2);
    assert.equal(result.stderr, 'oci-spec: --rm is for ns-enter: a config.json has no place for it\n');
  });

  test('--validate takes nothing else', async () => {
    const result = await tool('oci-spec', ['--validate', join(EXAMPLES, 'good', 'minimal.json'), '--bundle', '/tmp/x']);
    assert.equal(result.status, 2);
    assert.equal(result.stderr, 'oci-spec: --validate FILE takes no other flags or command\n');
  });

  test('--validate of a missing file: one line, exit 2', async () => {
    const result = await tool('oci-spec', ['--validate', '/nonexistent/config.json']);
    assert.equal(result.status, 2);
    assert.equal(result.stderr, 'oci-spec: /nonexistent/config.json: cannot read: no such file\n');
  });

  test('the build precompiled the validator (ajv standalone code), so a run does not compile the schema', () => {
    assert.ok(existsSync(join(REPO, 'dist', 'schema', 'runtime-config.validate.cjs')));
  });

  test('validateRuntimeConfig names the path of the first problem', () => {
    const config = runcDefaultConfig({ rootless: false });
    (config.process as { user: unknown }).user = { uid: -1, gid: 0 };
    assert.throws(() => validateRuntimeConfig(config, 'x.json'), /^Error: x\.json: process\.user\.uid: must be >= 0$|x\.json: process\.user\.uid: must be >= 0/);
    assert.throws(() => validateRuntimeConfig({}, 'y.json'), /y\.json: \(the top level\): missing required field "ociVersion"/);
  });
});

function imageConfig(config: NonNullable<ImageConfig['config']>, extra: Partial<ImageConfig> = {}): ImageConfig {
  return { architecture: 'amd64', os: 'linux', config, rootfs: { type: 'layers', diff_ids: [] }, ...extra };
}

describe('buildConfig: image config (conversion.md) and run flags', () => {
  let rootfs: { path: string; cleanup: () => Promise<void> };
  before(async () => {
    rootfs = await tempDir('cp-spec-rootfs-');
    await mkdir(join(rootfs.path, 'etc'));
    await writeFile(join(rootfs.path, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nlab:x:1000:1000::/home/lab:/bin/sh\n');
    await writeFile(join(rootfs.path, 'etc', 'group'), 'root:x:0:\nwheel:x:10:lab\nlab:x:1000:\n');
  });
  after(() => rootfs.cleanup());
  const build = (image: ImageConfig | undefined, flags: Partial<RunFlags> = {}, args?: string[], rootless = false) =>
    buildConfig({ image, rootfs: rootfs.path, flags: flagsWith(flags), rootless, args, hostIds: { uid: 1234, gid: 1234 } });

  test('args = Entrypoint + Cmd; CMD ARGS replace Cmd; --entrypoint replaces Entrypoint and drops Cmd', () => {
    const image = imageConfig({ Entrypoint: ['/bin/ep', '-x'], Cmd: ['default'] });
    assert.deepEqual(build(image).process?.args, ['/bin/ep', '-x', 'default']);
    assert.deepEqual(build(image, {}, ['mine', 'too']).process?.args, ['/bin/ep', '-x', 'mine', 'too']);
    assert.deepEqual(build(image, { entrypoint: ['/bin/other'] }).process?.args, ['/bin/other']);
    assert.deepEqual(build(image, { entrypoint: ['/bin/other'] }, ['arg']).process?.args, ['/bin/other', 'arg']);
    assert.deepEqual(build(image, { entrypoint: [] }, ['sh']).process?.args, ['sh']);
    assert.deepEqual(build(imageConfig({ Cmd: ['sh'] })).process?.args, ['sh']);
    assert.throws(() => build(imageConfig({})), (e: unknown) => e instanceof UsageError && /no command to run/.test(e.message));
    assert.deepEqual(build(undefined).process?.args, ['sh'], "no image: runc's default command");
  });

  test('Env merged: container= first, the image\'s, PATH only when missing, TERM only with -t, HOME and HOSTNAME (podman\'s), -e on top by name', () => {
    const podman = ['HOME=/root', 'HOSTNAME=runc'];
    assert.deepEqual(build(imageConfig({ Cmd: ['sh'], Env: ['PATH=/bin', 'A=1'] }), { env: ['A=2', 'B=3'] }).process?.env, [CONTAINER_ENV, 'PATH=/bin', 'A=2', ...podman, 'B=3']);
    assert.deepEqual(build(imageConfig({ Cmd: ['sh'], Env: ['A=1'] })).process?.env, [CONTAINER_ENV, DEFAULT_PATH, 'A=1', ...podman]);
    assert.deepEqual(build(imageConfig({ Cmd: ['sh'], Env: ['A=1'] }), { tty: true }).process?.env, [CONTAINER_ENV, DEFAULT_PATH, 'A=1', 'TERM=xterm', ...podman]);
    assert.deepEqual(build(imageConfig({ Cmd: ['sh'], Env: ['TERM=dumb'] }), { tty: true }).process?.env, [CONTAINER_ENV, DEFAULT_PATH, 'TERM=dumb', ...podman]);
    assert.deepEqual(build(imageConfig({ Cmd: ['sh'], Env: ['HOME=/srv', 'container=other'] }), { user: '1000', hostname: 'box' }).process?.env, [DEFAULT_PATH, 'HOME=/srv', 'container=other', 'HOSTNAME=box'], 'the image wins');
    assert.deepEqual(build(imageConfig({ Cmd: ['sh'] }), { user: '1000' }).process?.env?.slice(-2), ['HOME=/home/lab', 'HOSTNAME=runc'], "HOME from the user's passwd entry");
  });

  test('terminal only with -t; root read-only only with --read-only', () => {
    const plain = build(imageConfig({ Cmd: ['sh'] }));
    assert.equal(plain.process?.terminal, undefined);
    assert.deepEqual(plain.root, { path: rootfs.path });
    const flagged = build(imageConfig({ Cmd: ['sh'] }), { tty: true, readOnly: true });
    assert.equal(flagged.process?.terminal, true);
    assert.deepEqual(flagged.root, { path: rootfs.path, readonly: true });
  });

  test('WorkingDir → cwd, -w overrides', () => {
    assert.equal(build(imageConfig({ Cmd: ['sh'], WorkingDir: '/srv' })).process?.cwd, '/srv');
    assert.equal(build(imageConfig({ Cmd: ['sh'], WorkingDir: '/srv' }), { workdir: '/tmp' }).process?.cwd, '/tmp');
    assert.equal(build(imageConfig({ Cmd: ['sh'] })).process?.cwd, '/');
  });

  test('User → uid, gid and additionalGids from the rootfs; -u overrides; an unknown name is an error', () => {
    assert.deepEqual(build(imageConfig({ Cmd: ['sh'], User: 'lab' })).process?.user, { uid: 1000, gid: 1000, additionalGids: [1000, 10] });
    assert.deepEqual(build(imageConfig({ Cmd: ['sh'], User: 'lab' }), { user: '0:wheel' }).process?.user, { uid: 0, gid: 10 });
    assert.deepEqual(build(imageConfig({ Cmd: ['sh'] })).process?.user, { uid: 0, gid: 0 });
    assert.throws(() => build(imageConfig({ Cmd: ['sh'], User: 'ghost' })), NotFoundError);
  });

  test('podman\'s default capabilities: root gets them all; another user only in the bounding set, plus --cap-add', () => {
    const root = build(imageConfig({ Cmd: ['sh'] }));
    assert.deepEqual(root.process?.capabilities, { bounding: PODMAN_DEFAULT_CAPABILITIES, effective: PODMAN_DEFAULT_CAPABILITIES, permitted: PODMAN_DEFAULT_CAPABILITIES });
    const tuned = build(imageConfig({ Cmd: ['sh'] }), { capAdd: ['CAP_NET_ADMIN'], capDrop: ['CAP_CHOWN', 'CAP_KILL'] });
    assert.deepEqual(tuned.process?.capabilities?.effective, [...PODMAN_DEFAULT_CAPABILITIES.filter((c) => c !== 'CAP_CHOWN' && c !== 'CAP_KILL'), 'CAP_NET_ADMIN'].sort());
    const lab = build(imageConfig({ Cmd: ['sh'], User: 'lab' }), { capAdd: ['CAP_NET_RAW'] });
    assert.deepEqual(lab.process?.capabilities?.effective, ['CAP_NET_RAW']);
    assert.deepEqual(lab.process?.capabilities?.ambient, ['CAP_NET_RAW']);
    assert.ok(lab.process?.capabilities?.bounding?.includes('CAP_CHOWN'));
    const none = build(imageConfig({ Cmd: ['sh'] }), { capDrop: ['ALL'], capAdd: ['CAP_KILL'] });
    assert.deepEqual(none.process?.capabilities?.bounding, ['CAP_KILL']);
  });

  test('Labels, org.opencontainers.image.* annotations, ExposedPorts and StopSignal; Labels win, --annotation on top', () => {
    const image = imageConfig(
      { Cmd: ['sh'], Labels: { 'org.opencontainers.image.title': 'lab', 'org.opencontainers.image.architecture': 'custom' }, ExposedPorts: { '8080/tcp': {}, '53/udp': {} }, StopSignal: 'SIGINT' },
      { created: '2024-01-01T00:00:00Z', variant: 'v8' } as Partial<ImageConfig>,
    );
    assert.deepEqual(build(image, { annotations: { mine: 'yes', 'org.opencontainers.image.title': 'flag' } }).annotations, {
      'org.opencontainers.image.os': 'linux',
      'org.opencontainers.image.architecture': 'custom',
      'org.opencontainers.image.variant': 'v8',
      'org.opencontainers.image.created': '2024-01-01T00:00:00Z',
      'org.opencontainers.image.stopSignal': 'SIGINT',
      'org.opencontainers.image.exposedPorts': '8080/tcp,53/udp',
      'org.opencontainers.image.title': 'flag',
      mine: 'yes',
    });
    assert.equal(build(undefined).annotations, undefined);
  });

  test('Volumes become tmpfs mounts; --tmpfs and -v add mounts, parents first; a user mount replaces one at the same place', () => {
    const image = imageConfig({ Cmd: ['sh'], Volumes: { '/var/lib/data': {}, '/cache': {} } });
    const mounts = build(image, {
      tmpfs: [{ destination: '/cache', options: ['rw', 'size=1m'] }, { destination: '/dev/shm', options: ['rw'] }],
      volumes: [{ source: rootfs.path, destination: '/var/lib/data/sub', readOnly: true }],
    }).mounts ?? [];
    const added = mounts.filter((m) => !runcDefaultConfig({ rootless: false }).mounts?.some((d) => JSON.stringify(d) === JSON.stringify(m)));
    assert.deepEqual(added, [
      { destination: '/cache', type: 'tmpfs', source: 'tmpfs', options: ['rw', 'size=1m'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'tmpfs', options: ['rw'] },
      { destination: '/var/lib/data', type: 'tmpfs', source: 'tmpfs', options: ['rw', 'nosuid', 'nodev'] },
      { destination: '/var/lib/data/sub', type: 'bind', source: rootfs.path, options: ['rbind', 'ro'] },
    ]);
    assert.equal(mounts.filter((m) => m.destination === '/dev/shm').length, 1);
    assert.throws(() => build(image, { volumes: [{ source: '/nonexistent/x', destination: '/x', readOnly: false }] }), /--volume \/nonexistent\/x:\/x: \/nonexistent\/x does not exist/);
  });

  test('--network host drops the network namespace; none keeps or adds it; resources from --memory, --cpus, --pids-limit', () => {
    const types = (c: RuntimeConfig) => c.linux?.namespaces?.map((n) => n.type);
    assert.deepEqual(types(build(undefined, { network: 'host' })), ['pid', 'ipc', 'uts', 'mount']);
    assert.deepEqual(types(build(undefined, { network: 'none' })), ['pid', 'network', 'ipc', 'uts', 'mount']);
    assert.deepEqual(types(build(undefined, { network: 'none' }, undefined, true)), ['pid', 'network', 'ipc', 'uts', 'mount', 'user']);
    assert.deepEqual(build(undefined, { memory: 64 << 20, cpus: 0.5, pidsLimit: 20 }).linux?.resources, {
      devices: [{ allow: false, access: 'rwm' }],
      memory: { limit: 64 << 20 },
      cpu: { quota: 50000, period: 100000 },
      pids: { limit: 20 },
    });
  });

  test('rootless: the caller is mapped to root; a user that is not mapped is refused', () => {
    const config = build(imageConfig({ Cmd: ['sh'] }), {}, undefined, true);
    assert.deepEqual(config.linux?.uidMappings, [{ containerID: 0, hostID: 1234, size: 1 }]);
    assert.throws(() => build(imageConfig({ Cmd: ['sh'], User: 'lab' }), {}, undefined, true), /user 1000: not mapped in a rootless container/);
  });

  test('the root comes from ovl-mount\'s merged dir, else img-unpack\'s flat rootfs', () => {
    const image = imageConfig({ Cmd: ['sh'] });
    const mount = { target: '/m', lower: ['/l'], driver: 'overlay' as const };
    assert.deepEqual(rootFromEarlierSteps({ rootfs: { mode: 'layers', layers: ['/l'], config: image }, mount }), { rootfs: '/m', readOnly: false, image });
    assert.equal(rootFromEarlierSteps({ mount: { ...mount, readOnly: true } }).readOnly, true);
    // Rootless (mountedIn container): the overlay becomes a mount at / for the runtime to make in its namespaces.
    assert.deepEqual(rootFromEarlierSteps({ mount: { ...mount, options: 'userxattr,lowerdir=/l', mountedIn: 'container' } }).overlay, { destination: '/', type: 'overlay', source: 'overlay', options: ['userxattr', 'lowerdir=/l'] });
    assert.throws(() => rootFromEarlierSteps({ rootfs: { mode: 'layers', layers: ['/l'] } }), /one directory per layer is not a root filesystem/);
  });

  test('every config built passes the official schema', () => {
    const image = imageConfig({ Cmd: ['sh'], User: 'lab', Env: ['A=1'], Volumes: { '/v': {} }, ExposedPorts: { '80/tcp': {} }, Labels: { a: 'b' } });
    const variants: Array<[Partial<RunFlags>, boolean]> = [
      [{}, false],
      [{}, true],
      [{ tty: true, readOnly: true, network: 'host', memory: 1 << 30, cpus: 2, pidsLimit: -1, capAdd: ['ALL'], hostname: 'h', annotations: { x: 'y' }, tmpfs: [{ destination: '/t', options: ['rw'] }] }, false],
    ];
    for (const [flags, rootless] of variants) {
      const config = build(rootless ? imageConfig({ Cmd: ['sh'] }) : image, flags, ['sh'], rootless);
      assert.equal(official(JSON.parse(formatConfig(config))), undefined, JSON.stringify(flags));
      validateRuntimeConfig(config, 'built');
    }
  });
});

describe('oci-spec --bundle with the lab busybox image, run by runc', () => {
  let registry: TestRegistry;
  let work: { path: string; cleanup: () => Promise<void> };
  let fetched: string;
  let document: PipeDocument;
  let rootfs: string;
  const containers: string[] = [];

  before(async () => {
    registry = await startRegistry();
    work = await tempDir('cp-spec-e2e-');
    const ref = `${registry.host}/lab/busybox:latest`;
    await pushBusybox(join(work.path, 'build'), [`docker://${ref}`]);
    const fetch = await tool('img-fetch', [`docker://${ref}`, '--tls-verify=false', '--store', join(work.path, 'store'), '-q']);
    assert.equal(fetch.status, 0, fetch.stderr);
    fetched = fetch.stdout;
    // umoci unpacks the rootfs (the oracle for img-unpack), from a layout skopeo writes.
    await mustExec('skopeo', ['copy', '-q', '--src-tls-verify=false', `docker://${ref}`, `oci:${join(work.path, 'layout')}:latest`]);
    await mustExec('umoci', ['unpack', '--image', `${join(work.path, 'layout')}:latest`, join(work.path, 'umoci')]);
    rootfs = join(work.path, 'umoci', 'rootfs');
    const image = JSON.parse(fetched) as PipeDocument;
    document = { ...image, rootfs: { mode: 'flat', path: rootfs, config: image.image?.config } };
  });

  after(async () => {
    for (const name of containers) await exec('runc', ['delete', '-f', name]);
    await work?.cleanup();
    await registry?.stop();
  });

  async function runc(bundle: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
    const name = `cp-spec-${process.pid}-${containers.length}`;
    containers.push(name);
    try {
      return await exec('runc', ['run', '-b', bundle, name], { timeoutMs: 60_000 });
    } finally {
      await exec('runc', ['delete', '-f', name]);
    }
  }

  test('id, env, cwd, hostname, a tmpfs, a read-only bind and the limits, as the flags asked', async () => {
    const data = join(work.path, 'data');
    await mkdir(data);
    await writeFile(join(data, 'hello'), 'from the host\n');
    const bundle = join(work.path, 'bundle1');
    const script = [
      'id',
      'echo "GREETING=$GREETING"',
      'echo "PATH=$PATH"',
      'pwd',
      'hostname',
      'echo scratch > /scratch/f && cat /scratch/f',
      "grep ' /scratch ' /proc/mounts | cut -d' ' -f3,4",
      'cat /data/hello',
      'touch /data/new 2>/dev/null && echo data-writable || echo data-read-only',
      'cat /sys/fs/cgroup/pids/pids.max',
      'cat /sys/fs/cgroup/memory/memory.limit_in_bytes',
    ].join('; ');
    const spec = await tool(
      'oci-spec',
      ['--bundle', bundle, '-e', 'GREETING=hello', '-w', '/home/lab', '-u', 'lab', '--hostname', 'box', '--tmpfs', '/scratch', '-v', `${data}:/data:ro`, '--pids-limit', '42', '--memory', '64m', '--', 'sh', '-c', script],
      { input: JSON.stringify(document) },
    );
    assert.equal(spec.status, 0, spec.stderr);
    const emitted = JSON.parse(spec.stdout) as PipeDocument;
    assert.deepEqual(emitted.bundle, { path: bundle, config: join(bundle, 'config.json'), root: rootfs, rootless: false });
    assert.deepEqual(emitted.image, document.image, 'the other sections pass through');
    const config = JSON.parse(await readFile(join(bundle, 'config.json'), 'utf8')) as RuntimeConfig;
    assert.equal(official(config), undefined);
    assert.equal(config.root?.path, rootfs);
    assert.equal(config.annotations?.['org.opencontainers.image.exposedPorts'], '8080/tcp');
    assert.equal(config.annotations?.['org.opencontainers.image.stopSignal'], 'SIGTERM');
    assert.equal(config.annotations?.['org.opencontainers.image.title'], 'lab-busybox');

    const run = await runc(bundle);
    assert.equal(run.status, 0, run.stderr);
    assert.equal(
      run.stdout,
      [
        'uid=1000(lab) gid=1000(lab) groups=10(wheel),1000(lab)',
        'GREETING=hello',
        'PATH=/bin',
        '/home/lab',
        'box',
        'scratch',
        'tmpfs rw,nosuid,nodev,noexec,relatime',
        'from the host',
        'data-read-only',
        '42',
        String(64 * 1024 * 1024),
        '',
      ].join('\n'),
    );
  });

  test('the image Cmd runs when no command is given; --read-only makes the root read-only', async () => {
    const bundle = join(work.path, 'bundle2');
    const spec = await tool('oci-spec', ['--bundle', bundle, '--read-only', '--entrypoint', '["/bin/sh","-c"]', '--', 'touch /x 2>/dev/null && echo rw || echo ro; cat /etc/hostname'], { input: JSON.stringify(document) });
    assert.equal(spec.status, 0, spec.stderr);
    const run = await runc(bundle);
    assert.equal(run.status, 0, run.stderr);
    // Issue 19: /etc/hostname is podman's, the container's host name (runc's default), bound over the image's.
    assert.equal(run.stdout, 'ro\nrunc\n');
  });

  test('--rootless: runc runs the bundle in a user namespace that maps the caller to root', async () => {
    const bundle = join(work.path, 'bundle3');
    const spec = await tool('oci-spec', ['--bundle', bundle, '--rootless', '--', 'sh', '-c', 'id -u; cat /proc/self/uid_map'], { input: JSON.stringify(document) });
    assert.equal(spec.status, 0, spec.stderr);
    const run = await runc(bundle);
    assert.equal(run.status, 0, run.stderr);
    const [uid, map] = run.stdout.split('\n');
    assert.equal(uid, '0');
    assert.deepEqual(map?.trim().split(/\s+/), ['0', String(process.geteuid?.() ?? 0), '1']);
  });

  test('a user the image does not have: one line, exit 1, nothing written', async () => {
    const bundle = join(work.path, 'bundle4');
    const spec = await tool('oci-spec', ['--bundle', bundle, '-u', 'ghost', '--', 'id'], { input: JSON.stringify(document) });
    assert.equal(spec.status, 1);
    assert.equal(spec.stdout, '');
    assert.match(spec.stderr, /^oci-spec: user "ghost": no such user in the rootfs's \/etc\/passwd \(.*\)\n$/);
    assert.equal(existsSync(join(bundle, 'config.json')), false);
  });

  test('a document without a root, or layers without ovl-mount: one line, exit 2', async () => {
    const bundle = join(work.path, 'bundle5');
    const noRoot = await tool('oci-spec', ['--bundle', bundle], { input: JSON.stringify({ ...document, rootfs: undefined }) });
    assert.equal(noRoot.status, 2);
    assert.match(noRoot.stderr, /^oci-spec: the piped document has no rootfs or mount section \(pipe img-unpack or ovl-mount into oci-spec\)\n$/);
    const layers = await tool('oci-spec', ['--bundle', bundle], { input: JSON.stringify({ ...document, rootfs: { mode: 'layers', layers: [rootfs] } }) });
    assert.equal(layers.status, 2);
    assert.match(layers.stderr, /one directory per layer/);
    const noBundle = await tool('oci-spec', [], { input: JSON.stringify(document) });
    assert.equal(noBundle.status, 2);
    assert.match(noBundle.stderr, /a piped document needs --bundle DIR/);
  });

  test('--explain prints runc spec, the jq edits and runc run, and writes nothing', async () => {
    const bundle = join(work.path, 'bundle6');
    const result = await tool('oci-spec', ['--bundle', bundle, '--explain', '-e', 'A=1', '--', 'id'], { input: JSON.stringify(document) });
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /runc spec -b /);
    assert.match(result.stdout, /jq '.*\.process\.args = \["id"\]/);
    assert.match(result.stdout, /runc run -b /);
    assert.equal(existsSync(bundle), false);
  });

  test('img-fetch | img-unpack | oci-spec --bundle: runc runs the image on our rootfs', async () => {
    // The test run builds every tool: one missing is a failure, not a skip.
    assert.ok(existsSync(toolPath('img-unpack')), 'img-unpack is built');
    const unpacked = await tool('img-unpack', ['--dest', join(work.path, 'flat'), '-q'], { input: fetched });
    assert.equal(unpacked.status, 0, unpacked.stderr);
    const bundle = join(work.path, 'bundle-flat');
    const spec = await tool('oci-spec', ['--bundle', bundle, '-u', 'lab', '--', 'sh', '-c', 'id -un; cat /etc/os-release | head -1'], { input: unpacked.stdout });
    assert.equal(spec.status, 0, spec.stderr);
    assert.equal((JSON.parse(spec.stdout) as PipeDocument).bundle?.root, join(work.path, 'flat'));
    const run = await runc(bundle);
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout, 'lab\nNAME="container-parts lab busybox"\n');
  });

  test("the store's cached tree of the image is never handed over writable: ns-enter and runc on oci-spec's bundle cannot delete /bin/ls in it", async () => {
    const unpacked = await tool('img-unpack', ['-q'], { input: fetched });
    assert.equal(unpacked.status, 0, unpacked.stderr);
    const tree = (JSON.parse(unpacked.stdout) as PipeDocument).rootfs?.path as string;
    assert.ok(tree.startsWith(join(work.path, 'store', 'rootfs')), 'the default destination is the store');
    const remove = ['--', 'sh', '-c', 'rm /bin/ls && echo removed'];
    const ran = await tool('ns-enter', remove, { input: unpacked.stdout, timeoutMs: 60_000 });
    assert.notEqual(ran.status, 0);
    assert.match(ran.stderr, /^ns-enter: warning: \S+ is the store's copy of the image, shared by all its runs: the container gets it read-only [^\n]*\n/);
    assert.match(ran.stderr, /Read-only file system/);
    assert.ok(existsSync(join(tree, 'bin', 'ls')), 'ns-enter: /bin/ls is still in the cached tree');
    const bundle = join(work.path, 'bundle-store-tree');
    const spec = await tool('oci-spec', ['--bundle', bundle, ...remove], { input: unpacked.stdout });
    assert.equal(spec.status, 0, spec.stderr);
    assert.match(spec.stderr, /^oci-spec: warning: \S+ is the store's copy of the image/);
    assert.equal((JSON.parse(await readFile(join(bundle, 'config.json'), 'utf8')) as RuntimeConfig).root?.readonly, true);
    const underRunc = await runc(bundle);
    assert.notEqual(underRunc.status, 0);
    assert.ok(existsSync(join(tree, 'bin', 'ls')), 'runc: /bin/ls is still in the cached tree');
    // A config edited by hand to make it writable: ns-enter --bundle still keeps it the image's.
    const edited = JSON.parse(await readFile(join(bundle, 'config.json'), 'utf8')) as RuntimeConfig;
    await writeFile(join(bundle, 'config.json'), JSON.stringify({ ...edited, root: { path: tree } }));
    const byHand = await tool('ns-enter', ['--bundle', bundle], { timeoutMs: 60_000 });
    assert.notEqual(byHand.status, 0);
    assert.match(byHand.stderr, /^ns-enter: warning: \S+ is the store's copy of the image/);
    assert.ok(existsSync(join(tree, 'bin', 'ls')), 'ns-enter --bundle: /bin/ls is still in the cached tree');
    // The negative twin: a tree of the user's own (--dest) stays theirs to change, under both.
    const own = await tool('img-unpack', ['--dest', join(work.path, 'own-tree'), '-q'], { input: fetched });
    assert.equal(own.status, 0, own.stderr);
    const ownRun = await tool('ns-enter', remove, { input: own.stdout, timeoutMs: 60_000 });
    assert.equal(ownRun.stdout, 'removed\n', ownRun.stderr);
    assert.equal(ownRun.stderr, '');
    assert.ok(!existsSync(join(work.path, 'own-tree', 'bin', 'ls')));
  });

  test('img-unpack --layers | ovl-mount | oci-spec --bundle: the root is the merged overlay, writes land in the upper dir', async () => {
    // The test run builds every tool: one missing is a failure, not a skip.
    assert.ok(existsSync(toolPath('img-unpack')) && existsSync(toolPath('ovl-mount')), 'img-unpack and ovl-mount are built');
    const unpacked = await tool('img-unpack', ['--layers', '--store', join(work.path, 'store'), '-q'], { input: fetched });
    assert.equal(unpacked.status, 0, unpacked.stderr);
    const mounted = await tool('ovl-mount', ['--store', join(work.path, 'store'), '--name', 'spec-overlay', '-q'], { input: unpacked.stdout });
    assert.equal(mounted.status, 0, mounted.stderr);
    try {
      const mount = (JSON.parse(mounted.stdout) as PipeDocument).mount;
      assert.ok(mount?.upper);
      const bundle = join(work.path, 'bundle-overlay');
      const spec = await tool('oci-spec', ['--bundle', bundle, '--', 'sh', '-c', 'echo written > /root/note; cat /root/note'], { input: mounted.stdout });
      assert.equal(spec.status, 0, spec.stderr);
      const config = JSON.parse(await readFile(join(bundle, 'config.json'), 'utf8')) as RuntimeConfig;
      assert.equal(config.root?.path, mount.target);
      const run = await runc(bundle);
      assert.equal(run.status, 0, run.stderr);
      assert.equal(run.stdout, 'written\n');
      assert.equal(await readFile(join(mount.upper, 'root', 'note'), 'utf8'), 'written\n');
    } finally {
      const unmounted = await tool('ovl-mount', ['--unmount', '-q'], { input: mounted.stdout });
      assert.equal(unmounted.status, 0, unmounted.stderr);
    }
  });

  async function nsEnterRunsBundles(): Promise<boolean> {
    return existsSync(toolPath('ns-enter')) && /--bundle/.test((await tool('ns-enter', ['--help'])).stdout);
  }

  test('side by side: a bundle oci-spec wrote gives the same output under runc and ns-enter --bundle', async () => {
    // /tmp, not a new dir: runc makes a missing mount point 0755 in the rootfs and keeps a present dir's mode over the tmpfs (ns-enter does the same).
    // The test run builds every tool: one missing is a failure, not a skip.
    assert.ok(await nsEnterRunsBundles(), 'ns-enter --bundle is built');
    const bundle = join(work.path, 'bundle7');
    const spec = await tool('oci-spec', ['--bundle', bundle, '-e', 'GREETING=hello', '-w', '/home/lab', '-u', 'lab', '--hostname', 'box', '--tmpfs', '/tmp', '--', 'sh', '-c', 'id; echo $GREETING; pwd; hostname; echo s > /tmp/f && cat /tmp/f'], { input: JSON.stringify(document) });
    assert.equal(spec.status, 0, spec.stderr);
    const underRunc = await runc(bundle);
    const underNsEnter = await tool('ns-enter', ['--bundle', bundle], { timeoutMs: 60_000 });
    assert.equal(underRunc.status, 0, underRunc.stderr);
    assert.equal(underNsEnter.status, 0, underNsEnter.stderr);
    assert.equal(underNsEnter.stdout, underRunc.stdout);
  });

  test('a bundle runc spec wrote runs under ns-enter --bundle as under runc', async () => {
    // The test run builds every tool: one missing is a failure, not a skip.
    assert.ok(await nsEnterRunsBundles(), 'ns-enter --bundle is built');
    // runc spec's own bundle, with busybox as its rootfs and a command that needs no terminal.
    const plain = join(work.path, 'bundle8');
    await mkdir(plain);
    await mustExec('runc', ['spec', '-b', plain]);
    const config = JSON.parse(await readFile(join(plain, 'config.json'), 'utf8')) as RuntimeConfig;
    config.root = { path: rootfs, readonly: true };
    if (config.process) Object.assign(config.process, { terminal: false, args: ['sh', '-c', 'id; hostname; cat /proc/self/status | grep ^CapEff'] });
    await writeFile(join(plain, 'config.json'), JSON.stringify(config));
    const plainRunc = await runc(plain);
    const plainNsEnter = await tool('ns-enter', ['--bundle', plain], { timeoutMs: 60_000 });
    assert.equal(plainRunc.status, 0, plainRunc.stderr);
    assert.equal(plainNsEnter.status, 0, plainNsEnter.stderr);
    assert.equal(plainNsEnter.stdout, plainRunc.stdout);
  });
});

describe('oci-spec --bundle with the lab debian image, run by runc', () => {
  let work: { path: string; cleanup: () => Promise<void> };
  const name = `cp-spec-debian-${process.pid}`;

  before(async () => {
    work = await tempDir('cp-spec-debian-');
  });
  after(async () => {
    await exec('runc', ['delete', '-f', name]);
    await work?.cleanup();
  });

  test('a named system user from the image, its groups, the image Env and Cmd semantics', { timeout: 1_200_000 }, async () => {
    // The test run builds every tool: one missing is a failure, not a skip.
    assert.ok(existsSync(toolPath('img-unpack')), 'img-unpack is built');
    const layout = join(work.path, 'layout');
    await mustExec(join(REPO, 'scripts', 'build-debian-image.sh'), [join(work.path, 'build'), `oci:${layout}:latest`], { timeoutMs: 900_000 });
    const fetched = await tool('img-fetch', [`oci:${layout}:latest`, '--store', join(work.path, 'store'), '-q']);
    assert.equal(fetched.status, 0, fetched.stderr);
    const unpacked = await tool('img-unpack', ['--dest', join(work.path, 'rootfs'), '-q'], { input: fetched.stdout, timeoutMs: 300_000 });
    assert.equal(unpacked.status, 0, unpacked.stderr);
    const bundle = join(work.path, 'bundle');
    const spec = await tool('oci-spec', ['--bundle', bundle, '-u', 'www-data', '-w', '/tmp', '--', 'bash', '-c', 'id; pwd; echo "$PATH"; cat /etc/issue'], { input: unpacked.stdout });
    assert.equal(spec.status, 0, spec.stderr);
    const config = JSON.parse(await readFile(join(bundle, 'config.json'), 'utf8')) as RuntimeConfig;
    assert.deepEqual(config.process?.user, { uid: 33, gid: 33, additionalGids: [33] });
    assert.equal(config.annotations?.['org.opencontainers.image.title'], 'lab-debian');
    const run = await exec('runc', ['run', '-b', bundle, name], { timeoutMs: 60_000 });
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout, 'uid=33(www-data) gid=33(www-data) groups=33(www-data)\n/tmp\n/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\ncontainer-parts lab debian\n');
  });
});
