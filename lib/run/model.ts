/** A runtime bundle as oci-spec wrote it. */
import type { StoredImage } from '../image/model.js';
import type { UnpackedRootfs } from '../layer/model.js';
import type { OverlayMount } from '../mount/model.js';

export interface Bundle {
  /** The bundle directory (runc run -b PATH). */
  path: string;
  /** PATH/config.json, validated before it was written. */
  config: string;
  /** The root filesystem on the host that root.path names. */
  root: string;
  /** The config maps the caller to root in a user namespace (runc spec --rootless). */
  rootless: boolean;
  [extra: string]: unknown;
}

/** What the earlier steps made, which a container is built from: the pipe document's sections, read as the model. */
export interface EarlierSteps {
  image?: StoredImage;
  rootfs?: UnpackedRootfs;
  mount?: OverlayMount;
}
