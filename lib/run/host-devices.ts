/**
 * The host's device nodes, for --privileged (podman's privileged containers get every device
 * of the host's /dev in linux.devices), and their check on the executor's side: ns-enter binds
 * a config's device from the host (bubblewrap cannot mknod with a given major:minor), so it
 * carries out only devices that are on the host at the same path with the same type and number.
 */
import { lstatSync, statSync, type Stats } from 'node:fs';
import { listDir } from '../core/paths.js';
import { join } from 'node:path';
import { UnsupportedError } from '../core/errors.js';
import type { RuntimeLinux } from './runtime-spec.js';

export type Device = NonNullable<RuntimeLinux['devices']>[number];

/** What podman's GetDevices leaves out of /dev: the container's own pts (and its ptmx), shm and mqueue, and the console. */
const SKIPPED = new Set(['/dev/pts', '/dev/shm', '/dev/mqueue', '/dev/console', '/dev/.lxc', '/dev/.udev', '/dev/ptmx']);

/** Linux's dev_t encoding (glibc's gnu_dev_major/minor). */
function deviceNumbers(rdev: number): { major: number; minor: number } {
  const big = BigInt(rdev);
  return { major: Number(((big >> 8n) & 0xfffn) | ((big >> 32n) & ~0xfffn)), minor: Number((big & 0xffn) | ((big >> 12n) & ~0xffn)) };
}

function deviceOf(path: string, info: Stats): Device | undefined {
  if (!info.isCharacterDevice() && !info.isBlockDevice()) return undefined;
  return { path, type: info.isCharacterDevice() ? 'c' : 'b', ...deviceNumbers(info.rdev), fileMode: info.mode & 0o7777, uid: info.uid, gid: info.gid };
}

/** Every character and block device under the host's /dev (symlinks not followed), sorted by path. */
export function hostDevices(dir = '/dev'): Device[] {
  const devices: Device[] = [];
  for (const name of listDir(dir)) {
    const path = join(dir, name);
    if (SKIPPED.has(path)) continue;
    let info: Stats;
    try {
      // lstat: /dev/stdin, /dev/fd and the like are symlinks into /proc/self, not devices of the host's.
      info = lstatSync(path, { throwIfNoEntry: false }) as Stats;
      if (!info) continue;
    } catch {
      continue;
    }
    if (info.isDirectory()) devices.push(...hostDevices(path));
    else {
      const device = deviceOf(path, info);
      if (device) devices.push(device);
    }
  }
  return devices.sort((a, b) => (a.path < b.path ? -1 : 1));
}

/** bwrap's args for linux.devices: a --dev-bind of the host's node, which must be the same device. */
export function deviceBinds(devices: Device[]): string[] {
  return devices.flatMap((device, i) => {
    const field = `linux.devices[${i}]`;
    let info: Stats | undefined;
    try {
      info = statSync(device.path, { throwIfNoEntry: false });
    } catch {
      info = undefined;
    }
    const host = info && deviceOf(device.path, info);
    if (!host || host.type !== device.type || host.major !== device.major || host.minor !== device.minor) {
      throw new UnsupportedError(`${field}: ${device.path} (${device.type} ${device.major}:${device.minor}) is not that device on the host: ns-enter binds devices from the host's /dev, it cannot make one`);
    }
    return ['--dev-bind', device.path, device.path];
  });
}
