/**
 * The containers that use a store's images, for `img-store rm` (podman rmi refuses to remove an
 * image a container uses, unless --force): ovl-mount's containers in the store (their record
 * names the image's manifest digest), and detached containers (ns-enter -d, under the default
 * state dir) whose root is in this store and whose record names the image by one of its names.
 */
import { realPathOrResolved } from '../core/paths.js';
import type { OciLayout } from '../image/store/oci-layout.js';
import { REF_NAME_ANNOTATION } from '../image/model.js';
import { storeContainers } from '../mount/container.js';
import { runStateDir } from '../run/run-record.js';
import { listRecords } from './state.js';

export interface ImageUser {
  /** The image's manifest digest. */
  digest: string;
  /** How a message names the container: `container NAME (ovl-mount)`, `detached container ID`. */
  container: string;
}

/** Every container that uses an image of the store, by the image's manifest digest. */
export async function imageUsers(layout: OciLayout, stateRoot = runStateDir()): Promise<ImageUser[]> {
  const users: ImageUser[] = [];
  for (const { name, dir, record } of storeContainers(layout)) {
    if (record?.image) users.push({ digest: record.image, container: `container ${name} (ovl-mount, ${dir})` });
  }
  const byName = new Map((await layout.readIndex()).manifests.map((m) => [m.annotations?.[REF_NAME_ANNOTATION], m.digest]));
  const store = `${realPathOrResolved(layout.root)}/`;
  for (const record of listRecords(stateRoot)) {
    const digest = record.image === undefined ? undefined : byName.get(record.image);
    if (digest && realPathOrResolved(record.rootfs).startsWith(store)) users.push({ digest, container: `detached container ${record.id}` });
  }
  return users;
}
