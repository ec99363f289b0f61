/**
 * The podman-run-style flags (-e, -w, -u, -v, --tmpfs, --network, --memory, ...), as the
 * command line gives them (cli/run-flags.ts defines them for yargs), parsed into `RunFlags`: the
 * typed, checked form that lib/spec.ts turns into a runtime config. Parsing is pure apart from
 * reading the host environment for `-e NAME` (podman's "take the value from my environment").
 */
import { isAbsolute, resolve } from 'node:path';
import { UsageError } from '../core/errors.js';
import { envFileEntries, parsePodmanFlags, type PodmanExtras, type PodmanFlagArgs } from './podman-flags.js';
import { sysctlNamespace } from './sysctl.js';

export interface VolumeFlag {
  /** Absolute host path (a relative `./x` is resolved against the working directory). */
  source: string;
  destination: string;
  readOnly: boolean;
}

export interface TmpfsFlag {
  destination: string;
  /** Mount options: podman's defaults, or the ones given after `DST:`. */
  options: string[];
}

export type NetworkMode = 'none' | 'host';

export interface RunFlags {
  /** NAME=VALUE, in command-line order; `-e NAME` is resolved from the host environment. */
  env: string[];
  workdir?: string;
  /** USER[:GROUP], names or numbers, resolved against the rootfs by lib/passwd.ts. */
  user?: string;
  hostname?: string;
  volumes: VolumeFlag[];
  tmpfs: TmpfsFlag[];
  /** undefined: the runtime's default (a private network namespace unless rootless, as runc). */
  network?: NetworkMode;
  /** Bytes. */
  memory?: number;
  pidsLimit?: number;
  cpus?: number;
  /** CAP_* names (or ALL), upper case, in command-line order. */
  capAdd: string[];
  capDrop: string[];
  readOnly: boolean;
  tty: boolean;
  /** Replaces the image's Entrypoint (and, as in podman and docker, drops its Cmd); [] clears it. */
  entrypoint?: string[];
  annotations: Record<string, string>;
  /** ns-enter: run a minimal init as PID 1 that reaps zombies and forwards signals. */
  init: boolean;
  /** ns-enter: remove the container's state when it exits. */
  rm: boolean;
  /** --security-opt seccomp=: 'unconfined', or a profile FILE (absolute); undefined: containers-common's default profile. */
  seccomp?: string;
  /** --security-opt options, as typed, when given (no-new-privileges and label=disable change nothing: see parseSecurityOpts). */
  securityOpt?: string[];
  /** --privileged, when given: every capability, the host's devices, no seccomp, no masked or read-only paths (podman's). */
  privileged?: boolean;
  /** --sysctl KEY=VALUE, when given (namespaced keys only: sysctl.ts). */
  sysctl?: Record<string, string>;
  /** --ulimit, --shm-size, --group-add, --stop-signal, --pid/--ipc/--uts host, when any is given (podman-flags.ts). */
  extras?: PodmanExtras;
}

/** What `withRunFlags` adds to the parsed arguments. */
export interface RunFlagArgs extends PodmanFlagArgs {
  env?: string[];
  workdir?: string;
  user?: string;
  hostname?: string;
  volume?: string[];
  tmpfs?: string[];
  network?: string;
  memory?: string;
  'pids-limit'?: number;
  cpus?: number;
  'cap-add'?: string[];
  'cap-drop'?: string[];
  'read-only': boolean;
  /** undefined: not given (ns-enter decides from its stdin and stdout). */
  tty?: boolean;
  interactive?: boolean;
  detach?: boolean;
  restart?: string;
  privileged?: boolean;
  publish?: string[];
  entrypoint?: string;
  annotation?: string[];
  init: boolean;
  rm: boolean;
  'security-opt'?: string[];
  sysctl?: string[];
}

/** Checks and converts the parsed flags; every mistake is a UsageError naming the flag. */
export function parseRunFlags(args: RunFlagArgs, hostEnv: NodeJS.ProcessEnv = process.env, cwd: string = process.cwd()): RunFlags {
  refusePodmanOnlyFlags(args);
  return {
    env: [...envFileEntries(args['env-file'] ?? []), ...(args.env ?? [])].flatMap((e) => parseEnv(e, hostEnv)),
    workdir: args.workdir === undefined ? undefined : absoluteContainerPath('--workdir', args.workdir),
    user: args.user === undefined ? undefined : nonEmpty('--user', args.user),
    hostname: args.hostname === undefined ? undefined : parseHostname(args.hostname),
    volumes: (args.volume ?? []).map((v) => parseVolume(v, cwd)),
    tmpfs: (args.tmpfs ?? []).map(parseTmpfs),
    network: args.network as NetworkMode | undefined,
    memory: args.memory === undefined ? undefined : parseMemory(args.memory),
    pidsLimit: args['pids-limit'] === undefined ? undefined : parsePidsLimit(args['pids-limit']),
    cpus: args.cpus === undefined ? undefined : parseCpus(args.cpus),
    capAdd: (args['cap-add'] ?? []).flatMap((c) => parseCapabilities('--cap-add', c)),
    capDrop: (args['cap-drop'] ?? []).flatMap((c) => parseCapabilities('--cap-drop', c)),
    readOnly: args['read-only'],
    tty: args.tty === true,
    entrypoint: args.entrypoint === undefined ? undefined : parseEntrypoint(args.entrypoint),
    annotations: Object.fromEntries((args.annotation ?? []).map(parseAnnotation)),
    init: args.init,
    rm: args.rm,
    ...(args['security-opt']?.length ? parseSecurityOpts(args['security-opt'], cwd) : {}),
    ...(args.privileged ? { privileged: true } : {}),
    ...extrasOf(args),
    ...(args.sysctl?.length ? { sysctl: Object.fromEntries(args.sysctl.map(parseSysctl)) } : {}),
  };
}

/** podman's flags that have no counterpart here, and what to use instead. */
const PODMAN_ONLY_FLAGS: Array<[keyof RunFlagArgs, string, string]> = [
  ['detach', '-d/--detach', 'the container runs in the foreground: put the command in the background with &, or run it under systemd-run'],
  ['restart', '--restart', 'there is no restart policy: run the command under a supervisor, e.g. systemd-run -p Restart=on-failure'],
  ['publish', '-p/--publish', 'ports are not forwarded: with --net host the container uses the host network, and its ports are the host ports'],
];

function refusePodmanOnlyFlags(args: RunFlagArgs): void {
  for (const [key, flag, instead] of PODMAN_ONLY_FLAGS) {
    if (args[key] !== undefined && args[key] !== false) throw new UsageError(`${flag} is not supported`, { hint: instead });
  }
}

/** No flags given: what a bare `oci-spec` compares against to stay byte-for-byte `runc spec`. */
export function hasRunFlags(flags: RunFlags): boolean {
  return (
    flags.env.length > 0 || flags.workdir !== undefined || flags.user !== undefined || flags.hostname !== undefined ||
    flags.volumes.length > 0 || flags.tmpfs.length > 0 || flags.network !== undefined || flags.memory !== undefined ||
    flags.pidsLimit !== undefined || flags.cpus !== undefined || flags.capAdd.length > 0 || flags.capDrop.length > 0 ||
    flags.readOnly || flags.tty || flags.entrypoint !== undefined || Object.keys(flags.annotations).length > 0 ||
    flags.init || flags.rm || (flags.securityOpt?.length ?? 0) > 0 || flags.sysctl !== undefined || flags.privileged === true || flags.extras !== undefined
  );
}

function parseEnv(value: string, hostEnv: NodeJS.ProcessEnv): string[] {
  const eq = value.indexOf('=');
  const name = eq === -1 ? value : value.slice(0, eq);
  if (name === '' || /\s/.test(name)) throw new UsageError(`--env ${JSON.stringify(value)}: expected NAME=VALUE or NAME`);
  if (eq !== -1) return [value];
  // podman: `-e NAME` copies NAME from the caller's environment, and is dropped when unset.
  const hostValue = hostEnv[name];
  return hostValue === undefined ? [] : [`${name}=${hostValue}`];
}

function nonEmpty(flag: string, value: string): string {
  if (value === '') throw new UsageError(`${flag}: must not be empty`);
  return value;
}

function absoluteContainerPath(flag: string, value: string): string {
  if (!value.startsWith('/')) throw new UsageError(`${flag} ${JSON.stringify(value)}: must be an absolute path inside the container`);
  return value;
}

function parseHostname(value: string): string {
  // RFC 1123 labels; the kernel takes up to 64 bytes.
  if (!/^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(value) || value.length > 64) {
    throw new UsageError(`--hostname ${JSON.stringify(value)}: not a valid host name`);
  }
  return value;
}

function parseVolume(value: string, cwd: string): VolumeFlag {
  const parts = value.split(':');
  if (parts.length < 2 || parts.length > 3 || parts[0] === '' || parts[1] === '') {
    throw new UsageError(`--volume ${JSON.stringify(value)}: expected SRC:DST[:ro|rw]`);
  }
  const [source, destination, mode = 'rw'] = parts as [string, string, string?];
  if (!isAbsolute(source) && !source.startsWith('./') && !source.startsWith('../') && source !== '.' && source !== '..') {
    // podman would take a bare word for a named volume; there is no volume store here.
    throw new UsageError(`--volume ${JSON.stringify(value)}: named volumes are not supported, give a host path (absolute, or ./relative)`);
  }
  if (mode !== 'ro' && mode !== 'rw') throw new UsageError(`--volume ${JSON.stringify(value)}: the mode must be ro or rw, not ${JSON.stringify(mode)}`);
  return { source: resolve(cwd, source), destination: absoluteContainerPath('--volume', destination), readOnly: mode === 'ro' };
}

/**
 * podman's defaults for --tmpfs, and Docker's documented mode 1777: without a mode runc keeps
 * the mode of the directory it mounts over (0755 when it makes it), so only root could write there.
 */
const TMPFS_DEFAULT_OPTIONS = ['rw', 'noexec', 'nosuid', 'nodev', 'mode=1777'];

function parseTmpfs(value: string): TmpfsFlag {
  const colon = value.indexOf(':');
  const destination = absoluteContainerPath('--tmpfs', colon === -1 ? value : value.slice(0, colon));
  const options = colon === -1 ? TMPFS_DEFAULT_OPTIONS : value.slice(colon + 1).split(',').filter((o) => o !== '');
  return { destination, options };
}

const MEMORY_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** `512m`, `1g`, `1048576`, `2GB` (podman's units: binary multiples). */
export function parseMemory(value: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([bkmgt]?)b?$/i.exec(value.trim());
  if (!match) throw new UsageError(`--memory ${JSON.stringify(value)}: expected a size like 512m or 1g`);
  const bytes = Math.floor(Number(match[1]) * (MEMORY_UNITS[(match[2] ?? '').toLowerCase()] ?? 1));
  // The kernel and runc refuse limits this small; say so before the runtime does.
  if (bytes < 6 * 1024 * 1024) throw new UsageError(`--memory ${JSON.stringify(value)}: the minimum is 6m`);
  return bytes;
}

function parsePidsLimit(value: number): number {
  if (!Number.isInteger(value) || (value < 1 && value !== -1)) throw new UsageError(`--pids-limit ${value}: expected a positive integer, or -1 for no limit`);
  return value;
}

function parseCpus(value: number): number {
  if (!Number.isFinite(value) || value <= 0) throw new UsageError(`--cpus ${value}: expected a positive number of CPUs, like 0.5 or 2`);
  return value;
}

/** Linux capabilities by name (capability.h), as the runtime-spec spells them. */
export const ALL_CAPABILITIES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST', 'CAP_NET_ADMIN', 'CAP_NET_RAW',
  'CAP_IPC_LOCK', 'CAP_IPC_OWNER', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE', 'CAP_SYS_PACCT',
  'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME', 'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD',
  'CAP_LEASE', 'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP', 'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG',
  'CAP_WAKE_ALARM', 'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
] as const;

function parseCapabilities(flag: string, value: string): string[] {
  return value.split(',').filter((c) => c !== '').map((raw) => {
    const upper = raw.trim().toUpperCase();
    if (upper === 'ALL') return 'ALL';
    const name = upper.startsWith('CAP_') ? upper : `CAP_${upper}`;
    if (!(ALL_CAPABILITIES as readonly string[]).includes(name)) throw new UsageError(`${flag} ${JSON.stringify(raw)}: unknown capability`);
    return name;
  });
}

function parseEntrypoint(value: string): string[] {
  if (value === '') return [];
  if (!value.trimStart().startsWith('[')) return [value];
  // podman: a JSON array is the exec form; anything else is one program name.
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new UsageError(`--entrypoint ${JSON.stringify(value)}: looks like a JSON array but does not parse`);
  }
  if (!Array.isArray(parsed) || !parsed.every((a) => typeof a === 'string')) throw new UsageError(`--entrypoint ${JSON.stringify(value)}: the JSON form must be an array of strings`);
  return parsed;
}

function parseAnnotation(value: string): [string, string] {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new UsageError(`--annotation ${JSON.stringify(value)}: expected KEY=VALUE`);
  return [value.slice(0, eq), value.slice(eq + 1)];
}

/**
 * podman's --security-opt: seccomp=unconfined|FILE; no-new-privileges (always set here: bubblewrap
 * sets no_new_privs); label=disable (no SELinux label is ever written). Others are refused.
 */
function parseSecurityOpts(values: string[], cwd: string): Pick<RunFlags, 'seccomp' | 'securityOpt'> {
  let seccomp: string | undefined;
  for (const value of values) {
    if (value === 'no-new-privileges' || value === 'no-new-privileges=true' || value === 'label=disable') continue;
    if (value.startsWith('seccomp=') && value.length > 'seccomp='.length) {
      const profile = value.slice('seccomp='.length);
      seccomp = profile === 'unconfined' ? profile : resolve(cwd, profile);
      continue;
    }
    if (value === 'no-new-privileges=false') throw new UsageError('--security-opt no-new-privileges=false: not supported (bubblewrap always sets no_new_privs)');
    throw new UsageError(`--security-opt ${JSON.stringify(value)}: not supported`, { hint: 'seccomp=unconfined, seccomp=FILE, no-new-privileges and label=disable are' });
  }
  return { ...(seccomp ? { seccomp } : {}), securityOpt: values };
}

function parseSysctl(value: string): [string, string] {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new UsageError(`--sysctl ${JSON.stringify(value)}: expected KEY=VALUE`);
  const key = value.slice(0, eq).replace(/\//g, '.');
  if (!sysctlNamespace(key)) throw new UsageError(`--sysctl ${key}: not a namespaced sysctl (net.*, kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*, kernel.hostname, kernel.domainname): it would change the host`);
  return [key, value.slice(eq + 1)];
}

function extrasOf(args: RunFlagArgs): { extras?: PodmanExtras } {
  const extras = parsePodmanFlags(args);
  if (extras.hostNamespaces?.includes('uts') && args.hostname !== undefined) throw new UsageError('--hostname with --uts host: the container has the host\'s host name');
  return Object.keys(extras).length > 0 ? { extras } : {};
}
