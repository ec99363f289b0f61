/**
 * The mounts made before bwrap starts, in a private mount namespace of their own (or in the
 * one util-linux unshare made with the user namespace, rootless): a rootless root overlay, and
 * the staged mounts bwrap cannot make with their flags (noexec), which it then binds in (a bound
 * mount keeps its flags). native/ns-enter-prelude.c makes them, then execs bwrap.
 */
import { UnsupportedError } from '../core/errors.js';
import { nativeProgram } from './privileges.js';
import type { RuntimeMount } from './runtime-spec.js';

/** One mount the prelude makes before bwrap starts: what it is (for the error), and the mount. */
export interface PreludeStep {
  what: string;
  /** tmpfs or overlay: mount(2) of that type; bind-noexec: `source` bound at `target`, then made noexec. */
  kind: 'tmpfs' | 'overlay' | 'bind-noexec';
  source: string;
  target: string;
  /** mount(8)'s -o (flags and data). */
  options: string[];
  /** Where the overlay's relative names are relative to. */
  dir?: string;
}

/** Registers a staged mount: `step` gets the mount point (a subdir of the staging dir) and says how to mount there. */
export type Stage = (step: (at: string) => PreludeStep) => string;

/**
 * A rootless root overlay (ovl-mount's `mountedIn: container`): mounted at root.path inside the
 * new user and mount namespaces, from the dir its relative names are relative to, then bwrap
 * binds it as /. It goes when the namespace goes, so nothing is left mounted on the host.
 */
export function overlayStep(mount: RuntimeMount, root: string, dir: string | undefined): PreludeStep {
  const options = mount.options ?? [];
  const unknown = options.find((o) => !/^(lowerdir|upperdir|workdir)=/.test(o) && !['ro', 'rw', 'userxattr', 'nosuid', 'nodev', 'noexec', 'relatime', 'noatime'].includes(o) && !/^(redirect_dir|index|xino|metacopy|volatile|uuid)(=|$)/.test(o));
  if (unknown !== undefined) throw new UnsupportedError(`mounts[0].options: ${unknown} is not an overlay option ns-enter passes on`);
  if (!options.some((o) => o.startsWith('lowerdir='))) throw new UnsupportedError('mounts[0].options: an overlay at / needs lowerdir=');
  return { what: "the container's overlay", kind: 'overlay', source: 'overlay', target: root, options, dir: dir ?? '/' };
}

/**
 * The prelude's command line, before bwrap's: the steps' mounts, in a mount namespace of its own
 * unless `ownNamespace` is false (util-linux unshare made one with the user namespace). A
 * failure is reported on the info fd as one line and ends the run (see supervise.ts).
 */
export function mountPrelude(steps: PreludeStep[], ownNamespace: boolean): string[] {
  const mounts = steps.flatMap((step) => ['--mount', step.what, step.kind, step.source, step.target, step.options.join(','), step.dir ?? '']);
  return [nativeProgram('ns-enter-prelude'), ...(ownNamespace ? ['--unshare-mount'] : []), ...mounts, '--'];
}
