/**
 * Paths inside a root filesystem, resolved as if chrooted into it (like cyphar's
 * filepath-securejoin, which umoci and runc use): a symlink met in a component is followed,
 * and an absolute or `..`-climbing target is taken relative to the root, never the host's.
 * What comes back is a path relative to the root with no symlink in any component, so
 * joining it to the root cannot leave the root.
 */
import { lstatSync, readlinkSync, type Stats } from 'node:fs';
import { posix } from 'node:path';
import { UnsafeLayerError } from './errors.js';

/** What normalize would change in a relative name: empty, `.` or `..` components (a trailing slash aside). */
const CLEANABLE = /(^|\/)\.\.?(\/|$)|\/\//;

/** Linux's own limit on symlinks followed in one lookup (ELOOP). */
export const MAX_SYMLINKS = 40;

/**
 * A tar entry's name as a path relative to the root: `./a/b/` → `a/b`, `/etc` → `etc`,
 * `../../etc` → `etc` (lexically clamped at the root, as runc's CleanPath does), the root → ''.
 */
export function cleanEntryName(name: string): string {
  // Most names are already clean but for a leading "./" and a trailing "/": no normalize for them.
  const plain = name.startsWith('./') ? name.slice(2) : name;
  if (plain !== '' && !plain.startsWith('/') && !CLEANABLE.test(plain)) return plain.endsWith('/') ? plain.slice(0, -1) : plain;
  const cleaned = posix.normalize(`/${name}`);
  return cleaned === '/' ? '' : cleaned.replace(/\/+$/, '').slice(1);
}

/** True when a name only reaches where it points by being clamped: absolute, or climbing with `..`. */
export function climbsOutOfRoot(name: string): boolean {
  if (name.startsWith('/')) return true;
  let depth = 0;
  for (const part of name.split('/')) {
    if (part === '..') depth--;
    else if (part !== '' && part !== '.') depth++;
    if (depth < 0) return true;
  }
  return false;
}

export function joinRel(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}

export function parentOf(rel: string): string {
  const slash = rel.lastIndexOf('/');
  return slash < 0 ? '' : rel.slice(0, slash);
}

export function baseOf(rel: string): string {
  return rel.slice(rel.lastIndexOf('/') + 1);
}

/** A cached resolution, and every path whose lookup it rests on (each prefix of each path it looked at). */
interface Resolution {
  resolved: string;
  lookedAt: string[];
}

/**
 * Resolves paths in one root, caching each result for as long as it is true, by construction:
 * a resolution depends only on what lstat says of the paths its walk looked at, and the walk
 * looks at a path only after each of its prefixes (those it records too). A change to the
 * tree at a path P can only alter what lstat says of P and of paths below P, so `changed(P)`,
 * which forgets every resolution that looked at P, forgets every resolution the change can
 * alter, whatever kind of change it was (a file, a directory, a symlink, a hardlink to a
 * symlink, a device, a removal). The layer applier calls it for every entry it creates or
 * removes (lib/layer/tree.ts is its only way to change the tree), so no list of "changes that
 * matter" has to be right.
 */
export class RootResolver {
  private readonly cache = new Map<string, Resolution>();
  /** Looked-at path → the unresolved paths whose cached resolution rests on it. */
  private readonly dependents = new Map<string, Set<string>>();

  /**
   * `lowers` (top first): the directories of the layers below when `root` holds one layer of
   * an overlay stack; a path this layer lacks is looked up in them, as the merged tree shows
   * it (a 0/0 character device is a whiteout that hides the layers below). Lowers never change
   * while the root is written.
   */
  constructor(readonly root: string, readonly lowers: string[] = []) {}

  /**
   * The layer directory (root or a lower) that provides `rel` in the merged view, and its
   * stats. Only a missing path (ENOENT, ENOTDIR) is absent; any other error (EACCES) is
   * thrown, never taken for "missing".
   */
  lookup(rel: string): { dir: string; stats: Stats } | undefined {
    for (const dir of [this.root, ...this.lowers]) {
      const stats = lstatOrMissing(rel === '' ? dir : `${dir}/${rel}`);
      if (!stats) continue;
      if (stats.isCharacterDevice() && stats.rdev === 0) return undefined;
      return { dir, stats };
    }
    return undefined;
  }

  hostPath(rel: string): string {
    return rel === '' ? this.root : `${this.root}/${rel}`;
  }

  /** The tree changed at `rel` (resolved: created, removed or replaced there): forget what rested on it. */
  changed(rel: string): void {
    const keys = this.dependents.get(rel);
    if (!keys) return;
    for (const key of [...keys]) this.forget(key);
  }

  /**
   * `unsafe` (relative to the root) with every symlink in it followed inside the root. Parts
   * that do not exist are kept as named. `what` names the path's owner in the ELOOP error
   * (`layer entry "lib/x"`, `/etc/passwd`).
   */
  resolve(unsafe: string, what: string): string {
    const cached = this.cache.get(unsafe);
    if (cached !== undefined) return cached.resolved;
    const resolution = this.walk(unsafe, what);
    this.cache.set(unsafe, resolution);
    for (const path of resolution.lookedAt) {
      let keys = this.dependents.get(path);
      if (!keys) this.dependents.set(path, (keys = new Set()));
      keys.add(unsafe);
    }
    return resolution.resolved;
  }

  private forget(key: string): void {
    const resolution = this.cache.get(key);
    this.cache.delete(key);
    for (const path of resolution?.lookedAt ?? []) {
      const keys = this.dependents.get(path);
      keys?.delete(key);
      if (keys?.size === 0) this.dependents.delete(path);
    }
  }

  private walk(unsafe: string, what: string): Resolution {
    let pending = splitPath(unsafe);
    const done: string[] = [];
    const lookedAt: string[] = [];
    let links = 0;
    let missing = false;
    while (pending.length > 0) {
      const part = pending.shift() as string;
      if (part === '..') {
        done.pop();
        // What is left was looked up already (or is the root): look up what follows afresh.
        missing = false;
        continue;
      }
      done.push(part);
      const path = done.join('/');
      // Recorded even below a missing component: what is created there later must reach us.
      lookedAt.push(path);
      // Below a missing component nothing exists, so nothing can be a symlink.
      if (missing) continue;
      const found = this.lookup(path);
      if (!found) {
        missing = true;
        continue;
      }
      if (!found.stats.isSymbolicLink()) continue;
      if (++links > MAX_SYMLINKS) {
        throw new UnsafeLayerError(`${what}: too many levels of symbolic links resolving "${unsafe}" (a symlink loop)`);
      }
      const target = readlinkSync(`${found.dir}/${path}`);
      done.pop();
      if (target.startsWith('/')) done.length = 0;
      pending = [...splitPath(target), ...pending];
    }
    return { resolved: done.join('/'), lookedAt };
  }
}

/** lstat, or undefined when nothing is there (ENOENT, ENOTDIR); other errors are thrown. */
export function lstatOrMissing(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
}

function splitPath(path: string): string[] {
  return path.split('/').filter((part) => part !== '' && part !== '.');
}

/**
 * The host path of `path` as the container sees it (symlinks followed inside `root`), or
 * undefined when it does not exist there. For one-off lookups: passwd and group files, mount points.
 */
export function resolveInRoot(root: string, path: string): string | undefined {
  const resolver = new RootResolver(root);
  const rel = resolver.resolve(cleanEntryName(path), posix.join('/', path));
  return resolver.lookup(rel) ? resolver.hostPath(rel) : undefined;
}
