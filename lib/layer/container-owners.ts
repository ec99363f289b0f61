/**
 * Rootless commits: the owners in the layer are the ids the container saw, not the host's. An
 * upper dir of a rootless overlay holds host ids: the caller's own id for the container's root,
 * the subordinate range (/etc/subuid, /etc/subgid) for its other users, as the user namespace
 * mapped them (podman's layout, core/userns.ts). Each is mapped back; an id the namespace did not
 * map is what the container saw for it, the overflow id 65534. Without a range only root was
 * mapped, and the image's owners are in umoci's user.rootlesscontainers xattr that a rootless
 * img-unpack wrote: those are kept (umoci repack --rootless reads them back so too). The xattr
 * itself is our bookkeeping and never reaches the layer.
 */
import type { IdMapping, UserNamespaceMap } from '../core/userns.js';
import { ROOTLESS_XATTR } from './metadata.js';

export interface Owner {
  uid: number;
  gid: number;
}

/** The owner to write for a file the host sees as `host`, with its xattrs. */
export type OwnerMapper = (host: Owner, xattrs: Map<string, Buffer> | undefined) => Owner;

const OVERFLOW_ID = 65534;

export function containerOwners(map: UserNamespaceMap): OwnerMapper {
  return (host, xattrs) => {
    const recorded = map.ranged ? undefined : xattrs?.get(ROOTLESS_XATTR);
    if (recorded) return decodeRootlessOwner(recorded);
    return { uid: toContainer(host.uid, map.uidMappings), gid: toContainer(host.gid, map.gidMappings) };
  };
}

/** Not part of the layer: the rootless unpack's record of an owner. */
export function isOwnerRecord(xattr: string): boolean {
  return xattr === ROOTLESS_XATTR;
}

function toContainer(hostId: number, mappings: IdMapping[]): number {
  const mapping = mappings.find((m) => hostId >= m.hostID && hostId < m.hostID + m.size);
  return mapping ? mapping.containerID + (hostId - mapping.hostID) : OVERFLOW_ID;
}

/** umoci's rootlesscontainers.proto `Resource { uint32 uid = 1; uint32 gid = 2; }`; 2^32-1 or absent is 0. */
export function decodeRootlessOwner(raw: Buffer): Owner {
  const ids: Record<number, number> = { 1: 0, 2: 0 };
  for (let i = 0; i < raw.length; ) {
    const key = raw[i++] as number;
    let value = 0;
    for (let shift = 1; i < raw.length; shift *= 128) {
      const byte = raw[i++] as number;
      value += (byte & 0x7f) * shift;
      if (!(byte & 0x80)) break;
    }
    if (key >> 3 in ids) ids[key >> 3] = value === 0xffffffff ? 0 : value;
  }
  return { uid: ids[1] as number, gid: ids[2] as number };
}
