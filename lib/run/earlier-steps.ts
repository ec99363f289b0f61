/** Where a container's root and image config come from in a piped document (img-unpack's or ovl-mount's section). */
import type { ImageConfig } from '../image/model.js';
import type { EarlierSteps } from './model.js';
import { UsageError } from '../core/errors.js';
import { resolveInRoot } from '../core/root-resolver.js';
import type { RuntimeMount } from './runtime-spec.js';

/**
 * Where the container's root comes from in a piped document: ovl-mount's merged dir, else
 * img-unpack's flat rootfs. An overlay ovl-mount could not leave mounted (rootless,
 * `mountedIn: container`) comes back as `overlay`: a mount at / for the runtime to make in
 * the container's user and mount namespaces (runc does it as it does any config mount).
 */
export function rootFromEarlierSteps(doc: EarlierSteps): { rootfs: string; readOnly: boolean; image?: ImageConfig; overlay?: RuntimeMount; lookupRoot?: string } {
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
    return { rootfs: doc.rootfs.path, readOnly: false, image };
  }
  throw new UsageError('the piped document has no rootfs or mount section', { hint: 'pipe img-unpack or ovl-mount into oci-spec' });
}
