/**
 * The config a container engine builds from an image config and run flags (image-spec
 * conversion.md, with podman's choices where the spec leaves them open), on runc's defaults
 * for the host side. Pure except for reading /etc/passwd and /etc/group from the rootfs and
 * checking that -v sources exist.
 */
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { posix } from 'node:path';
import type { ImageConfig } from '../image/model.js';
import { NotFoundError, UsageError } from '../core/errors.js';
import { homeOf, resolveUser } from './passwd.js';
import { ALL_CAPABILITIES, type RunFlags } from './runflags.js';
import type { IdMapping, LinuxSeccomp, NamespaceType, RuntimeConfig, RuntimeLinux, RuntimeMount, RuntimeProcess } from './runtime-spec.js';
import { DEFAULT_SECCOMP_PROFILE, readProfile, seccompForContainer } from './seccomp-profile.js';
import { sysctlNamespace } from './sysctl.js';
import { hostDevices } from './host-devices.js';
import { applyPodmanExtras } from './podman-flags.js';
import { DEFAULT_PATH, OCI_VERSION, runcDefaultConfig, type IdMappings } from './spec.js';

/** podman's default_capabilities (containers.conf), for a config built from an image and flags. */
export const PODMAN_DEFAULT_CAPABILITIES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_NET_BIND_SERVICE',
  'CAP_SETFCAP', 'CAP_SETGID', 'CAP_SETPCAP', 'CAP_SETUID', 'CAP_SYS_CHROOT',
];

/** podman 4.3's masked paths (containers/common's config); runc's bare spec keeps its own. */
export const PODMAN_MASKED_PATHS = ['/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/fs/selinux', '/sys/dev/block'];
/** podman 4.3's read-only paths: /proc/asound is read-only there, where runc masks it. */
export const PODMAN_READONLY_PATHS = ['/proc/asound', '/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

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
    env: processEnv(imageConfig.Env, flags, { HOME: homeOf(options.lookupRoot ?? options.rootfs, user.uid), HOSTNAME: flags.extras?.hostNamespaces?.includes('uts') ? hostname() : (flags.hostname ?? base.hostname ?? '') }),
    cwd: processCwd(flags.workdir ?? imageConfig.WorkingDir),
    capabilities: capabilitySets(flags.privileged ? { ...flags, capAdd: ['ALL'] } : flags, user.uid === 0),
    rlimits: base.process?.rlimits,
    noNewPrivileges: base.process?.noNewPrivileges,
  };

  let linux = withSeccomp({ ...base.linux }, seccompOf(flags, process.capabilities?.bounding ?? []));
  linux.namespaces = withNetwork(linux.namespaces ?? [], flags.network);
  if (flags.privileged) Object.assign(linux, privilegedLinux(linux));
  else Object.assign(linux, { maskedPaths: [...PODMAN_MASKED_PATHS], readonlyPaths: [...PODMAN_READONLY_PATHS] });
  const sysctl = containerSysctls(linux.namespaces, flags.sysctl);
  if (Object.keys(sysctl).length > 0) linux = withFirst(linux, { sysctl });
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
  return applyPodmanExtras(config, flags.extras);
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

/** What names this toolkit's containers, as podman's container=podman does (systemd and others look for it). */
export const CONTAINER_ENV = 'container=container-parts';

/**
 * podman's environment: container=, the image Env, PATH, TERM (with -t), HOME and HOSTNAME
 * only when the image does not set them, then -e on top (by name).
 */
function processEnv(imageEnv: string[] | undefined, flags: RunFlags, defaults: { HOME: string; HOSTNAME: string }): string[] {
  const env = [...(imageEnv ?? [])];
  const has = (name: string) => env.some((e) => envName(e) === name);
  if (!has('PATH')) env.unshift(DEFAULT_PATH);
  if (!has('container')) env.unshift(CONTAINER_ENV);
  if (flags.tty && !has('TERM')) env.push('TERM=xterm');
  for (const [name, value] of Object.entries(defaults)) if (!has(name) && value !== '') env.push(`${name}=${value}`);
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
  const added = addAll ? boundingSet() : flags.capAdd;
  for (const cap of added) caps.add(cap);
  if (!dropAll) for (const cap of flags.capDrop) caps.delete(cap);
  caps = new Set([...caps].sort());
  const bounding = [...caps];
  if (isRoot) return { bounding, effective: [...bounding], permitted: [...bounding] };
  const userCaps = [...new Set(added)].filter((c) => caps.has(c)).sort();
  if (userCaps.length === 0) return { bounding };
  return { bounding, effective: userCaps, inheritable: [...userCaps], permitted: [...userCaps], ambient: [...userCaps] };
}

/**
 * podman's default_sysctls (Debian's containers.conf): ping for every group, so ping works
 * without CAP_NET_RAW; only with a network namespace of the container's own. Then --sysctl.
 */
function containerSysctls(namespaces: Array<{ type: NamespaceType }>, given: Record<string, string> | undefined): Record<string, string> {
  const has = new Set(namespaces.map((ns) => ns.type));
  const sysctl: Record<string, string> = has.has('network') ? { 'net.ipv4.ping_group_range': '0 0' } : {};
  for (const [key, value] of Object.entries(given ?? {})) {
    const namespace = sysctlNamespace(key);
    if (namespace && !has.has(namespace)) throw new UsageError(`--sysctl ${key}: the container shares the host's ${namespace} namespace, so it would change the host`);
    sysctl[key] = value;
  }
  return sysctl;
}

/** linux.sysctl where Go's runtime-spec struct puts it: after the id mappings, before resources. */
function withFirst(linux: RuntimeLinux, fields: Pick<RuntimeLinux, 'sysctl'>): RuntimeLinux {
  const { uidMappings, gidMappings, ...rest } = linux;
  return { ...(uidMappings ? { uidMappings } : {}), ...(gidMappings ? { gidMappings } : {}), ...fields, ...rest };
}

/** containers-common's profile unless --security-opt seccomp= says otherwise; --privileged: none unless a FILE is given. */
function seccompOf(flags: RunFlags, bounding: string[]): LinuxSeccomp | undefined {
  if (flags.seccomp === 'unconfined' || (flags.privileged && flags.seccomp === undefined)) return undefined;
  return seccompForContainer(readProfile(flags.seccomp ?? DEFAULT_SECCOMP_PROFILE), bounding);
}

/** podman's --privileged: the host's devices, all of them allowed, no masked or read-only paths. */
function privilegedLinux(linux: RuntimeLinux): Partial<RuntimeLinux> {
  delete linux.maskedPaths;
  delete linux.readonlyPaths;
  return { devices: hostDevices(), resources: { ...linux.resources, devices: [{ allow: true, access: 'rwm' }] } };
}

/** linux.seccomp where podman writes it: after the namespaces, before the masked paths. */
function withSeccomp(linux: RuntimeLinux, seccomp: LinuxSeccomp | undefined): RuntimeLinux {
  if (!seccomp) return linux;
  const { maskedPaths, readonlyPaths, ...rest } = linux;
  return { ...rest, seccomp, ...(maskedPaths ? { maskedPaths } : {}), ...(readonlyPaths ? { readonlyPaths } : {}) };
}

/**
 * What ALL means, as in podman (containers/common capabilities.BoundingSet): the capabilities in
 * this process's bounding set, not every name the kernel headers know, which a host that keeps
 * one out of its bounding set (CAP_SYS_RESOURCE under some sandboxes) could never grant.
 */
function boundingSet(): string[] {
  const line = /^CapBnd:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
  const mask = BigInt(`0x${line?.[1] ?? '0'}`);
  return ALL_CAPABILITIES.filter((_, bit) => (mask >> BigInt(bit)) & 1n);
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
