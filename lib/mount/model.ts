/** An overlay as ovl-mount mounted it (or will mount it inside a container). */
export interface OverlayMount {
  target: string;
  /** Top first, as in lowerdir=. */
  lower: string[];
  upper?: string;
  work?: string;
  driver: 'overlay' | 'fuse-overlayfs';
  options?: string;
  readOnly?: boolean;
  /** host (default): mounted at target; container: ns-enter mounts it inside the container's namespaces. */
  mountedIn?: 'host' | 'container';
  /** The dir the option string's relative names (short links) are relative to, when it has some. */
  optionsDir?: string;
  /** The per-container dir under the store that holds upper, work and merged. */
  container?: { id: string; dir: string };
  [extra: string]: unknown;
}
