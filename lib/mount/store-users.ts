/**
 * What containers and mounts hold in the store, for `img-store gc` (image/store/gc.ts): the
 * gc runs under the mount lock, so no ovl-mount checks or mounts meanwhile. Pinned: each
 * container's image and lower dirs (containers/NAME/container.json), each recorded mount's dirs
 * (overlay/…/mount.json), and whatever any mount table, in any mount namespace we can read,
 * shows from the store: an overlay's lowerdir/upperdir, or a bind mount of a tree (a container
 * running on a cached tree). Collected: dead container dirs, which have no record (an ovl-mount
 * killed before it wrote one, a removal cut short) and nothing mounted on them. A container
 * with a record is the user's (its upper dir holds changes): it stays, as podman keeps
 * containers through an image prune.
 */
import { join, relative, sep } from 'node:path';
import { listDir, realPathOrResolved } from '../core/paths.js';
import type { OciLayout } from '../image/store/oci-layout.js';
import type { StorePins, StoreUser } from '../image/store/gc.js';
import { overlayStateRoot, removeContainerDir, storeContainers } from './container.js';
import { withMountLock } from './lock.js';
import { lowerNamesOf, otherNamespaceMounts, readMountInfo, type MountInfoEntry } from './mountinfo.js';
import { readMountRecord } from './record.js';

export function containersAndMounts(layout: OciLayout): StoreUser {
  return {
    hold: (fn) => withMountLock(overlayStateRoot(layout), fn),
    pins: async () => storePins(layout, allMountTables()),
    collect: async () => collectDeadContainers(layout, allMountTables()),
  };
}

function allMountTables(): MountInfoEntry[][] {
  return [readMountInfo(), ...otherNamespaceMounts().map((ns) => ns.entries)];
}

function storePins(layout: OciLayout, tables: MountInfoEntry[][]): StorePins {
  const pins: StorePins = { manifests: [], paths: [] };
  for (const { record } of storeContainers(layout)) {
    if (record?.image) pins.manifests.push(record.image);
    pins.paths.push(...(record?.lower ?? []));
  }
  for (const name of listDir(overlayStateRoot(layout))) {
    const section = readMountRecord(join(overlayStateRoot(layout), name))?.section;
    if (section) pins.paths.push(...section.lower, ...(section.upper ? [section.upper] : []));
  }
  for (const entry of tables.flat()) pins.paths.push(...overlayDirs(entry));
  pins.paths.push(...boundFrom(layout, tables));
  return { manifests: pins.manifests, paths: pins.paths.map(realPathOrResolved) };
}

/** An overlay's dirs, as absolute paths (ovl-mount's relative short names are in its mount records). */
function overlayDirs(entry: MountInfoEntry): string[] {
  const dirs = [...lowerNamesOf(entry.options.lowerdir ?? ''), entry.options.upperdir ?? ''];
  return dirs.filter((dir) => dir.startsWith('/'));
}

/**
 * Paths of the store that a mount shows elsewhere (a bind mount's root field: the path inside
 * the store's file system), translated to the store's path here.
 */
function boundFrom(layout: OciLayout, tables: MountInfoEntry[][]): string[] {
  const store = realPathOrResolved(layout.root);
  const own = tables[0] ?? [];
  const home = own.filter((m) => store === m.mountPoint || store.startsWith(m.mountPoint === '/' ? '/' : `${m.mountPoint}/`)).pop();
  if (!home) return [];
  const inFileSystem = join(home.root, relative(home.mountPoint, store));
  const found: string[] = [];
  for (const entry of tables.flat()) {
    if (entry.device !== home.device) continue;
    const rel = relative(inFileSystem, entry.root);
    if (rel !== '' && !rel.startsWith('..') && !rel.startsWith(sep)) found.push(join(store, rel));
  }
  return found;
}

async function collectDeadContainers(layout: OciLayout, tables: MountInfoEntry[][]): Promise<string[]> {
  const removed: string[] = [];
  for (const { dir, record } of storeContainers(layout)) {
    if (record || mountedOn(realPathOrResolved(dir), tables)) continue;
    await removeContainerDir(dir);
    removed.push(dir);
  }
  return removed;
}

/** Whether any mount table has a mount at or under `dir`, or an overlay whose dirs are there. */
function mountedOn(dir: string, tables: MountInfoEntry[][]): boolean {
  const inside = (path: string) => path === dir || path.startsWith(`${dir}/`);
  return tables.flat().some((entry) => inside(entry.mountPoint) || overlayDirs(entry).some(inside) || inside(entry.options.workdir ?? ''));
}
