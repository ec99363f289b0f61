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

/** Linux's own limit on symlinks followed in one lookup (ELOOP). */
export const MAX_SYMLINKS = 40;

/**
 * A tar entry's name as a path relative to the root: `./a/b/` → `a/b`, `/etc` → `etc`,
 * `../../etc` → `etc` (lexically clamped at the root, as runc's CleanPath does), the root → ''.
 */
export function cleanEntryName(name: string): string {
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

/**
 * Resolves paths in one root. Results are cached per unresolved path until `invalidate()`,
 * which the layer applier calls whenever it removes something or creates a symlink (the only
 * changes that can alter how an existing path resolves).
 */
export class RootResolver {
  private cache = new Map<string, string>();

  /**
   * `lowers` (top first): the directories of the layers below when `root` holds one layer of
   * an overlay stack; a path this layer lacks is looked up in them, as the merged tree shows
   * it (a 0/0 character device is a whiteout that hides the layers below).
   */
  constructor(readonly root: string, readonly lowers: string[] = []) {}

  /** The layer directory (root or a lower) that provides `rel` in the merged view, and its stats. */
  lookup(rel: string): { dir: string; stats: Stats } | undefined {
    for (const dir of [this.root, ...this.lowers]) {
      let stats: Stats;
      try {
        stats = lstatSync(rel === '' ? dir : `${dir}/${rel}`);
      } catch {
        continue;
      }
      if (stats.isCharacterDevice() && stats.rdev === 0) return undefined;
      return { dir, stats };
    }
    return undefined;
  }

  hostPath(rel: string): string {
    return rel === '' ? this.root : `${this.root}/${rel}`;
  }

  invalidate(): void {
    this.cache.clear();
  }

  /**
   * `unsafe` (relative to the root) with every symlink in it followed inside the root. Parts
   * that do not exist are kept as named. `what` names the path's owner in the ELOOP error
   * (`layer entry "lib/x"`, `/etc/passwd`).
   */
  resolve(unsafe: string, what: string): string {
    const cached = this.cache.get(unsafe);
    if (cached !== undefined) return cached;
    const resolved = this.walk(unsafe, what);
    this.cache.set(unsafe, resolved);
    return resolved;
  }

  private walk(unsafe: string, what: string): string {
    let pending = splitPath(unsafe);
    const done: string[] = [];
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
      // Below a missing component nothing exists, so nothing can be a symlink.
      if (missing) continue;
      const found = this.lookup(done.join('/'));
      if (!found) {
        missing = true;
        continue;
      }
      if (!found.stats.isSymbolicLink()) continue;
      if (++links > MAX_SYMLINKS) {
        throw new UnsafeLayerError(`${what}: too many levels of symbolic links resolving "${unsafe}" (a symlink loop)`);
      }
      const target = readlinkSync(`${found.dir}/${done.join('/')}`);
      done.pop();
      if (target.startsWith('/')) done.length = 0;
      pending = [...splitPath(target), ...pending];
    }
    return done.join('/');
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
