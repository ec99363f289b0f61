/**
 * The files podman binds into every container from the container's own dir, so that programs
 * that need them find them and none sees the host's: /etc/hosts (the host's entries, then the
 * container's hostname on 127.0.0.1, so `getent hosts $(hostname)` answers), /etc/hostname,
 * /etc/resolv.conf (the host's, with the host's network only: a private network namespace has
 * nothing but loopback, and podman binds none with --network none) and /run/.containerenv
 * (empty, as podman's for a container that is not privileged: "you are in a container").
 * podman's host.containers.internal line is left out: no network here has a gateway to name.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { resolveInRoot } from '../core/root-resolver.js';
import type { RuntimeConfig, RuntimeMount } from './runtime-spec.js';

interface EtcFile {
  /** The file's name in the dir the files are written to. */
  name: string;
  destination: string;
  content: string;
}

/** The files' names; in a staging dir they are in STAGED_ETC (run-record.ts removes them by name). */
export const ETC_FILE_NAMES = ['.containerenv', 'hostname', 'resolv.conf', 'hosts'];
export const STAGED_ETC = 'etc';

/** podman's order of the four binds, and its options. */
const BIND_OPTIONS = ['bind', 'rprivate'];

function readHostFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** The host's /etc/hosts entries as podman rewrites them (ADDRESS, a tab, the names), localhost first when the host has none. */
export function hostsFile(hostHosts: string, hostname: string | undefined): string {
  const entries = hostHosts.split('\n').map((line) => line.replace(/#.*/, '').trim().split(/\s+/)).filter((fields) => fields.length >= 2);
  const lines = entries.map(([address, ...names]) => `${address}\t${names.join(' ')}`);
  if (!entries.some(([, ...names]) => names.includes('localhost'))) lines.unshift('127.0.0.1\tlocalhost', '::1\tlocalhost');
  if (hostname) lines.push(`127.0.0.1\t${hostname}`);
  return `${lines.join('\n')}\n`;
}

/** What the container gets, for its config: the hostname from config.hostname, the host network when there is no network namespace. */
export function etcFilesFor(config: RuntimeConfig, hostEtc = '/etc'): EtcFile[] {
  const hostNetwork = !(config.linux?.namespaces ?? []).some((ns) => ns.type === 'network');
  const hostname = config.hostname || undefined;
  const files: EtcFile[] = [{ name: '.containerenv', destination: '/run/.containerenv', content: '' }];
  if (hostname) files.push({ name: 'hostname', destination: '/etc/hostname', content: `${hostname}\n` });
  if (hostNetwork) files.push({ name: 'resolv.conf', destination: '/etc/resolv.conf', content: readHostFile(join(hostEtc, 'resolv.conf')) });
  files.push({ name: 'hosts', destination: '/etc/hosts', content: hostsFile(readHostFile(join(hostEtc, 'hosts')), hostNetwork ? undefined : hostname) });
  return files;
}

export interface EtcFilesOptions {
  /** Bind only where the root has the mount point already: a read-only root (the store's copy of an image) is never written to. */
  rootOnHost?: string;
  hostEtc?: string;
}

/**
 * Writes the files into `dir` and returns the config with their binds after runc's mounts
 * (before the image's volumes and -v, which may replace one: a user's -v /etc/hosts wins).
 * Like runc, the runtime makes a missing mount point in the root, unless rootOnHost says not to.
 */
export function withEtcFiles(config: RuntimeConfig, dir: string, options: EtcFilesOptions = {}): RuntimeConfig {
  const mounts = config.mounts ?? [];
  const taken = new Set(mounts.map((m) => m.destination));
  const { rootOnHost } = options;
  const files = etcFilesFor(config, options.hostEtc).filter((f) => !taken.has(f.destination) && (rootOnHost === undefined || resolveInRoot(rootOnHost, f.destination) !== undefined));
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  for (const file of files) writeFileSync(join(dir, file.name), file.content, { mode: 0o644 });
  const binds: RuntimeMount[] = files.map((f) => ({ destination: f.destination, type: 'bind', source: join(dir, f.name), options: [...BIND_OPTIONS] }));
  // After the last of runc's defaults (/dev/mqueue, /sys/fs/cgroup): the mounts podman puts before its own.
  const at = mounts.findIndex((m) => m.destination === '/sys/fs/cgroup');
  const split = at === -1 ? mounts.length : at + 1;
  return { ...config, mounts: [...mounts.slice(0, split), ...binds, ...mounts.slice(split)] };
}
