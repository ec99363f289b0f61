/**
 * A config's mounts as bwrap flags, in runc's order: each of `mounts`, then the read-only
 * remounts, then masked and read-only paths. What bwrap cannot make with its flags is staged
 * (see mount-prelude.ts); what no one can make here is refused naming the field.
 */
import { existsSync, statSync } from 'node:fs';
import { posix } from 'node:path';
import { UnsupportedError, UsageError } from '../core/errors.js';
import { resolveInRoot } from '../core/root-resolver.js';
import type { Stage } from './mount-prelude.js';
import type { RuntimeMount } from './runtime-spec.js';

/** The root overlay a rootless ovl-mount put first in the config: mounted by the prelude, not by bwrap. */
export function rootOverlayOf(mounts: RuntimeMount[]): RuntimeMount | undefined {
  const first = mounts[0];
  return first?.type === 'overlay' && posix.normalize(first.destination) === '/' ? first : undefined;
}

/** bwrap's flags for every mount but the root overlay, with the read-only remounts after all of them. */
export function mountArgs(mounts: RuntimeMount[], context: Pick<MountContext, 'root' | 'stage' | 'cgroupViews'>): string[] {
  const args: string[] = [];
  const late: string[] = [];
  let hasDev = false;
  const rootOverlay = rootOverlayOf(mounts);
  for (const [i, mount] of mounts.entries()) {
    if (mount === rootOverlay) continue;
    const translated = translateMount(mount, { field: `mounts[${i}]`, hasDev, ...context });
    if (mount.type === 'tmpfs' && posix.normalize(mount.destination) === '/dev') hasDev = true;
    args.push(...translated.args);
    late.push(...translated.late);
  }
  return [...args, ...late];
}

/**
 * The mode of a tmpfs as runc gives it: a directory already in the rootfs keeps its own mode
 * over the tmpfs (runc chmods the mount point back), else `mode=`, else 0755.
 */
function tmpfsMode(root: string, destination: string, options: string[]): string {
  const existing = resolveInRoot(root, destination);
  if (existing) {
    const stats = statSync(existing);
    if (stats.isDirectory()) return (stats.mode & 0o7777).toString(8).padStart(4, '0');
  }
  return (options.find((o) => o.startsWith('mode='))?.slice(5) ?? '755').padStart(4, '0');
}

/**
 * Options bwrap's mounts honour or make moot (its mounts are nosuid, its binds recursive and
 * private; a tmpfs or bind with noexec is staged, see RunOptions.stagingDir).
 */
const HARMLESS_OPTIONS = new Set(['nosuid', 'nodev', 'noexec', 'strictatime', 'relatime', 'noatime', 'rw', 'bind', 'rbind', 'private', 'rprivate', 'slave', 'rslave', 'newinstance']);

interface MountContext {
  /** The config field, for errors: mounts[N]. */
  field: string;
  /** Whether a tmpfs at /dev came earlier (a devpts needs one). */
  hasDev: boolean;
  root: string;
  stage: Stage;
  /** The container's own cgroup dirs, shown at /sys/fs/cgroup/NAME (undefined: it has no cgroup). */
  cgroupViews?: Array<{ dir: string; name: string }>;
}

function translateMount(mount: RuntimeMount, { field, hasDev, root, stage, cgroupViews }: MountContext): { args: string[]; late: string[] } {
  const destination = posix.normalize(mount.destination);
  if (!destination.startsWith('/')) throw new UnsupportedError(`${field}.destination: must be absolute`);
  const options = mount.options ?? [];
  const readOnly = options.includes('ro');
  const isBind = mount.type === 'bind' || options.includes('bind') || options.includes('rbind');
  const late = readOnly ? ['--remount-ro', destination] : [];
  const unknown = (allowed: (o: string) => boolean) => {
    const bad = options.find((o) => !HARMLESS_OPTIONS.has(o) && o !== 'ro' && !allowed(o));
    if (bad) throw new UnsupportedError(`${field}.options: ${bad} is not supported on ${destination}`);
  };
  if (mount.uidMappings?.length || mount.gidMappings?.length) throw new UnsupportedError(`${field}: idmapped mounts are not supported`);
  if (isBind) {
    unknown(() => false);
    if (!mount.source) throw new UnsupportedError(`${field}.source: a bind mount needs a source`);
    if (!existsSync(mount.source)) throw new UsageError(`${field}.source: ${mount.source} does not exist`);
    const source = options.includes('noexec')
      ? stage((at) => ({ what: `${field} (${destination})`, kind: 'bind-noexec', source: mount.source as string, target: at, options: [] }))
      : mount.source;
    return { args: [readOnly ? '--ro-bind' : '--bind', source, destination], late: [] };
  }
  switch (mount.type) {
    case 'proc':
      unknown(() => false);
      return { args: ['--proc', destination], late };
    case 'tmpfs': {
      unknown((o) => /^(size|mode|nr_inodes)=/.test(o) || o === 'exec' || o === 'dev');
      if (destination === '/dev') return { args: ['--dev', '/dev'], late };
      return { args: tmpfsArgs(mount, { field, root, stage }), late };
    }
    case 'devpts':
      // bwrap's --dev mounts a private devpts (newinstance, ptmxmode=0666, mode=620) at /dev/pts.
      if (destination !== '/dev/pts' || !hasDev) throw new UnsupportedError(`${field}: devpts only at /dev/pts, after a tmpfs at /dev`);
      unknown((o) => /^(ptmxmode|mode|gid)=/.test(o));
      return { args: [], late: [] };
    case 'mqueue':
      unknown(() => false);
      return { args: ['--mqueue', destination], late: [] };
    case 'sysfs':
      // bwrap cannot mount a fresh sysfs: the host's is bound read-only (as runc does rootless).
      if (!readOnly) throw new UnsupportedError(`${field}: sysfs only read-only (ro): it is the host's, bound`);
      unknown(() => false);
      return { args: ['--ro-bind', '/sys', destination], late: [] };
    case 'cgroup':
    case 'cgroup2':
      if (destination !== '/sys/fs/cgroup' || !readOnly) throw new UnsupportedError(`${field}: a cgroup mount only read-only at /sys/fs/cgroup (under the /sys bind)`);
      return cgroupMount(destination, cgroupViews);
    default:
      throw new UnsupportedError(`${field}.type: ${mount.type ?? '(none)'} mounts are not supported by ns-enter`);
  }
}

/**
 * As runc: a tmpfs holding the container's own cgroup dir of each hierarchy, read-only. A
 * container without a cgroup of its own (rootless) sees the host's, inside the /sys bind.
 */
function cgroupMount(destination: string, views: MountContext['cgroupViews']): { args: string[]; late: string[] } {
  if (!views) return { args: [], late: [] };
  const binds = views.flatMap((v) => ['--ro-bind', v.dir, posix.join(destination, v.name)]);
  return { args: [...(views.some((v) => v.name) ? ['--tmpfs', destination] : []), ...binds], late: ['--remount-ro', destination] };
}

/** The later of two opposite options wins, as in mount(8) and runc. */
function lastOf(options: string[], on: string, off: string): boolean {
  return options.lastIndexOf(on) > options.lastIndexOf(off);
}

/**
 * A tmpfs other than /dev: bwrap's own (exec, nodev) unless it must be noexec or allow device
 * nodes (`dev`, which podman users give with --tmpfs DST:dev): then staged with those flags and
 * bound in (with --dev-bind for `dev`: bwrap's other binds are nodev).
 */
function tmpfsArgs(mount: RuntimeMount, { field, root, stage }: Omit<MountContext, 'hasDev'>): string[] {
  const destination = posix.normalize(mount.destination);
  const options = mount.options ?? [];
  const size = options.find((o) => o.startsWith('size='))?.slice(5);
  const mode = tmpfsMode(root, destination, options);
  const noexec = lastOf(options, 'noexec', 'exec');
  const dev = lastOf(options, 'dev', 'nodev');
  if (!noexec && !dev) return [...(size ? ['--size', String(parseSize(size, field))] : []), '--perms', mode, '--tmpfs', destination];
  const flags = [noexec ? 'noexec' : 'exec', 'nosuid', dev ? 'dev' : 'nodev', `mode=${mode}`, ...(size ? [`size=${parseSize(size, field)}`] : [])];
  const at = stage((at) => ({ what: `${field} (${destination})`, kind: 'tmpfs', source: 'tmpfs', target: at, options: flags }));
  return [dev ? '--dev-bind' : '--bind', at, destination];
}

function parseSize(text: string, field: string): number {
  const match = /^(\d+)([kmg]?)$/i.exec(text);
  if (!match) throw new UnsupportedError(`${field}.options: size=${text} is not a size`);
  return Number(match[1]) * ({ '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[(match[2] ?? '').toLowerCase()] as number);
}

/** runc: /dev/null over a file, an empty read-only tmpfs over a dir; a path the kernel does not have is skipped. */
export function maskPath(path: string): string[] {
  let info;
  try {
    info = statSync(path);
  } catch {
    return [];
  }
  if (info.isDirectory()) return ['--perms', '0000', '--tmpfs', path, '--remount-ro', path];
  // --dev-bind: bwrap's other binds are nodev, and a nodev /dev/null cannot be opened.
  return ['--dev-bind', '/dev/null', path];
}

/**
 * runc binds each read-only path onto itself and remounts it read-only. bwrap's binds take
 * their source from the host, which is the same here: what /proc/sys and the like show is
 * decided by the reader's namespaces, not by the proc mount. A path the kernel lacks is skipped.
 */
export function readOnlyPath(path: string): string[] {
  if (!existsSync(path)) return [];
  return ['--ro-bind', path, path];
}
