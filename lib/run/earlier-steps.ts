/** Where a container's root and image config come from in a piped document (img-unpack's or ovl-mount's section). */
import { existsSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { ImageConfig } from '../image/model.js';
import type { EarlierSteps } from './model.js';
import { UsageError } from '../core/errors.js';
import { resolveInRoot } from '../core/root-resolver.js';
import type { RuntimeMount } from './runtime-spec.js';

/** A container's root on the host, and what the config must know of it. */
export interface ContainerRoot {
  rootfs: string;
  readOnly: boolean;
  image?: ImageConfig;
  /** A rootless overlay the runtime mounts at / in the container's namespaces. */
  overlay?: RuntimeMount;
  /** Where /etc/passwd is read when the root is not mounted on the host. */
  lookupRoot?: string;
  /** Why the root is read-only though no flag asked for it: one line for the user. */
  notice?: string;
}

/**
 * A flat tree img-unpack cached in a store (STORE/rootfs/NAME, beside the store's oci-layout
 * file): the image's own copy, which every later run of the image reuses.
 */
export function isStoreTree(path: string): boolean {
  const parent = dirname(resolve(path));
  return basename(parent) === 'rootfs' && existsSync(join(dirname(parent), 'oci-layout'));
}

/**
 * A directory as a container's root: writable, unless it is the store's cached tree of an
 * image, which a container gets read-only (as with --read-only) so it stays the image's.
 */
export function directoryRoot(path: string): ContainerRoot {
  if (!isStoreTree(path)) return { rootfs: path, readOnly: false };
  return { rootfs: path, readOnly: true, notice: `${path} is the store's copy of the image, shared by all its runs: the container gets it read-only (for a writable root: img-unpack --layers | ovl-mount, or img-unpack --dest DIR)` };
}

/**
 * Where the container's root comes from in a piped document: ovl-mount's merged dir, else
 * img-unpack's flat rootfs. An overlay ovl-mount could not leave mounted (rootless,
 * `mountedIn: container`) comes back as `overlay`: a mount at / for the runtime to make in
 * the container's user and mount namespaces (runc does it as it does any config mount).
 */
export function rootFromEarlierSteps(doc: EarlierSteps): ContainerRoot {
  const image = doc.rootfs?.config ?? doc.image?.config;
  if (doc.mount) {
    const readOnly = doc.mount.readOnly === true;
    if (doc.mount.mountedIn === 'container') {
      const options = (doc.mount.options ?? '').split(/(?<!\\),/).filter((o) => o !== '');
      // Nothing is mounted on the host: users and groups are read from the topmost dir that has /etc/passwd.
      const dirs = [...(doc.mount.upper ? [doc.mount.upper] : []), ...doc.mount.lower];
      const lookupRoot = dirs.find((d) => resolveInRoot(d, '/etc/passwd') !== undefined);
      return { rootfs: doc.mount.target, readOnly, image, overlay: { destination: '/', type: 'overlay', source: 'overlay', options }, lookupRoot };
    }
    return { rootfs: doc.mount.target, readOnly, image };
  }
  if (doc.rootfs) {
    if (doc.rootfs.mode !== 'flat' || !doc.rootfs.path) {
      throw new UsageError('rootfs: one directory per layer is not a root filesystem', { hint: 'pipe it through ovl-mount first, or use img-unpack without --layers' });
    }
    return { ...directoryRoot(doc.rootfs.path), image };
  }
  throw new UsageError('the piped document has no rootfs or mount section', { hint: 'pipe img-unpack or ovl-mount into oci-spec' });
}
