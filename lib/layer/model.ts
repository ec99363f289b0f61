/** What img-unpack makes of an image: a flat tree, or one dir per layer, and what it could not hold. */
import type { ImageConfig } from '../image/model.js';

export interface SkippedEntry {
  path: string;
  reason: string;
}

export interface UnpackedRootfs {
  mode: 'flat' | 'layers';
  /** mode flat: the root filesystem. */
  path?: string;
  /** mode layers: one directory per layer, lowest first, whiteouts in overlayfs form. */
  layers?: string[];
  /** mode layers, rootless: opaque dirs carry user.overlay.opaque (mount with userxattr). */
  userxattr?: boolean;
  config?: ImageConfig;
  /** What the tree could not hold (rootless: devices, privileged xattrs). */
  skipped?: SkippedEntry[];
  [extra: string]: unknown;
}
