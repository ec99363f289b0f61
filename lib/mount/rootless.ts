/**
 * Without root. The kernel's overlay (Linux 5.11+: `userxattr`, the user.overlay.* xattrs a
 * rootless img-unpack writes) mounts only inside a user namespace that owns the mount
 * namespace, so it cannot be left mounted on the host: it is mounted once there now, in the
 * container's mappings, to prove it works (the same options, dirs and ownership the runtime
 * will use; the namespace and the mount end with the probe), and recorded as
 * `mountedIn: container` for ns-enter (or runc, from oci-spec's config) to mount as the root.
 * fuse-overlayfs is the other way (seed 000's form), mounted on the host, when the user may
 * open /dev/fuse. auto tries the kernel first: no daemon, no copy through user space.
 */
import { release } from 'node:os';
import { OverlayMountError, sectionFor, type DriverChoice, type OverlayLayout, type OverlayMount } from './model.js';
import { fuseUnavailable, mountFuse } from './fuse.js';
import { kernelBefore, kernelHasOverlay } from './kernel.js';
import { overlayOptions } from './short-names.js';
import { HostError } from '../core/errors.js';
import { checkUserNamespaces, unshareCommand, type UserNamespaceMap } from '../core/userns.js';
import { runProgram } from '../core/host.js';

export interface RootlessChoice {
  driver: DriverChoice;
  /** The user namespace the container will run in. */
  map: UserNamespaceMap;
}

export async function mountRootless(layout: OverlayLayout, choice: RootlessChoice): Promise<OverlayMount> {
  const errors: string[] = [];
  if (choice.driver !== 'fuse') {
    try {
      return await probeKernelOverlay(layout, choice.map);
    } catch (err) {
      if (!(err instanceof HostError)) throw err;
      if (choice.driver === 'kernel') throw err instanceof OverlayMountError ? new HostError(`overlay not supported without root: ${err.message}`) : err;
      errors.push(`kernel overlay in a user namespace: ${err.message}`);
    }
  }
  const fuse = fuseUnavailable();
  if (fuse) {
    errors.push(`fuse-overlayfs: ${fuse}`);
    throw new HostError(`cannot mount an overlay without root at ${layout.target}: ${errors.join('; ')}`, { hint: 'run ovl-mount as root, or use img-unpack without --layers and ns-enter on the flat rootfs' });
  }
  try {
    return sectionFor('fuse-overlayfs', layout, await mountFuse(layout));
  } catch (err) {
    if (!(err instanceof OverlayMountError)) throw err;
    errors.push(err.message);
    throw new HostError(`cannot mount an overlay without root at ${layout.target}: ${errors.join('; ')}`);
  }
}

/** Mounts the overlay once in a throwaway user and mount namespace; the section says the runtime mounts it. */
async function probeKernelOverlay(layout: OverlayLayout, map: UserNamespaceMap): Promise<OverlayMount> {
  checkUserNamespaces();
  if (!(await kernelHasOverlay())) throw new OverlayMountError('the kernel has no overlay filesystem');
  const { options, cwd } = await overlayOptions(layout);
  const flags = `${layout.upper === undefined ? 'ro,' : ''}userxattr,${options}`;
  const { argv } = unshareCommand(map.uidMappings, map.gidMappings, { mount: true });
  await runProgram([...argv, 'mount', '-t', 'overlay', 'overlay', '-o', flags, layout.target], { cwd }).catch((err: Error) => {
    throw new OverlayMountError(`mount -t overlay -o userxattr in a user namespace failed: ${err.message}${kernelBefore(5, 11) ? ` (userxattr needs Linux 5.11+, this is ${release()})` : ''}`);
  });
  const result = sectionFor('overlay', layout, flags);
  result.mountedIn = 'container';
  if (cwd !== undefined) result.optionsDir = cwd;
  return result;
}
