/** fuse-overlayfs: the same merge in user space, for a kernel without overlay or a user who may open /dev/fuse. */
import { accessSync, constants, statSync } from 'node:fs';
import { OverlayMountError, type OverlayLayout } from './model.js';
import { overlayOptions } from './short-names.js';
import { programPath, runProgram } from '../core/host.js';

/** Mounts the layout with fuse-overlayfs; returns the option string it was given. */
export async function mountFuse(layout: OverlayLayout): Promise<string> {
  const { options, cwd } = await overlayOptions(layout);
  const flags = layout.upper === undefined ? `ro,${options}` : options;
  await runProgram(['fuse-overlayfs', '-o', flags, layout.target], { cwd }).catch((err: Error) => {
    throw new OverlayMountError(`fuse-overlayfs failed: ${err.message}`);
  });
  return flags;
}

/** Why fuse-overlayfs cannot be used by this user, or undefined when it can. */
export function fuseUnavailable(): string | undefined {
  if (programPath('fuse-overlayfs') === undefined) return 'not installed (apt-get install fuse-overlayfs)';
  try {
    accessSync('/dev/fuse', constants.R_OK | constants.W_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return '/dev/fuse does not exist (modprobe fuse)';
    const mode = (statSync('/dev/fuse').mode & 0o777).toString(8).padStart(4, '0');
    return `/dev/fuse is mode ${mode}, not open to you (an administrator can chmod 0666 /dev/fuse, its usual mode)`;
  }
  return undefined;
}
