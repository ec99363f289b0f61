/**
 * OCI runtime configs (config.json) as runc knows them: runc's defaults (`runc spec`, `runc
 * spec --rootless`), the byte format runc writes, and reading and validating a config against
 * schema/runtime-config.schema.json. The config built from an image is config-from-image.ts;
 * where a piped document's root is, earlier-steps.ts; oci-spec's bundle, bundle.ts. Cheap to
 * import: ajv is loaded only when something is validated (ns-enter's start-up is benchmarked).
 */
import { readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { InputError } from '../core/errors.js';
import { firstSchemaError, validatorFor } from '../core/schema.js';
import type { IdMapping, RuntimeConfig, RuntimeMount } from './runtime-spec.js';

/** The runtime-spec version runc 1.1 writes. */
export const OCI_VERSION = '1.0.2-dev';

export const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** runc's default capabilities (libcontainer/specconv.Example). */
const RUNC_CAPABILITIES = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];

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
