/**
 * The change diff of an upper dir, the way the kernel records a container's changes there: new
 * files, copied-up files, whiteouts (0/0 character devices) and opaque directories (an xattr).
 * What `ovl-mount --diff` prints, and what a commit of the container's changes will walk.
 */
import { existsSync } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { Stats } from 'node:fs';
import { requireDirectory } from './checks.js';
import { HostError } from '../core/errors.js';
import { runProgram } from '../core/host.js';

export type ChangeKind = 'added' | 'modified' | 'deleted' | 'opaque';

export interface Change {
  kind: ChangeKind;
  /** The path inside the merged tree, absolute. */
  path: string;
}

const CHANGE_LETTER: Record<ChangeKind, string> = { added: 'A', modified: 'C', deleted: 'D', opaque: 'O' };

/** `A /new`, `C /changed`, `D /removed`, `O /dir` (opaque: the lower dirs' contents are hidden), like `podman diff`. */
export function formatChange(change: Change): string {
  return `${CHANGE_LETTER[change.kind]} ${change.path}`;
}

interface DiffWalk {
  upper: string;
  lower: string[];
  opaqueDirs: Set<string>;
  changes: Change[];
}

/**
 * What a container changed: walks UPPER and classifies each entry against the lower dirs.
 * A 0/0 character device (or an old-style `.wh.NAME` file) is a deletion; a directory with
 * the opaque xattr (or `.wh..wh..opq`) hides its lower contents; a file present in a lower
 * dir was copied up (modified); anything else was added. Directories that only hold changes
 * are not reported unless their owner or mode changed.
 */
export async function diffOverlay(upper: string, lower: string[]): Promise<Change[]> {
  await requireDirectory(upper, 'upper dir');
  const walk: DiffWalk = { upper, lower, opaqueDirs: await opaqueDirectories(upper), changes: [] };
  await walkDir(walk, '', true);
  return walk.changes;
}

async function walkDir(walk: DiffWalk, relativeDir: string, lowerVisible: boolean): Promise<void> {
  for (const name of (await readdir(join(walk.upper, relativeDir))).sort()) {
    const rel = join(relativeDir, name);
    if (name === '.wh..wh..opq') continue;
    if (name.startsWith('.wh.')) {
      walk.changes.push({ kind: 'deleted', path: `/${join(relativeDir, name.slice(4))}` });
      continue;
    }
    const info = await lstat(join(walk.upper, rel));
    if (info.isCharacterDevice() && info.rdev === 0) {
      walk.changes.push({ kind: 'deleted', path: `/${rel}` });
      continue;
    }
    const below = lowerVisible ? await findInLowers(walk.lower, rel) : undefined;
    if (!info.isDirectory()) {
      walk.changes.push({ kind: below ? 'modified' : 'added', path: `/${rel}` });
      continue;
    }
    const opaque = walk.opaqueDirs.has(rel) || existsSync(join(walk.upper, rel, '.wh..wh..opq'));
    const kind = directoryChange(info, below, opaque);
    if (kind) walk.changes.push({ kind, path: `/${rel}` });
    await walkDir(walk, rel, lowerVisible && !!below && below.isDirectory() && !opaque);
  }
}

/** A directory of the upper dir: new, opaque, replacing a non-directory, or copied up with another mode or owner. */
function directoryChange(info: Stats, below: Stats | undefined, opaque: boolean): ChangeKind | undefined {
  if (opaque && below) return 'opaque';
  if (!below) return 'added';
  if (!below.isDirectory()) return 'modified';
  return below.mode !== info.mode || below.uid !== info.uid || below.gid !== info.gid ? 'modified' : undefined;
}

async function findInLowers(lower: string[], rel: string): Promise<Stats | undefined> {
  for (const dir of lower) {
    try {
      return await lstat(join(dir, rel));
    } catch {
      // not in this layer
    }
  }
  return undefined;
}

/**
 * Directories of UPPER marked opaque: trusted.overlay.opaque (root), user.overlay.opaque
 * (userxattr, rootless) or fuse-overlayfs's own. Node cannot read xattrs, so one getfattr
 * call lists them for the whole tree.
 */
async function opaqueDirectories(upper: string): Promise<Set<string>> {
  const output = await runProgram(['getfattr', '-R', '-h', '--absolute-names', '-d', '-m', '^(trusted|user)\\.(overlay|fuseoverlayfs)\\.opaque$', upper]).catch((err: Error) => {
    if (/ENOENT|not found/.test(err.message)) throw new HostError('getfattr is not installed (apt-get install attr)');
    throw err;
  });
  const result = new Set<string>();
  let current: string | undefined;
  for (const line of output.split('\n')) {
    if (line.startsWith('# file: ')) current = unescapeGetfattr(line.slice(8));
    else if (current !== undefined && /opaque="y"/.test(line)) result.add(relative(upper, current));
  }
  return result;
}

function unescapeGetfattr(text: string): string {
  return text.replace(/\\([0-7]{3})/g, (_m, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}
