/**
 * The mounts made before bwrap starts, in the private mount namespace util-linux unshare makes
 * around it: a rootless root overlay, and the staged mounts bwrap cannot make with their flags
 * (noexec), which it then binds in (a bound mount keeps its flags).
 */
import { UnsupportedError } from '../core/errors.js';
import { shellQuote } from '../core/shell.js';
import { FD_INFO, MOUNT_FAILED } from './bwrap-fds.js';
import type { RuntimeMount } from './runtime-spec.js';

/** One mount the prelude makes before bwrap starts: what it is (for the error) and the shell command. */
export interface PreludeStep {
  what: string;
  command: string;
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
  return { what: "the container's overlay", command: `(cd ${shellQuote(dir ?? '/')} && mount -t overlay overlay -o ${shellQuote(options.join(','))} ${shellQuote(root)})` };
}

/**
 * The shell that runs in the outer (private) mount namespace: each step's mount, then bwrap.
 * A failure is reported on the info fd as one line (mount's own reason) and ends the run.
 */
export function mountPrelude(steps: PreludeStep[]): string[] {
  const script = steps
    // "$( (" : a space, or the shell reads "$((" as arithmetic.
    .map((step) => `err=$( ${step.command} 2>&1) || { printf '${MOUNT_FAILED}%s: %s\\n' ${shellQuote(step.what)} "$err" >&${FD_INFO}; exit 125; }`)
    .join('; ');
  return ['/bin/sh', '-c', `${script}; exec "$@"`, 'sh'];
}
