/**
 * The kernel's overlay, as root: util-linux `mount -t overlay` (node has no mount(2)), one
 * process per mount, with the kernel log's reason when mount(8) only says "wrong fs type".
 */
import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import { OverlayMountError, type OverlayLayout } from './model.js';
import { overlayOptions } from './short-names.js';
import { runProgram } from '../core/host.js';

/** Mounts the layout with the kernel's overlay; returns the option string given to mount(8). */
export async function mountKernel(layout: OverlayLayout): Promise<string> {
  const { options, cwd } = await overlayOptions(layout);
  const flags = layout.upper === undefined ? `ro,${options}` : options;
  try {
    await runProgram(['mount', '-t', 'overlay', 'overlay', '-o', flags, layout.target], { cwd });
  } catch (err) {
    throw new OverlayMountError(`mount -t overlay failed: ${await kernelReason((err as Error).message, layout.upper)}`);
  }
  return flags;
}

/** mount(8) says "wrong fs type, bad option..." for every refusal; the kernel log says why. */
async function kernelReason(message: string, upper: string | undefined): Promise<string> {
  const log = await runProgram(['dmesg', '--notime']).catch(() => '');
  const reason = log.split('\n').filter((l) => /overlayfs: /.test(l)).pop();
  if (reason) return reason.replace(/^.*overlayfs: /, 'overlayfs: ');
  if (upper !== undefined) return `${message} (the upper's filesystem may lack what overlay needs: xattrs, d_type, tmpfile)`;
  return message;
}

/** Listed in /proc/filesystems, or loadable: the module loads on first use (modprobe overlay). */
export async function kernelHasOverlay(): Promise<boolean> {
  const listed = () => /\toverlay$/m.test(readFileSync('/proc/filesystems', 'utf8'));
  if (listed()) return true;
  await runProgram(['modprobe', '-q', 'overlay']).catch(() => undefined);
  return listed();
}

export function kernelBefore(major: number, minor: number): boolean {
  const [a = 0, b = 0] = release().split('.').map((n) => parseInt(n, 10));
  return a < major || (a === major && b < minor);
}
