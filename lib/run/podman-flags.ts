/**
 * The rest of the podman run flags people type (issue 19): parsed into `PodmanExtras` and put
 * into a built config. Each works in oci-spec and ns-enter alike, or is refused in one line.
 */
import { readFileSync } from 'node:fs';
import { UsageError } from '../core/errors.js';
import { findProgram } from '../core/host.js';
import type { RuntimeConfig } from './runtime-spec.js';

export interface PodmanExtras {
  /** --ulimit NAME=SOFT[:HARD], as RLIMIT_* (replacing runc's of the same type). */
  ulimits?: Array<{ type: string; soft: number; hard: number }>;
  /** --shm-size, bytes: /dev/shm's size. */
  shmSize?: number;
  /** --group-add GID, numeric. */
  groupAdd?: number[];
  /** --stop-signal: the annotation podman writes (org.opencontainers.image.stopSignal). */
  stopSignal?: string;
  /** --pid host, --ipc host, --uts host: the namespaces the container shares with the host. */
  hostNamespaces?: Array<'pid' | 'ipc' | 'uts'>;
}

export interface PodmanFlagArgs {
  ulimit?: string[];
  'shm-size'?: string;
  'group-add'?: string[];
  'env-file'?: string[];
  label?: string[];
  'stop-signal'?: string;
  pid?: string;
  ipc?: string;
  uts?: string;
  device?: string[];
}

const RLIMITS = ['as', 'core', 'cpu', 'data', 'fsize', 'locks', 'memlock', 'msgqueue', 'nice', 'nofile', 'nproc', 'rss', 'rtprio', 'rttime', 'sigpending', 'stack'];

/** Checks and converts the flags; the refused ones say why and what to use. */
export function parsePodmanFlags(args: PodmanFlagArgs): PodmanExtras {
  if (args.label?.length) throw new UsageError('--label is not supported: labels are podman\'s container metadata, which a config.json has no place for', { hint: 'use --annotation KEY=VALUE' });
  if (args.device?.length) throw new UsageError('--device is not supported yet: ns-enter cannot make device nodes', { hint: 'use --privileged for every host device' });
  const hostNamespaces = (['pid', 'ipc', 'uts'] as const).filter((ns) => {
    const value = args[ns];
    if (value === undefined || value === 'private') return false;
    if (value !== 'host') throw new UsageError(`--${ns} ${JSON.stringify(value)}: only host or private are supported (joining another container's namespace is not)`);
    return true;
  });
  return {
    ...(args.ulimit?.length ? { ulimits: args.ulimit.map(parseUlimit) } : {}),
    ...(args['shm-size'] !== undefined ? { shmSize: parseShmSize(args['shm-size']) } : {}),
    ...(args['group-add']?.length ? { groupAdd: args['group-add'].map(parseGid) } : {}),
    ...(args['stop-signal'] !== undefined ? { stopSignal: parseSignal(args['stop-signal']) } : {}),
    ...(hostNamespaces.length > 0 ? { hostNamespaces } : {}),
  };
}

/** --env-file FILE: podman's format (NAME=VALUE or NAME per line, # comments, blank lines skipped), before -e. */
export function envFileEntries(files: string[]): string[] {
  return files.flatMap((file) => {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new UsageError(`--env-file ${file}: cannot read: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`, { cause: err });
    }
    return text.split('\n').map((l) => l.replace(/\r$/, '')).filter((l) => l.trim() !== '' && !l.trimStart().startsWith('#'));
  });
}

function parseUlimit(value: string): { type: string; soft: number; hard: number } {
  const match = /^([a-z]+)=(-?\d+)(?::(-?\d+))?$/.exec(value);
  if (!match || !RLIMITS.includes(match[1] as string)) throw new UsageError(`--ulimit ${JSON.stringify(value)}: expected NAME=SOFT[:HARD] with NAME one of ${RLIMITS.join(', ')}`);
  const limit = (n: string) => (Number(n) === -1 ? 2 ** 64 - 1 : Number(n));
  const soft = limit(match[2] as string);
  const hard = match[3] === undefined ? soft : limit(match[3]);
  if (soft > hard) throw new UsageError(`--ulimit ${value}: the soft limit is above the hard one`);
  return { type: `RLIMIT_${(match[1] as string).toUpperCase()}`, soft, hard };
}

function parseShmSize(value: string): number {
  const match = /^(\d+)([bkmg]?)$/i.exec(value.trim());
  if (!match || Number(match[1]) === 0) throw new UsageError(`--shm-size ${JSON.stringify(value)}: expected a size like 64m`);
  return Number(match[1]) * ({ '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[(match[2] ?? '').toLowerCase()] as number);
}

function parseGid(value: string): number {
  if (!/^\d+$/.test(value)) throw new UsageError(`--group-add ${JSON.stringify(value)}: give a numeric gid (group names are not looked up)`);
  return Number(value);
}

function parseSignal(value: string): string {
  const name = value.toUpperCase();
  if (!/^(SIG)?[A-Z0-9+-]+$/.test(name) && !/^\d+$/.test(value)) throw new UsageError(`--stop-signal ${JSON.stringify(value)}: not a signal`);
  return /^\d+$/.test(value) ? value : name.startsWith('SIG') ? name : `SIG${name}`;
}

/** Puts the extras into a built config. */
export function applyPodmanExtras(config: RuntimeConfig, extras: PodmanExtras | undefined): RuntimeConfig {
  if (!extras) return config;
  const process = config.process && { ...config.process };
  if (process && extras.ulimits) {
    const types = new Set(extras.ulimits.map((u) => u.type));
    process.rlimits = [...(process.rlimits ?? []).filter((r) => !types.has(r.type)), ...extras.ulimits];
  }
  if (process && extras.groupAdd) process.user = { ...process.user, additionalGids: [...new Set([...(process.user.additionalGids ?? []), ...extras.groupAdd])] };
  const shared = new Set<string>(extras.hostNamespaces ?? []);
  const linux = config.linux && { ...config.linux, namespaces: (config.linux.namespaces ?? []).filter((ns) => !shared.has(ns.type)) };
  const mounts = extras.shmSize === undefined ? config.mounts : config.mounts?.map((m) => (m.destination === '/dev/shm' ? { ...m, options: [...(m.options ?? []).filter((o) => !o.startsWith('size=')), `size=${Math.ceil((extras.shmSize as number) / 1024)}k`] } : m));
  const annotations = extras.stopSignal ? { ...config.annotations, 'org.opencontainers.image.stopSignal': extras.stopSignal } : config.annotations;
  // Assigned in place, so the fields keep runc's order.
  const result: RuntimeConfig = { ...config, ...(process ? { process } : {}), ...(mounts ? { mounts } : {}), ...(linux ? { linux } : {}) };
  if (annotations) result.annotations = annotations;
  if (shared.has('uts')) delete result.hostname;
  return result;
}

/** Where oci-spec --init binds catatonit, as podman binds it at /run/podman-init. */
export const INIT_PATH = '/run/container-parts-init';

/**
 * oci-spec --init, as podman's: the host's catatonit (static, so it needs nothing of the
 * image's) bound read-only into the container and run as the first process, `catatonit -- ARGS`.
 */
export function withCatatonit(config: RuntimeConfig): RuntimeConfig {
  const source = findProgram('catatonit');
  const process = config.process && { ...config.process, args: [INIT_PATH, '--', ...(config.process.args ?? [])] };
  return { ...config, ...(process ? { process } : {}), mounts: [...(config.mounts ?? []), { destination: INIT_PATH, type: 'bind', source, options: ['bind', 'private', 'ro'] }] };
}
