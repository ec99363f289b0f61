/**
 * Who still uses a mount. umount(2) only sees this mount namespace: a container started on the
 * overlay holds its own copy in its namespace, and unmounting ours would leave the container
 * writing into an upper dir that the next mount of the same container then shares. So every
 * process is looked at (its root, working directory, open and mapped files, by the mount's
 * device), and every other mount namespace's table (does it have the overlay somewhere of its own?).
 */
import { readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { otherNamespaceMounts, processIds, type MountInfoEntry } from './mountinfo.js';

export interface MountHolder {
  pid: number;
  command: string;
  /** What of the process is on the mount, as a phrase: "its working directory there". */
  how: string;
}

/** The first process found holding the mount, or undefined when none does. */
export function findHolder(entry: MountInfoEntry): MountHolder | undefined {
  const device = deviceNumber(entry.device);
  const prefix = `${entry.mountPoint}/`;
  for (const pid of processIds()) {
    const how = processUse(pid, { device, prefix, mapsDevice: mapsDevice(entry.device) });
    if (how) return { pid, command: commandOf(pid), how };
  }
  // A namespace made while the overlay was mounted holds a copy at the same place (runc's and
  // unshare's start-up do, for a moment): only the overlay mounted elsewhere there (a container's root, a volume) is a use.
  const namespace = otherNamespaceMounts().find((ns) => ns.entries.some((e) => e.device === entry.device && e.mountPoint !== entry.mountPoint));
  if (namespace) return { pid: namespace.pid, command: commandOf(namespace.pid), how: 'the overlay mounted in its mount namespace (a container on it still runs)' };
  return undefined;
}

interface Probe {
  device: number;
  prefix: string;
  mapsDevice: string;
}

/**
 * Root and working directory by device (they work across mount namespaces: a container's root
 * is the overlay wherever it sits); open files by path, one readlink each (a stat per fd of
 * every process costs ~10x more; a container's files are in its root anyway).
 */
function processUse(pid: number, probe: Probe): string | undefined {
  const inside = (link: string) => `${readlinkSync(link)}/`.startsWith(probe.prefix);
  const on = (link: string) => {
    try {
      return statSync(link).dev === probe.device || inside(link);
    } catch {
      return false;
    }
  };
  if (on(`/proc/${pid}/root`)) return 'its root there';
  if (on(`/proc/${pid}/cwd`)) return 'its working directory there';
  let fds: string[] = [];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    // ended, or not ours to read
  }
  const open = (fd: string) => {
    try {
      return inside(`/proc/${pid}/fd/${fd}`);
    } catch {
      return false;
    }
  };
  if (fds.some(open)) return 'a file open there';
  try {
    if (readFileSync(`/proc/${pid}/maps`, 'utf8').includes(probe.mapsDevice)) return 'a file mapped there';
  } catch {
    // ended, or not ours to read
  }
  return undefined;
}

/** glibc's makedev for a mount table's major:minor (what stat's dev is). */
function deviceNumber(majorMinor: string): number {
  const [major = 0, minor = 0] = majorMinor.split(':').map(Number);
  return (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xff) * 4096) + (major & ~0xfff) * 2 ** 32;
}

/** /proc/PID/maps writes the device as hex %02x:%02x, between the offset and the inode. */
function mapsDevice(majorMinor: string): string {
  const [major = 0, minor = 0] = majorMinor.split(':').map(Number);
  return ` ${major.toString(16).padStart(2, '0')}:${minor.toString(16).padStart(2, '0')} `;
}

function commandOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '?';
  }
}
