/**
 * An overlay upper dir as an OCI layer: the tar stream `img-commit` stores. The kernel's forms
 * become the image-spec's: a 0/0 character device is a `.wh.NAME` whiteout, a directory marked
 * opaque (trusted.overlay.opaque=y, user.overlay.opaque rootless) is the directory plus
 * `.wh..wh..opq`; overlay's own xattrs never reach the layer, and a redirect or metacopy xattr
 * (a mount made with redirect_dir or metacopy) is refused: the upper dir alone would then be a
 * wrong layer. The stream is reproducible: entries sorted byte-wise, each directory's whiteouts
 * before its other entries, no user or group names, mtimes clamped to `timestamp` when given.
 * Rootless, the owners are the container's (container-owners.ts).
 */
import { join } from 'node:path';
import { closeSync, constants, fstatSync, lstatSync, openSync, readdirSync, readlinkSync, readSync, type Stats } from 'node:fs';
import { UnsupportedError } from '../core/errors.js';
import { readTreeXattrs, type TreeXattrs } from './tree-xattrs.js';
import { TAR_END, tarHeader, tarPadding, type TarEntry } from '../core/tar-writer.js';
import { isOwnerRecord, type OwnerMapper } from './container-owners.js';

export interface UpperLayerOptions {
  /** Seconds since the epoch: no mtime in the layer is later (--timestamp, SOURCE_DATE_EPOCH). */
  timestamp?: number;
  /** Rootless: the owner the container saw for a host owner (container-owners.ts); without it the host's ids are written. */
  owners?: OwnerMapper;
  /** Paths (relative) not to put in the layer, nor anything under them: the runtime's mount points (mount-placeholders.ts). */
  leaveOut?: Set<string>;
}

export interface UpperLayer {
  /** The tar stream, in chunks; read it once. */
  chunks: AsyncIterable<Buffer>;
  /** Paths left out (sockets), filled as the stream is read. */
  skipped: string[];
}

const OPAQUE_MARKER = '.wh..wh..opq';
const OVERLAY_XATTR = /^(trusted|user)\.(overlay|fuseoverlayfs)\./;
const REFUSED_XATTR = /^(trusted|user)\.overlay\.(redirect|metacopy)$/;
/** Content is read in pieces of this size: the peak memory does not grow with a file's size. */
const READ_CHUNK = 1 << 20;
const COALESCE_BYTES = 1 << 20;

interface Walk {
  upper: string;
  xattrs: TreeXattrs;
  timestamp?: number;
  owners?: OwnerMapper;
  leaveOut?: Set<string>;
  /** dev:ino → the first name of a file with several links. */
  links: Map<string, string>;
  skipped: string[];
}

export async function upperLayer(upper: string, options: UpperLayerOptions = {}): Promise<UpperLayer> {
  const walk: Walk = { upper, xattrs: await readTreeXattrs(upper), timestamp: options.timestamp, owners: options.owners, leaveOut: options.leaveOut, links: new Map(), skipped: [] };
  refuseRedirects(walk.xattrs);
  return { chunks: layerChunks(walk), skipped: walk.skipped };
}

function refuseRedirects(xattrs: TreeXattrs): void {
  for (const [path, names] of xattrs) {
    const refused = [...names.keys()].find((name) => REFUSED_XATTR.test(name));
    if (refused) throw new UnsupportedError(`/${path} has ${refused}: the overlay was mounted with redirect_dir or metacopy, and its upper dir alone is not the container's changes; mount it without them (ovl-mount does) to commit`);
  }
}

/** What is still to be written, in order: header bytes ready to go, or an entry to stat and read. */
type Pending = Buffer | { rel: string; info: Stats };

/**
 * The walk is one generator over an explicit stack (no generator per directory: every chunk
 * would pass through each level), and its output is coalesced into pieces of about
 * COALESCE_BYTES: a 512-byte header per write would cost a system call per entry. The walk's
 * own calls are synchronous: files come from the page cache, and four thread-pool hops per
 * file (open, fstat, read, close) cost more than the reads; the writing side runs meanwhile.
 */
async function* layerChunks(walk: Walk): AsyncGenerator<Buffer> {
  const out = new Coalescer();
  const stack: Pending[] = directoryItems(walk, '').reverse();
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    if (Buffer.isBuffer(item)) out.add(item);
    else if (item.info.isSocket()) walk.skipped.push(`/${item.rel}`);
    else if (item.info.isDirectory()) {
      out.add(tarHeader(baseEntry(walk, item.rel, item.info)));
      stack.push(...directoryItems(walk, item.rel).reverse());
    } else if (addNonDirectory(walk, item, out)) {
      for (const chunk of fileContent(join(walk.upper, item.rel), item.info)) if (out.add(chunk)) yield out.take();
    }
    if (out.full()) yield out.take();
  }
  out.add(TAR_END);
  yield out.take();
}

class Coalescer {
  private pieces: Buffer[] = [];
  private bytes = 0;
  /** True when full: take() before adding more. */
  add(chunk: Buffer): boolean {
    this.pieces.push(chunk);
    this.bytes += chunk.length;
    return this.full();
  }
  full(): boolean {
    return this.bytes >= COALESCE_BYTES;
  }
  take(): Buffer {
    const all = Buffer.concat(this.pieces, this.bytes);
    [this.pieces, this.bytes] = [[], 0];
    return all;
  }
}

/** A directory's items in layer order: its opaque marker, its whiteouts, then its entries, each sorted. */
function directoryItems(walk: Walk, dir: string): Pending[] {
  const names = readdirSync(join(walk.upper, dir)).sort(byteOrder);
  const whiteouts: string[] = [];
  const others: Pending[] = [];
  for (const name of names) {
    if (name === OPAQUE_MARKER) continue;
    if (name.startsWith('.wh.')) {
      whiteouts.push(name);
      continue;
    }
    if (walk.leaveOut?.has(join(dir, name))) continue;
    const info = lstatSync(join(walk.upper, dir, name));
    if (info.isCharacterDevice() && info.rdev === 0) whiteouts.push(`.wh.${name}`);
    else others.push({ rel: join(dir, name), info });
  }
  const items: Pending[] = [];
  if (dir !== '' && (names.includes(OPAQUE_MARKER) || isOpaque(walk, dir))) items.push(tarHeader(whiteoutEntry(walk, join(dir, OPAQUE_MARKER))));
  for (const name of whiteouts.sort(byteOrder)) items.push(tarHeader(whiteoutEntry(walk, join(dir, name))));
  return items.concat(others);
}

/** Adds the header of a file, link, device or FIFO; true when the file's content follows. */
function addNonDirectory(walk: Walk, item: { rel: string; info: Stats }, out: Coalescer): boolean {
  const entry = baseEntry(walk, item.rel, item.info);
  if (entry.type === 'symlink') entry.linkname = readlinkSync(join(walk.upper, item.rel));
  const first = item.info.isFile() && item.info.nlink > 1 ? linkedName(walk, item.rel, item.info) : undefined;
  if (first !== undefined) {
    out.add(tarHeader({ ...entry, type: 'hardlink', size: 0, linkname: first }));
    return false;
  }
  out.add(tarHeader(entry));
  return entry.type === 'file';
}

function baseEntry(walk: Walk, rel: string, info: Stats): TarEntry {
  const type = entryType(info);
  const xattrs = walk.xattrs.get(rel);
  const owner = walk.owners ? walk.owners({ uid: info.uid, gid: info.gid }, xattrs) : { uid: info.uid, gid: info.gid };
  const entry: TarEntry = {
    name: type === 'dir' ? `${rel}/` : rel,
    type,
    mode: info.mode & 0o7777,
    ...owner,
    size: type === 'file' ? info.size : 0,
    mtime: clamp(walk, Math.floor(info.mtimeMs / 1000)),
    xattrs: layerXattrs(xattrs, walk.owners !== undefined),
  };
  if (type === 'char' || type === 'block') {
    // Linux's dev_t: the minor's low 8 bits, the major's 12, then the minor's high 12.
    entry.devmajor = (info.rdev >>> 8) & 0xfff;
    entry.devminor = (info.rdev & 0xff) | ((info.rdev >>> 12) & 0xfff00);
  }
  return entry;
}

function entryType(info: Stats): TarEntry['type'] {
  if (info.isDirectory()) return 'dir';
  if (info.isSymbolicLink()) return 'symlink';
  if (info.isCharacterDevice()) return 'char';
  if (info.isBlockDevice()) return 'block';
  if (info.isFIFO()) return 'fifo';
  return 'file';
}

/** The entry's own xattrs: overlay's (opaque, origin, impure, nlink, …) are the mount's bookkeeping, and rootless, the owner records. */
function layerXattrs(names: Map<string, Buffer> | undefined, rootless: boolean): Map<string, Buffer> | undefined {
  if (!names) return undefined;
  const kept = new Map([...names].filter(([name]) => !OVERLAY_XATTR.test(name) && !(rootless && isOwnerRecord(name))));
  return kept.size ? kept : undefined;
}

function isOpaque(walk: Walk, rel: string): boolean {
  const names = walk.xattrs.get(rel);
  return ['trusted.overlay.opaque', 'user.overlay.opaque', 'user.fuseoverlayfs.opaque'].some((name) => names?.get(name)?.toString() === 'y');
}

function whiteoutEntry(walk: Walk, name: string): TarEntry {
  return { name, type: 'file', mode: 0, uid: 0, gid: 0, size: 0, mtime: walk.timestamp ?? 0 };
}

function linkedName(walk: Walk, rel: string, info: Stats): string | undefined {
  const key = `${info.dev}:${info.ino}`;
  const first = walk.links.get(key);
  if (first === undefined) walk.links.set(key, rel);
  return first;
}

function clamp(walk: Walk, mtime: number): number {
  return walk.timestamp !== undefined && mtime > walk.timestamp ? walk.timestamp : mtime;
}

/**
 * A file's bytes, exactly the size its header says: a file that shrinks while it is read is
 * refused, not padded. Opened without following a symlink and checked to be the inode the walk saw, so a
 * process in the container that swaps the file for a link cannot put a host file in the layer.
 */
function* fileContent(path: string, info: Stats): Generator<Buffer> {
  const changed = () => new UnsupportedError(`${path} changed while it was committed (stop the container first)`);
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    throw (err as NodeJS.ErrnoException).code === 'ELOOP' ? changed() : err;
  }
  try {
    const opened = fstatSync(fd);
    if (opened.ino !== info.ino || opened.dev !== info.dev) throw changed();
    for (let done = 0; done < info.size; ) {
      const buffer = Buffer.allocUnsafe(Math.min(READ_CHUNK, info.size - done));
      const bytesRead = readSync(fd, buffer, 0, buffer.length, done);
      if (bytesRead === 0) throw changed();
      done += bytesRead;
      yield bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead);
    }
  } finally {
    closeSync(fd);
  }
  yield tarPadding(info.size);
}

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
