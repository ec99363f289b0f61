/** The mount model: an overlay's dirs, the `mount` section that describes it, and how it failed. */
import { HostError } from '../core/errors.js';
import type { UserNamespaceMap } from '../core/userns.js';

export type OverlayDriver = 'overlay' | 'fuse-overlayfs';
export type DriverChoice = 'auto' | 'kernel' | 'fuse';

/** An overlay as ovl-mount mounted it (or will mount it inside a container). */
export interface OverlayMount {
  target: string;
  /** Top first, as in lowerdir=. */
  lower: string[];
  upper?: string;
  work?: string;
  driver: OverlayDriver;
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

export interface OverlayRequest {
  /** Lower dirs, top first (as in lowerdir=). */
  lower: string[];
  /** Absent for a read-only merge. */
  upper?: string;
  work?: string;
  target: string;
  driver?: DriverChoice;
  /** Where short names for long lower paths and the mount records are kept (see `stateDirFor`). */
  stateRoot: string;
  /**
   * Not root: the user namespace the container will run in. The kernel's overlay can then only
   * be mounted inside it (with userxattr), so it is tried there and left for the runtime to
   * mount (`mountedIn: container`); fuse-overlayfs mounts on the host when /dev/fuse is ours.
   */
  userNamespace?: UserNamespaceMap;
}

/** One overlay's dirs, resolved to absolute paths, and its state dir: what every way of mounting takes. */
export interface OverlayLayout {
  lower: string[];
  upper?: string;
  work?: string;
  target: string;
  /** This target's scratch dir under the state root (short-name links, the mount record). */
  stateDir: string;
}

/** The `mount` section for a layout mounted by `driver` with `options`: readOnly and mountedIn always said. */
export function sectionFor(driver: OverlayDriver, layout: OverlayLayout, options: string): OverlayMount {
  const result: OverlayMount = { target: layout.target, lower: layout.lower, driver, options, readOnly: layout.upper === undefined, mountedIn: 'host' };
  if (layout.upper !== undefined) result.upper = layout.upper;
  if (layout.work !== undefined) result.work = layout.work;
  return result;
}

/** A mount(8) or fuse-overlayfs failure, with the tool's own one-line reason. */
export class OverlayMountError extends HostError {}
