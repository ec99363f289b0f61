/**
 * The tests' oracle for unpacked trees, in the spirit of mtree(8): one line per path with
 * its type, mode, owner, size, content hash, link target, device numbers, the xattrs that
 * matter (security.capability, user.rootlesscontainers, the overlay opaque marks) and mtimes,
 * so our tree and umoci's (or an overlay mount's) compare with one assert.deepEqual and a
 * readable diff.
 */
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync, type Stats } from 'node:fs';
import { exec } from './exec.js';

export interface TreeOptions {
  /** Compare mtimes of directories too (files' always). */
  dirMtimes?: boolean;
  /** Leave out the root directory's own line. */
  skipRoot?: boolean;
  /** Paths (relative, no leading slash) to leave out, with everything below them. */
  exclude?: (rel: string) => boolean;
  /** Owners as the tree's xattr records them (rootless) rather than as stat says. */
  xattrNames?: RegExp;
}

const DEFAULT_XATTRS = /^(security\.capability|user\.rootlesscontainers|trusted\.overlay\.opaque|user\.overlay\.opaque)$/;

/** `path type mode uid:gid size=… sha256=… -> target dev=… mtime=… xattr=…`, sorted by path. */
export async function describeTree(root: string, options: TreeOptions = {}): Promise<string[]> {
  const xattrs = await readXattrs(root, options.xattrNames ?? DEFAULT_XATTRS);
  const lines: string[] = [];
  const visit = (rel: string) => {
    if (rel !== '' && options.exclude?.(rel)) return;
    const path = rel === '' ? root : `${root}/${rel}`;
    const stats = lstatSync(path);
    if (!(rel === '' && options.skipRoot)) lines.push(describeEntry(rel, path, stats, xattrs.get(rel), options));
    if (stats.isDirectory()) for (const name of readdirSync(path).sort()) visit(rel === '' ? name : `${rel}/${name}`);
  };
  visit('');
  return lines;
}

function describeEntry(rel: string, path: string, stats: Stats, xattrs: Map<string, string> | undefined, options: TreeOptions): string {
  const parts = [`/${rel}`, typeOf(stats), (stats.mode & 0o7777).toString(8).padStart(4, '0'), `${stats.uid}:${stats.gid}`];
  if (stats.isFile()) parts.push(`size=${stats.size}`, `sha256=${createHash('sha256').update(readFileSync(path)).digest('hex').slice(0, 16)}`, `nlink=${stats.nlink > 1 ? 'n' : '1'}`);
  if (stats.isSymbolicLink()) parts.push(`-> ${readlinkSync(path)}`);
  if (stats.isCharacterDevice() || stats.isBlockDevice()) parts.push(`dev=${Math.floor(stats.rdev / 256) & 0xfff}:${(stats.rdev & 0xff) | ((stats.rdev >> 12) & ~0xff)}`);
  if (!stats.isDirectory() || options.dirMtimes) parts.push(`mtime=${Math.floor(stats.mtimeMs)}`);
  for (const [name, value] of [...(xattrs ?? [])].sort()) parts.push(`${name}=${value}`);
  return parts.join(' ');
}

function typeOf(stats: Stats): string {
  if (stats.isFile()) return 'file';
  if (stats.isDirectory()) return 'dir';
  if (stats.isSymbolicLink()) return 'symlink';
  if (stats.isCharacterDevice()) return 'char';
  if (stats.isBlockDevice()) return 'block';
  if (stats.isFIFO()) return 'fifo';
  return 'socket';
}

/** Every xattr in the tree, from ONE getfattr run (relative path → name → hex value). */
async function readXattrs(root: string, names: RegExp): Promise<Map<string, Map<string, string>>> {
  const result = await exec('getfattr', ['-R', '-P', '-d', '-m', '-', '-e', 'hex', '--absolute-names', root], { timeoutMs: 300_000 });
  const byPath = new Map<string, Map<string, string>>();
  let current: Map<string, string> | undefined;
  for (const line of result.stdout.split('\n')) {
    if (line.startsWith('# file: ')) {
      const path = line.slice('# file: '.length).replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
      const rel = path === root ? '' : path.slice(root.length + 1);
      current = new Map();
      byPath.set(Buffer.from(rel, 'latin1').toString('utf8'), current);
    } else if (current && line.includes('=')) {
      const eq = line.indexOf('=');
      const name = line.slice(0, eq);
      if (names.test(name)) current.set(name, line.slice(eq + 1));
    }
  }
  return byPath;
}

/** Lines only in a, only in b: a short message for assertion failures. */
export function treeDiff(a: string[], b: string[], labels: [string, string] = ['ours', 'theirs']): string {
  const inB = new Set(b);
  const inA = new Set(a);
  const onlyA = a.filter((l) => !inB.has(l));
  const onlyB = b.filter((l) => !inA.has(l));
  return [...onlyA.slice(0, 20).map((l) => `- ${labels[0]}: ${l}`), ...onlyB.slice(0, 20).map((l) => `+ ${labels[1]}: ${l}`)].join('\n');
}
