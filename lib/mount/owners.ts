/**
 * Rootless: the image's owners given to img-unpack's trees before a container runs on them.
 * img-unpack's rootless mode records each file's owner in an xattr; chowned from inside the
 * user namespace the files land on the subordinate ids, so `ls -ln` in the container shows the
 * image's. Only img-unpack's trees get that: a dir the user names (--lower) is mounted as it
 * is, since the chown would give its files, even ones the user does not own, the recorded
 * owners or root's.
 */
import { resolve } from 'node:path';
import { realPathOrResolved } from '../core/paths.js';
import type { OciLayout, StoreArea } from '../image/store/oci-layout.js';
import { applyRecordedOwnership, checkUserNamespaces, rootlessMappings, type UserNamespaceMap } from '../core/userns.js';

/** Whether we run unprivileged: a rootless container (a user namespace maps us to root). */
export function isRootless(): boolean {
  return (process.geteuid?.() ?? 0) !== 0;
}

/** The store's areas img-unpack unpacks into (its layer cache and its flat trees). */
const UNPACK_AREAS: StoreArea[] = ['layers', 'rootfs'];

/**
 * Of `trees`, those img-unpack made: named by the piped img-unpack document (`named`), or in
 * the store's unpack areas (the real path, so a link planted there does not count).
 */
export function unpackedTrees(trees: string[], store: OciLayout, named: string[]): string[] {
  const areas = UNPACK_AREAS.map((area) => `${realPathOrResolved(store.areaPath(area))}/`);
  const fromDocument = new Set(named.map((t) => resolve(t)));
  return trees.map((t) => resolve(t)).filter((tree) => fromDocument.has(tree) || areas.some((area) => `${realPathOrResolved(tree)}/`.startsWith(area)));
}


/**
 * Not root: the user namespace the container will run in, and the image's owners given to
 * the files of `trees` in it. Done once per tree; a tree done before costs one stat.
 */
export async function rootlessNamespace(trees: string[], store: OciLayout, warn: ((message: string) => void) | undefined, applyOwners: boolean): Promise<UserNamespaceMap> {
  checkUserNamespaces();
  const map = rootlessMappings();
  if (map.warning) warn?.(map.warning);
  if (applyOwners) await giveRecordedOwners(trees, map, store, warn);
  return map;
}

export async function giveRecordedOwners(trees: string[], map: UserNamespaceMap, store: OciLayout, warn: ((message: string) => void) | undefined): Promise<void> {
  const result = await applyRecordedOwnership(trees.map((t) => resolve(t)), map, ownershipMarkers(store));
  if (result.unmapped.length > 0) warn?.(`owners ${result.unmapped.join(', ')} are outside your subordinate id range: those files show as root's`);
}

/** Where applyRecordedOwnership notes the trees it has done. */
function ownershipMarkers(store: OciLayout): string {
  return store.areaPath('owners');
}
