/**
 * A cached tree (the store's `rootfs/<manifest>` and `layers/<diff_id>`) is reused by every
 * later img-unpack of its image, so a change to it (by hand, or by a container given it
 * writable before ns-enter stopped doing that) would reach every later run. Each tree gets a
 * fingerprint when it is made: a hash of every entry's path, type, mode, size, mtime and link
 * target. A reuse recomputes it (one lstat per entry: tens of ms for the debian image, against
 * seconds to unpack it again) and refuses a tree that differs. Owners are left out: a
 * rootless run gives the image's owners to the files later, on purpose.
 */
import { createHash, type Hash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UnsupportedError } from '../core/errors.js';

function fingerprintFile(tree: string): string {
  return `${tree}.fingerprint`;
}

/** The hash of the tree's entries, in a fixed order (names sorted within each directory). */
export function treeFingerprint(tree: string): string {
  const hash = createHash('sha256');
  walk(tree, '', hash);
  return `sha256:${hash.digest('hex')}`;
}

function walk(root: string, rel: string, hash: Hash): void {
  const path = rel === '' ? root : join(root, rel);
  const stats = lstatSync(path, { bigint: true });
  const target = stats.isSymbolicLink() ? readlinkSync(path) : '';
  hash.update(`${rel}\0${stats.mode}\0${stats.size}\0${stats.mtimeNs}\0${target}\n`);
  if (!stats.isDirectory()) return;
  for (const name of readdirSync(path).sort()) walk(root, rel === '' ? name : `${rel}/${name}`, hash);
}

/** Records the fingerprint of a tree just made. */
export function recordFingerprint(tree: string): void {
  writeFileSync(fingerprintFile(tree), `${treeFingerprint(tree)}\n`);
}

/**
 * Before a cached tree is reused: the same as when it was made, or one line saying that it
 * was changed and what to do. A tree from before fingerprints gets one now (its first use).
 */
export function checkFingerprint(tree: string, what: string): void {
  let recorded: string;
  try {
    recorded = readFileSync(fingerprintFile(tree), 'utf8').trim();
  } catch {
    recordFingerprint(tree);
    return;
  }
  if (treeFingerprint(tree) !== recorded) {
    throw new UnsupportedError(`${what} ${tree} was changed since img-unpack made it: the store's copy is no longer the image's`, {
      hint: `remove it (rm -rf ${tree} ${fingerprintFile(tree)}) and unpack again, or unpack into a tree of your own with --dest`,
    });
  }
}
