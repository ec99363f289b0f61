/**
 * The mount points a runtime leaves in a container's upper dir for its own binds: ns-enter and
 * podman bind /etc/hosts, /etc/hostname, /etc/resolv.conf and /run/.containerenv from the
 * container's dir, and runc makes /proc, /sys and /dev for its mounts; where the image has
 * none, the runtime creates an empty file (or dir) in the root first, and the overlay puts it
 * in the upper dir. Such a placeholder is the runtime's, not a change the container made, so a
 * commit leaves it out, as buildah and podman commit do (buildah removes the mount targets it
 * created when they are still empty; docker keeps them in its "-init" layer, under the
 * container's). Only an empty regular file (an empty dir) at one of these paths, which the
 * image does not have, is left out, and with it a parent dir the image does not have either
 * that holds nothing else: an /etc/hosts with content, or one the image had, is a change.
 */
import { lstatSync, readdirSync, type Stats } from 'node:fs';
import { join } from 'node:path';

const FILE_TARGETS = ['etc/hosts', 'etc/hostname', 'etc/resolv.conf', 'run/.containerenv'];
const DIR_TARGETS = ['proc', 'sys', 'dev'];

/**
 * The upper dir's paths (relative, as the layer names them) that are placeholders; `lower` is
 * the overlay's lower dirs, top first. Without them nothing can be told apart from a change:
 * nothing is left out.
 */
export function mountPlaceholders(upper: string, lower: string[] | undefined): Set<string> {
  const left = new Set<string>();
  if (!lower || lower.length === 0) return left;
  for (const rel of [...FILE_TARGETS, ...DIR_TARGETS]) {
    const info = stat(join(upper, rel));
    const empty = FILE_TARGETS.includes(rel) ? info?.isFile() === true && info.size === 0 : info?.isDirectory() === true && readdirSync(join(upper, rel)).length === 0;
    if (!empty || inImage(lower, rel)) continue;
    left.add(rel);
    // Its parents, as long as they are made for it alone (not in the image, nothing else in them).
    for (let dir = parentOf(rel); dir !== '' && !inImage(lower, dir); dir = parentOf(dir)) {
      if (!readdirSync(join(upper, dir)).every((name) => left.has(join(dir, name)))) break;
      left.add(dir);
    }
  }
  return left;
}

/**
 * Whether the lower dirs (overlay form: a 0/0 character device is a whiteout) show `rel`. A
 * lower whose own copy of a parent is a whiteout or not a directory hides the lowers under it.
 * (An opaque parent is not looked for: it can only make a placeholder be kept, never a file dropped.)
 */
function inImage(lower: string[], rel: string): boolean {
  for (const dir of lower) {
    const info = stat(join(dir, rel));
    if (info) return !isWhiteout(info);
    for (let parent = parentOf(rel); parent !== ''; parent = parentOf(parent)) {
      const above = stat(join(dir, parent));
      if (above && (isWhiteout(above) || !above.isDirectory())) return false;
    }
  }
  return false;
}

function isWhiteout(info: Stats): boolean {
  return info.isCharacterDevice() && info.rdev === 0;
}

function stat(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}

function parentOf(rel: string): string {
  const at = rel.lastIndexOf('/');
  return at < 0 ? '' : rel.slice(0, at);
}
