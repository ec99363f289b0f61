/**
 * The store's cached trees for `img-store gc` (image/store/gc.ts): `layers/<diff_id>` (one dir
 * per layer, `-userxattr` rootless) and `rootfs/<manifest>` (flat, `-rootless`), each with its
 * fingerprint and skipped-entries files beside it. A tree stays while its layer or image is
 * live, or while something holds a path in it (a container's lower dirs, a mount); else it
 * goes, with its side files and its rootless owners marker (a new tree may get its inode).
 * Temp trees of unpacks in progress are never touched; those of dead unpacks are swept
 * (temp-trees.ts). Unpacks record their temp trees, so there is nothing to hold off.
 */
import { rmSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { listDir, realPathOrResolved } from '../core/paths.js';
import { ownershipMarker, removeRangeOwnedTree } from '../core/userns.js';
import type { OciLayout, StoreArea } from '../image/store/oci-layout.js';
import type { LiveSet, StoreUser } from '../image/store/gc.js';
import { sweepTempTrees } from './temp-trees.js';
import { removeTree } from './tree.js';

const TREE_NAME = /^([a-f0-9]{64})(-userxattr|-rootless)?$/;
const SIDE_FILE = /^([a-f0-9]{64}(?:-userxattr|-rootless)?)\.(?:fingerprint|skipped\.json)$/;

export function cachedTrees(layout: OciLayout): StoreUser {
  return {
    hold: (fn) => fn(),
    pins: async () => ({ manifests: [], paths: [] }),
    collect: async (live) => [...(await collectArea(layout, 'layers', live)), ...(await collectArea(layout, 'rootfs', live))],
  };
}

async function collectArea(layout: OciLayout, area: StoreArea, live: LiveSet): Promise<string[]> {
  const dir = realPathOrResolved(layout.areaPath(area));
  const removed = sweepTempTrees(dir);
  const keep = area === 'layers' ? live.diffIds : live.manifests;
  const names = listDir(dir);
  for (const name of names) {
    const tree = join(dir, name);
    const hex = TREE_NAME.exec(name)?.[1];
    if (hex !== undefined && !keep.has(`sha256:${hex}`) && !held(tree, live.paths)) {
      await removeCachedTree(tree);
      removeSideFiles(layout, tree);
      removed.push(tree);
    }
    // Side files of a tree that is gone (removed by hand, or a removal cut short).
    const owner = SIDE_FILE.exec(name)?.[1];
    if (owner !== undefined && !names.includes(owner)) rmSync(tree, { force: true });
  }
  return removed;
}

function held(tree: string, paths: string[]): boolean {
  return paths.some((path) => path === tree || path.startsWith(`${tree}/`));
}

/** Rootless, a tree whose files a container gave to the subordinate ids is removed from inside a user namespace. */
async function removeCachedTree(tree: string): Promise<void> {
  const rootless = process.getuid?.() !== 0;
  try {
    removeTree(tree, rootless);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (!rootless || (code !== 'EACCES' && code !== 'EPERM')) throw err;
    await removeRangeOwnedTree(tree);
  }
}

function removeSideFiles(layout: OciLayout, tree: string): void {
  const markers = layout.areaPath('owners');
  // The marker is keyed by the path the tree was mounted by: the store's path as given, or its real path.
  const given = join(layout.areaPath(basename(dirname(tree)) as StoreArea), basename(tree));
  for (const file of [`${tree}.fingerprint`, `${tree}.skipped.json`, ownershipMarker(markers, tree), ownershipMarker(markers, resolve(given))]) rmSync(file, { force: true });
}
