/**
 * OCI runtime configs (config.json): runc's defaults (`runc spec`, `runc spec --rootless`),
 * the config a container engine builds from an image config and run flags (image-spec
 * conversion.md, with podman's choices where the spec leaves them open), the byte format runc
 * writes, and validation against schema/runtime-config.schema.json. Cheap to import: ajv is
 * loaded only when something is validated (ns-enter's start-up time is benchmarked).
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join, posix, resolve } from 'node:path';
import type { ImageConfig } from '../image/model.js';
import type { EarlierSteps } from './model.js';
import { InputError, NotFoundError, UnsupportedError, UsageError } from '../core/errors.js';
import { resolveUser } from './passwd.js';
import { resolveInRoot } from '../core/root-resolver.js';
import { firstSchemaError, validatorFor } from '../core/schema.js';
import { ALL_CAPABILITIES, hasRunFlags, type RunFlags } from './runflags.js';
import type { IdMapping, NamespaceType, RuntimeConfig, RuntimeMount, RuntimeProcess } from './runtime-spec.js';
import { requireMountedOverlay } from '../mount/mounted.js';

/** The runtime-spec version runc 1.1 writes. */
export const OCI_VERSION = '1.0.2-dev';

export const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** runc's default capabilities (libcontainer/specconv.Example). */
const RUNC_CAPABILITIES = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];

/** podman's default_capabilities (containers.conf), for a config built from an image and flags. */
export const PODMAN_DEFAULT_CAPABILITIES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_NET_BIND_SERVICE',
  'CAP_SETFCAP', 'CAP_SETGID', 'CAP_SETPCAP', 'CAP_SETUID', 'CAP_SYS_CHROOT',
];

/** `runc spec` (rootless: `runc spec --rootless`), field for field and in runc's key order. */
export function runcDefaultConfig(options: { rootless: boolean; hostIds?: { uid: number; gid: number }; idMappings?: IdMappings }): RuntimeConfig {
  const config: RuntimeConfig = {
    ociVersion: OCI_VERSION,
    process: {
      terminal: true,
      user: { uid: 0, gid: 0 },
      args: ['sh'],
      env: [DEFAULT_PATH, 'TERM=xterm'],
      cwd: '/',
      capabilities: {
        bounding: [...RUNC_CAPABILITIES],
        effective: [...RUNC_CAPABILITIES],
        permitted: [...RUNC_CAPABILITIES],
        ambient: [...RUNC_CAPABILITIES],
      },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: 'rootfs', readonly: true },
    hostname: 'runc',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
    ],
    linux: {
      resources: { devices: [{ allow: false, access: 'rwm' }] },
      namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }],
      maskedPaths: [
        '/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
        '/proc/timer_stats', '/proc/sched_debug', '/sys/firmware', '/proc/scsi',
      ],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
  return options.rootless ? toRootless(config, options.idMappings ?? singleIdMappings(options.hostIds ?? hostIds())) : config;
}

/** A user namespace's uid and gid maps (runtime-spec linux.uidMappings, linux.gidMappings). */
export interface IdMappings {
  uidMappings: IdMapping[];
  gidMappings: IdMapping[];
}

/** runc spec --rootless: the caller's own ids, mapped to root, and nothing else. */
function singleIdMappings(ids: { uid: number; gid: number }): IdMappings {
  return { uidMappings: [{ containerID: 0, hostID: ids.uid, size: 1 }], gidMappings: [{ containerID: 0, hostID: ids.gid, size: 1 }] };
}

function hostIds(): { uid: number; gid: number } {
  return { uid: process.geteuid?.() ?? 0, gid: process.getegid?.() ?? 0 };
}

/**
 * runc's specconv.ToRootless: a user namespace mapping the caller to root, no network
 * namespace (an unprivileged user cannot configure one), /sys bind-mounted (sysfs cannot be
 * mounted without owning the network namespace), no uid=/gid= mount options, no cgroup settings.
 */
function toRootless(config: RuntimeConfig, mappings: IdMappings): RuntimeConfig {
  const linux = config.linux ?? {};
  const namespaces = (linux.namespaces ?? []).filter((ns) => ns.type !== 'network' && ns.type !== 'user');
  namespaces.push({ type: 'user' });
  const mounts = (config.mounts ?? []).map((mount): RuntimeMount => {
    if (posix.normalize(mount.destination) === '/sys') {
      return { destination: '/sys', type: 'none', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'] };
    }
    if (!mount.options) return mount;
    return { ...mount, options: mount.options.filter((o) => !o.startsWith('gid=') && !o.startsWith('uid=')) };
  });
  const { resources: _dropped, namespaces: _replaced, ...rest } = linux;
  return {
    ...config,
    mounts,
    linux: {
      uidMappings: mappings.uidMappings,
      gidMappings: mappings.gidMappings,
      namespaces,
      ...rest,
    },
  };
}

/**
 * Writes a config the way runc does (Go's json.MarshalIndent with a tab, no final newline):
 * Go escapes <, >, & and the JSON-unsafe line separators in strings, so the bytes match.
 */
export function formatConfig(config: RuntimeConfig): string {
  return JSON.stringify(config, null, '\t').replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export interface BuildConfigOptions {
  /** The image config (its `config` holds Entrypoint, Cmd, Env, ...); absent: runc's defaults for those. */
  image?: ImageConfig;
  /** The root filesystem on the host; root.path, and where /etc/passwd and /etc/group are read. */
  rootfs: string;
  flags: RunFlags;
  rootless: boolean;
  /** CMD ARGS from the command line: they replace the image's Cmd. */
  args?: string[];
  /** For rootless: the host ids mapped to root (default: this process's effective ids). */
  hostIds?: { uid: number; gid: number };
  /** For rootless: the whole maps (a subordinate id range after the caller, lib/userns.ts); default: hostIds alone. */
  idMappings?: IdMappings;
  /**
   * An overlay the runtime mounts at / inside the container's namespaces before anything else
   * (ovl-mount's `mountedIn: container`, rootless); root.path is where it is mounted.
   */
  rootOverlay?: RuntimeMount;
  /** Where /etc/passwd and /etc/group are read when the rootfs is not mounted on the host (default: rootfs). */
  lookupRoot?: string;
}

/** Mount options of an image Volume: a tmpfs, so volume data never lands in the rootfs (conversion.md). */
const IMAGE_VOLUME_TMPFS_OPTIONS = ['rw', 'nosuid', 'nodev'];

/**
 * The config a container engine builds: runc's defaults for the host side (namespaces,
 * mounts, masked paths, rlimits, devices), the image config per conversion.md, then the run
 * flags on top, with podman's default capabilities and a terminal only with -t.
 * Pure except for reading /etc/passwd and /etc/group from the rootfs and checking -v sources.
 */
export function buildConfig(options: BuildConfigOptions): RuntimeConfig {
  const { flags, rootless } = options;
  const base = runcDefaultConfig({ rootless, hostIds: options.hostIds, idMappings: options.idMappings });
  const imageConfig = options.image?.config ?? {};

  const user = resolveUser(options.lookupRoot ?? options.rootfs, flags.user ?? (imageConfig.User || '0'));
  const process: RuntimeProcess = {
    // Go's omitempty, as runc writes: false booleans are left out.
    ...(flags.tty ? { terminal: true } : {}),
    user: { uid: user.uid, gid: user.gid, ...(user.additionalGids.length > 0 ? { additionalGids: user.additionalGids } : {}) },
    args: processArgs(options),
    env: processEnv(imageConfig.Env, flags),
    cwd: processCwd(flags.workdir ?? imageConfig.WorkingDir),
    capabilities: capabilitySets(flags, user.uid === 0),
    rlimits: base.process?.rlimits,
    noNewPrivileges: base.process?.noNewPrivileges,
  };

  const linux = { ...base.linux };
  linux.namespaces = withNetwork(linux.namespaces ?? [], flags.network);
  const resources = { ...linux.resources };
  if (flags.memory !== undefined) resources.memory = { limit: flags.memory };
  if (flags.cpus !== undefined) resources.cpu = { quota: Math.round(flags.cpus * 100_000), period: 100_000 };
  if (flags.pidsLimit !== undefined) resources.pids = { limit: flags.pidsLimit };
  if (Object.keys(resources).length > 0) linux.resources = orderedResources(resources);
  if (rootless) checkMapped(process.user, linux.uidMappings ?? [], linux.gidMappings ?? []);

  const annotations = { ...imageAnnotations(options.image), ...flags.annotations };
  const config: RuntimeConfig = {
    ociVersion: OCI_VERSION,
    process,
    root: { path: options.rootfs, ...(flags.readOnly ? { readonly: true } : {}) },
    hostname: flags.hostname ?? base.hostname,
    mounts: [...(options.rootOverlay ? [options.rootOverlay] : []), ...withUserMounts(base.mounts ?? [], imageConfig.Volumes, flags)],
    ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
    linux,
  };
  return config;
}

function processArgs(options: BuildConfigOptions): string[] {
  const imageConfig = options.image?.config ?? {};
  // conversion.md: args = Entrypoint + Cmd. CMD ARGS replace Cmd; --entrypoint replaces
  // Entrypoint and, as in podman and docker, drops the image's Cmd too.
  const entrypoint = options.flags.entrypoint ?? imageConfig.Entrypoint ?? [];
  const cmd = options.args && options.args.length > 0 ? options.args : options.flags.entrypoint !== undefined ? [] : (imageConfig.Cmd ?? []);
  const args = [...entrypoint, ...cmd];
  if (args.length > 0) return args;
  if (!options.image) return ['sh'];
  throw new UsageError('no command to run: the image has no Entrypoint or Cmd', { hint: 'give one after --, e.g. -- sh' });
}

function envName(entry: string): string {
  const eq = entry.indexOf('=');
  return eq === -1 ? entry : entry.slice(0, eq);
}

/** Image Env, PATH and TERM only when the image does not set them, then -e on top (by name). */
function processEnv(imageEnv: string[] | undefined, flags: RunFlags): string[] {
  const env = [...(imageEnv ?? [])];
  const has = (name: string) => env.some((e) => envName(e) === name);
  if (!has('PATH')) env.unshift(DEFAULT_PATH);
  if (flags.tty && !has('TERM')) env.push('TERM=xterm');
  for (const entry of flags.env) {
    const index = env.findIndex((e) => envName(e) === envName(entry));
    if (index === -1) env.push(entry);
    else env[index] = entry;
  }
  return env;
}

function processCwd(workdir: string | undefined): string {
  if (workdir === undefined || workdir === '') return '/';
  // Docker allows a relative WorkingDir and takes it from /.
  return posix.resolve('/', workdir);
}

/**
 * podman's rules: root gets the default set (plus --cap-add, minus --cap-drop) as bounding,
 * effective and permitted; any other user keeps them in the bounding set only, and gets the
 * ones added with --cap-add as effective, permitted, inheritable and ambient so they survive exec.
 */
function capabilitySets(flags: RunFlags, isRoot: boolean): RuntimeProcess['capabilities'] {
  const dropAll = flags.capDrop.includes('ALL');
  const addAll = flags.capAdd.includes('ALL');
  let caps = new Set<string>(dropAll ? [] : PODMAN_DEFAULT_CAPABILITIES);
  const added = addAll ? [...ALL_CAPABILITIES] : flags.capAdd;
  for (const cap of added) caps.add(cap);
  if (!dropAll) for (const cap of flags.capDrop) caps.delete(cap);
  caps = new Set([...caps].sort());
  const bounding = [...caps];
  if (isRoot) return { bounding, effective: [...bounding], permitted: [...bounding] };
  const userCaps = [...new Set(added)].filter((c) => caps.has(c)).sort();
  if (userCaps.length === 0) return { bounding };
  return { bounding, effective: userCaps, inheritable: [...userCaps], permitted: [...userCaps], ambient: [...userCaps] };
}

/** Where runc puts the network namespace: after pid. */
function withNetwork(namespaces: Array<{ type: NamespaceType; path?: string }>, network: RunFlags['network']): Array<{ type: NamespaceType; path?: string }> {
  if (network === 'host') return namespaces.filter((ns) => ns.type !== 'network');
  if (network === 'none' && !namespaces.some((ns) => ns.type === 'network')) {
    const at = namespaces.findIndex((ns) => ns.type === 'pid') + 1;
    return [...namespaces.slice(0, at), { type: 'network' }, ...namespaces.slice(at)];
  }
  return namespaces;
}

type Resources = NonNullable<NonNullable<RuntimeConfig['linux']>['resources']>;

/** Go's field order, so the file reads like runc's. */
function orderedResources(resources: Resources): Resources {
  const { devices, memory, cpu, pids, ...rest } = resources;
  return { ...(devices ? { devices } : {}), ...(memory ? { memory } : {}), ...(cpu ? { cpu } : {}), ...(pids ? { pids } : {}), ...rest };
}

/** runc's defaults, then image Volumes as tmpfs, --tmpfs and -v; a user mount replaces one at the same place. */
function withUserMounts(defaults: RuntimeMount[], volumes: Record<string, object> | undefined, flags: RunFlags): RuntimeMount[] {
  const user: RuntimeMount[] = [
    ...flags.tmpfs.map((t) => ({ destination: t.destination, type: 'tmpfs', source: 'tmpfs', options: [...t.options] })),
    ...flags.volumes.map((v) => {
      if (!existsSync(v.source)) throw new NotFoundError(`--volume ${v.source}:${v.destination}: ${v.source} does not exist`);
      return { destination: v.destination, type: 'bind', source: v.source, options: v.readOnly ? ['rbind', 'ro'] : ['rbind'] };
    }),
  ];
  const taken = new Set(user.map((m) => posix.normalize(m.destination)));
  const imageVolumes: RuntimeMount[] = Object.keys(volumes ?? {})
    .map((d) => posix.resolve('/', d))
    .filter((d) => !taken.has(d))
    .map((destination) => ({ destination, type: 'tmpfs', source: 'tmpfs', options: [...IMAGE_VOLUME_TMPFS_OPTIONS] }));
  const added = [...imageVolumes, ...user];
  const addedAt = new Set(added.map((m) => posix.normalize(m.destination)));
  // Parents before children, or a later mount would hide an earlier one (podman sorts the same way).
  const depth = (m: RuntimeMount) => posix.normalize(m.destination).split('/').filter(Boolean).length;
  return [...defaults.filter((m) => !addedAt.has(posix.normalize(m.destination))), ...added.sort((a, b) => depth(a) - depth(b))];
}

type ImageConfigFields = ImageConfig & { author?: string; 'os.version'?: string; 'os.features'?: string[] };

/** conversion.md "Annotation Fields" and ExposedPorts; Config.Labels win over the implicit ones. */
export function imageAnnotations(image: ImageConfig | undefined): Record<string, string> {
  if (!image) return {};
  const fields = image as ImageConfigFields;
  const implicit: Array<[string, string | undefined]> = [
    ['org.opencontainers.image.os', fields.os],
    ['org.opencontainers.image.architecture', fields.architecture],
    ['org.opencontainers.image.variant', fields.variant],
    ['org.opencontainers.image.os.version', fields['os.version']],
    ['org.opencontainers.image.os.features', fields['os.features']?.join(',')],
    ['org.opencontainers.image.author', fields.author],
    ['org.opencontainers.image.created', fields.created],
    ['org.opencontainers.image.stopSignal', fields.config?.StopSignal],
    ['org.opencontainers.image.exposedPorts', fields.config?.ExposedPorts ? Object.keys(fields.config.ExposedPorts).join(',') : undefined],
  ];
  const annotations: Record<string, string> = {};
  for (const [key, value] of implicit) if (value !== undefined && value !== '') annotations[key] = value;
  return { ...annotations, ...(fields.config?.Labels ?? {}) };
}

function checkMapped(user: RuntimeProcess['user'], uidMappings: IdMapping[], gidMappings: IdMapping[]): void {
  const inside = (id: number, maps: IdMapping[]) => maps.some((m) => id >= m.containerID && id < m.containerID + m.size);
  const describe = (maps: IdMapping[]) => maps.map((m) => `${m.containerID}-${m.containerID + m.size - 1}`).join(', ');
  if (!inside(user.uid, uidMappings)) throw new UsageError(`user ${user.uid}: not mapped in a rootless container (mapped uids: ${describe(uidMappings)})`, { hint: 'run as root in the container, or map more ids: a range for you in /etc/subuid and /etc/subgid' });
  for (const gid of [user.gid, ...(user.additionalGids ?? [])]) {
    if (!inside(gid, gidMappings)) throw new UsageError(`group ${gid}: not mapped in a rootless container (mapped gids: ${describe(gidMappings)})`, { hint: 'run as root in the container, or map more ids: a range for you in /etc/subuid and /etc/subgid' });
  }
}

/**
 * Checks a value against schema/runtime-config.schema.json; throws an InputError whose one
 * line names where and the JSON path, e.g. `config.json: process.user.uid: must be integer`.
 */
export function validateRuntimeConfig(value: unknown, where: string): asserts value is RuntimeConfig {
  const problem = firstSchemaError(validatorFor('runtime-config'), value, '');
  if (problem) throw new InputError(`${where}: ${problem}`);
}

/** Reads, parses and validates a config.json. */
export function readRuntimeConfig(file: string): RuntimeConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new InputError(`${file}: cannot read: ${code === 'ENOENT' ? 'no such file' : code ?? (err as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new InputError(`${file}: not JSON (${(err as Error).message})`);
  }
  validateRuntimeConfig(value, file);
  return value;
}

/**
 * Where the container's root comes from in a piped document: ovl-mount's merged dir, else
 * img-unpack's flat rootfs. An overlay ovl-mount could not leave mounted (rootless,
 * `mountedIn: container`) comes back as `overlay`: a mount at / for the runtime to make in
 * the container's user and mount namespaces (runc does it as it does any config mount).
 */
export function rootFromEarlierSteps(doc: EarlierSteps): { rootfs: string; readOnly: boolean; image?: ImageConfig; overlay?: RuntimeMount; lookupRoot?: string } {
  const image = doc.rootfs?.config ?? doc.image?.config;
  if (doc.mount) {
    const readOnly = doc.mount.readOnly === true;
    if (doc.mount.mountedIn === 'container') {
      const options = (doc.mount.options ?? '').split(/(?<!\\),/).filter((o) => o !== '');
      // Nothing is mounted on the host: users and groups are read from the topmost dir that has /etc/passwd.
      const dirs = [...(doc.mount.upper ? [doc.mount.upper] : []), ...doc.mount.lower];
      const lookupRoot = dirs.find((d) => resolveInRoot(d, '/etc/passwd') !== undefined);
      return { rootfs: doc.mount.target, readOnly, image, overlay: { destination: '/', type: 'overlay', source: 'overlay', options }, lookupRoot };
    }
    return { rootfs: doc.mount.target, readOnly, image };
  }
  if (doc.rootfs) {
    if (doc.rootfs.mode !== 'flat' || !doc.rootfs.path) {
      throw new UsageError('rootfs: one directory per layer is not a root filesystem', { hint: 'pipe it through ovl-mount first, or use img-unpack without --layers' });
    }
    return { rootfs: doc.rootfs.path, readOnly: false, image };
  }
  throw new UsageError('the piped document has no rootfs or mount section', { hint: 'pipe img-unpack or ovl-mount into oci-spec' });
}

export interface SpecRequest {
  /** The piped document, if any. */
  document?: EarlierSteps;
  /** --bundle DIR, absolute. */
  bundle?: string;
  flags: RunFlags;
  rootless: boolean;
  /** CMD ARGS (after --). */
  args: string[];
  /** Where a bare `oci-spec` looks for ./rootfs (runc spec's relative root.path). */
  cwd: string;
  /** Rootless with a piped image: the caller's whole maps (lib/userns.ts), so the image's other ids map too. */
  idMappings?: IdMappings;
}

export interface SpecResult {
  config: RuntimeConfig;
  /** The root filesystem on the host. */
  rootfs: string;
  /** No document, flags or command: exactly `runc spec`'s config. */
  bare: boolean;
}

/**
 * oci-spec's one decision: runc's default config when given nothing, else the config built
 * from the piped image and rootfs (or ./rootfs) and the flags. root.path stays relative
 * ("rootfs") when the root is the bundle's own rootfs dir, as runc writes it.
 */
export function configForRequest(request: SpecRequest): SpecResult {
  const bundleDir = request.bundle ?? request.cwd;
  const ownRootfs = join(bundleDir, 'rootfs');
  if (!request.document && !hasRunFlags(request.flags) && request.args.length === 0) {
    return { config: runcDefaultConfig({ rootless: request.rootless }), rootfs: ownRootfs, bare: true };
  }
  const source = request.document ? rootFromEarlierSteps(request.document) : { rootfs: ownRootfs, readOnly: false, image: undefined, overlay: undefined, lookupRoot: undefined };
  if (request.document?.mount) requireMountedOverlay(request.document.mount);
  if (source.overlay && !request.rootless) {
    throw new UsageError(`mount.target ${source.rootfs}: the overlay was left for the runtime to mount in a user namespace (ovl-mount ran without root)`, { hint: 'use oci-spec --rootless' });
  }
  if (source.overlay && request.document?.mount?.optionsDir) {
    throw new UnsupportedError(`mount.options: ${request.document.mount.lower.length} lower dirs need ovl-mount's short names (over one page of options), which a config's mount cannot carry`, { hint: 'run it with ns-enter, or flatten the image with img-unpack without --layers' });
  }
  const flags = source.readOnly ? { ...request.flags, readOnly: true } : request.flags;
  const config = buildConfig({ image: source.image, rootfs: source.rootfs, flags, rootless: request.rootless, args: request.args, idMappings: request.idMappings, rootOverlay: source.overlay, lookupRoot: source.lookupRoot });
  if (resolve(source.rootfs) === resolve(ownRootfs) && config.root) config.root.path = 'rootfs';
  return { config, rootfs: source.rootfs, bare: false };
}

/**
 * Validates the config, then writes DIR/config.json atomically (a temporary file renamed
 * over it), so a failed run leaves no half-written config behind. Returns the file's path.
 */
export async function writeBundleConfig(bundle: string, config: RuntimeConfig): Promise<string> {
  validateRuntimeConfig(config, `${bundle}/config.json (generated)`);
  await mkdir(bundle, { recursive: true });
  const file = join(bundle, 'config.json');
  const temporary = join(bundle, `.config.json.${process.pid}.tmp`);
  try {
    await writeFile(temporary, formatConfig(config), { mode: 0o644 });
    await rename(temporary, file);
  } catch (err) {
    await rm(temporary, { force: true });
    throw err;
  }
  return file;
}
