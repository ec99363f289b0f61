/**
 * The checks of a runtime config before anything is planned: every field is either one the
 * executor carries out or refused with an UnsupportedError naming it.
 */
import { UnsupportedError } from '../core/errors.js';
import type { IdMapping, RuntimeConfig } from './runtime-spec.js';
import { checkSeccomp } from './seccomp-filter.js';

export type ProcessConfig = NonNullable<RuntimeConfig['process']>;
export type LinuxConfig = NonNullable<RuntimeConfig['linux']>;

/** The parts of a checked config the plan reads. */
export interface CheckedConfig {
  proc: ProcessConfig & { args: string[] };
  linux: LinuxConfig;
}

export function checkKnownFields(prefix: string, value: object, known: string[]): void {
  for (const key of Object.keys(value)) if (!known.includes(key)) throw new UnsupportedError(`${prefix}${key}: not supported by ns-enter`);
}

/** Refuses what no part of the plan carries out: unknown fields, hooks, a process without args. */
export function checkConfig(config: RuntimeConfig, options: { stdinIsTerminal: boolean }): CheckedConfig {
  checkKnownFields('', config, ['ociVersion', 'process', 'root', 'hostname', 'mounts', 'annotations', 'linux', 'hooks', 'domainname']);
  if (!/^1\./.test(config.ociVersion ?? '')) throw new UnsupportedError(`ociVersion: ${JSON.stringify(config.ociVersion)} is not a 1.x runtime-spec version`);
  if (config.domainname) throw new UnsupportedError('domainname: not supported by ns-enter (bubblewrap sets no NIS domain name)');
  if (config.hooks && Object.values(config.hooks).some((h) => Array.isArray(h) && h.length > 0)) throw new UnsupportedError('hooks: not supported by ns-enter');
  const proc = checkProcess(config.process, options.stdinIsTerminal);
  return { proc, linux: checkLinux(config.linux ?? {}) };
}

function checkProcess(proc: RuntimeConfig['process'], stdinIsTerminal: boolean): CheckedConfig['proc'] {
  if (!proc) throw new UnsupportedError('process: missing (nothing to run)');
  checkKnownFields('process.', proc, ['terminal', 'consoleSize', 'user', 'args', 'env', 'cwd', 'capabilities', 'rlimits', 'noNewPrivileges', 'oomScoreAdj', 'apparmorProfile', 'selinuxLabel']);
  if (!proc.args || proc.args.length === 0) throw new UnsupportedError('process.args: missing (nothing to run)');
  if (proc.apparmorProfile) throw new UnsupportedError('process.apparmorProfile: not supported by ns-enter');
  if (proc.selinuxLabel) throw new UnsupportedError('process.selinuxLabel: not supported by ns-enter');
  if (proc.noNewPrivileges !== true) throw new UnsupportedError('process.noNewPrivileges: must be true (bubblewrap always sets no_new_privs)');
  if (proc.user.umask !== undefined && (!Number.isInteger(proc.user.umask) || proc.user.umask < 0 || proc.user.umask > 0o777)) throw new UnsupportedError(`process.user.umask: ${proc.user.umask} is not a umask (0 to 0777)`);
  if (proc.user.username !== undefined) throw new UnsupportedError('process.user.username: a Windows field, not supported');
  if (proc.terminal && !stdinIsTerminal) throw new UnsupportedError('process.terminal: true needs a terminal on stdin (run from a terminal, or without -t)');
  return { ...proc, args: proc.args };
}

function checkLinux(linux: LinuxConfig): LinuxConfig {
  checkKnownFields('linux.', linux, ['namespaces', 'uidMappings', 'gidMappings', 'devices', 'cgroupsPath', 'resources', 'sysctl', 'seccomp', 'rootfsPropagation', 'maskedPaths', 'readonlyPaths', 'mountLabel']);
  if (linux.mountLabel !== undefined) throw new UnsupportedError('linux.mountLabel: not supported by ns-enter yet');
  if (linux.seccomp) checkSeccomp(linux.seccomp);
  if (linux.rootfsPropagation && !['private', 'rprivate', 'slave', 'rslave'].includes(linux.rootfsPropagation)) {
    throw new UnsupportedError(`linux.rootfsPropagation: ${linux.rootfsPropagation} is not supported (bubblewrap keeps the container's mounts private)`);
  }
  const resources = linux.resources ?? {};
  // The device rules are carried out by the devices cgroup (cgroup-devices.ts).
  checkKnownFields('linux.resources.', resources, ['devices', 'memory', 'cpu', 'pids']);
  return linux;
}

/** The namespaces a config may join by path (podman's network namespace): util-linux nsenter joins them before bwrap runs. */
const JOINABLE = ['network', 'ipc', 'uts'];

/** The config's namespace types, each once (those it joins by path too); a mount namespace is required. */
export function checkNamespaces(linux: LinuxConfig): Set<string> {
  const namespaces = new Set<string>();
  const userNamespace = (linux.namespaces ?? []).some((ns) => ns.type === 'user');
  for (const [i, ns] of (linux.namespaces ?? []).entries()) {
    if (ns.path && (!JOINABLE.includes(ns.type) || userNamespace)) throw new UnsupportedError(`linux.namespaces[${i}].path: joining an existing ${ns.type} namespace is not supported${userNamespace ? ' with a user namespace' : ''} (only ${JOINABLE.join(', ')})`);
    if (namespaces.has(ns.type)) throw new UnsupportedError(`linux.namespaces[${i}]: ${ns.type} twice`);
    namespaces.add(ns.type);
  }
  if (!namespaces.has('mount')) throw new UnsupportedError('linux.namespaces: a mount namespace is required (the root is switched with pivot_root)');
  return namespaces;
}

/** The namespaces the config joins by path, as [type, path] (checkNamespaces allowed them). */
export function joinedNamespaces(linux: LinuxConfig): Array<[string, string]> {
  return (linux.namespaces ?? []).filter((ns) => ns.path).map((ns) => [ns.type, ns.path as string]);
}

/** A user namespace's maps: both required (runtime-spec), and only with a user namespace. */
export function userMappings(linux: LinuxConfig): { uidMappings: IdMapping[]; gidMappings: IdMapping[] } {
  const { uidMappings = [], gidMappings = [] } = linux;
  if (uidMappings.length === 0 || gidMappings.length === 0) throw new UnsupportedError(`linux.${uidMappings.length === 0 ? 'uidMappings' : 'gidMappings'}: a user namespace needs uid and gid mappings`);
  return { uidMappings, gidMappings };
}
