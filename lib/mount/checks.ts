/**
 * What is checked before an overlay is mounted, under the mount lock (withMountLock): the dirs
 * exist and can hold an overlay, the target has no mount on it, and the upper and work dirs are
 * not another live overlay's (two overlays on one upper dir is undefined behaviour, the kernel says).
 */
import { statfsSync } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import type { OverlayLayout } from './model.js';
import { mountAt, namespaceUsing, overlayUsing, readMountInfo } from './mountinfo.js';
import { liveRecords } from './record.js';
import { HostError, NotFoundError, UsageError } from '../core/errors.js';

const OVERLAYFS_MAGIC = 0x794c7630;
const FUSE_MAGIC = 0x65735546;

export async function requireDirectory(path: string, what: string): Promise<void> {
  let info;
  try {
    info = await stat(path);
  } catch {
    throw new NotFoundError(`${what} ${path} does not exist`);
  }
  if (!info.isDirectory()) throw new UsageError(`${what} ${path} is not a directory`);
}

/** Makes upper and work if missing; both on one disk filesystem (or tmpfs), not on an overlay or FUSE. */
export async function prepareUpperAndWork(upper: string, work: string): Promise<void> {
  await mkdir(upper, { recursive: true });
  await mkdir(work, { recursive: true });
  const [u, w] = await Promise.all([stat(upper), stat(work)]);
  if (u.dev !== w.dev) throw new UsageError(`upper ${upper} and work ${work} are on different filesystems (overlay needs them on one)`);
  const upperFs = statfsSync(upper).type;
  if (upperFs === OVERLAYFS_MAGIC || upperFs === FUSE_MAGIC) {
    throw new HostError(`upper ${upper} is on an ${upperFs === FUSE_MAGIC ? 'FUSE' : 'overlay'} filesystem, which cannot hold an overlay's upper dir`, { hint: 'put --upper and --work on a disk filesystem or tmpfs' });
  }
}

export function refuseMountedTarget(target: string): void {
  if (mountAt(target)) throw new UsageError(`${target} is a mount point already (ovl-mount --unmount ${target} first)`);
}

/**
 * Refuses an upper or work dir that a live overlay uses: one in this namespace's table (named
 * by absolute path), one ovl-mount recorded (its short names resolved by the record), or one
 * a container's mount namespace still has after the host's copy went.
 */
export function refuseUpperInUse(layout: OverlayLayout, stateRoot: string): void {
  if (layout.upper === undefined) return;
  const entries = readMountInfo();
  const local = overlayUsing(layout, entries);
  if (local) throw upperInUse(layout, `the overlay at ${local.mountPoint}`, local.mountPoint);
  const recorded = liveRecords(stateRoot, entries).find((r) => r.section.upper === layout.upper || r.section.work === layout.work);
  if (recorded) throw upperInUse(layout, `the overlay at ${recorded.section.target}`, recorded.section.target);
  const elsewhere = namespaceUsing(layout);
  if (elsewhere) throw upperInUse(layout, `an overlay in the mount namespace of process ${elsewhere.pid} (a container on it still runs)`);
}

function upperInUse(layout: OverlayLayout, user: string, target?: string): UsageError {
  return new UsageError(`upper dir ${layout.upper} is in use by ${user}`, { hint: target ? `ovl-mount --unmount ${target} first` : 'stop that container first' });
}
