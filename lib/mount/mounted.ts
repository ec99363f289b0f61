/**
 * Is a document's overlay still mounted? After a reboot or an unmount the `mount` section of a
 * saved document names a bare directory: a container started there would run on (and write
 * into) the empty mount point. ns-enter and oci-spec check before they take the root from it.
 * Synchronous and small: ns-enter loads it on its start-up path.
 */
import type { OverlayMount } from './model.js';
import { mountAt, namespaceUsing, optionsMatch, overlayDriverOf } from './mountinfo.js';
import { HostError } from '../core/errors.js';

const AGAIN = 'mount it again: pipe the img-unpack document into ovl-mount (with --name for the same container)';

/** Throws a one-line HostError unless the section's overlay is mounted at its target with its lower and upper dirs. */
export function requireMountedOverlay(mount: OverlayMount): void {
  // Rootless: the runtime mounts it in the container's namespaces, once: not while another run has it mounted.
  if (mount.mountedIn === 'container') return refuseSecondRootlessMount(mount);
  const entry = mountAt(mount.target);
  if (!entry) throw new HostError(`${mount.target}: the document's overlay is not mounted any more (a reboot or an unmount since ovl-mount ran)`, { hint: AGAIN });
  const driver = overlayDriverOf(entry);
  if (driver !== mount.driver) throw new HostError(`${mount.target}: a ${entry.fsType} mount is there, not the document's ${mount.driver}`, { hint: AGAIN });
  const same = mount.options !== undefined ? optionsMatch(mount.options, entry) : entry.options.upperdir === mount.upper;
  if (driver === 'overlay' && !same) throw new HostError(`${mount.target}: the overlay mounted there has other lower or upper dirs than the document's`, { hint: AGAIN });
}

/** Two overlays on one upper dir are undefined behaviour (the kernel warns): a second run of a rootless container is refused. */
function refuseSecondRootlessMount(mount: OverlayMount): void {
  const running = namespaceUsing(mount);
  if (running) throw new HostError(`${mount.target}: the container's upper dir ${mount.upper} is mounted already, by the run of process ${running.pid}`, { hint: 'one run at a time on a rootless container: wait for it, or mount a new container with ovl-mount' });
}
