/**
 * An overlay upper dir as an OCI layer: the tar stream `img-commit` stores. The kernel's forms
 * become the image-spec's: a 0/0 character device is a `.wh.NAME` whiteout, a directory marked
 * opaque (trusted.overlay.opaque=y, user.overlay.opaque rootless) is the directory plus
 * `.wh..wh..opq`; overlay's own xattrs never reach the layer, and a redirect or metacopy xattr
 * (a mount made with redirect_dir or metacopy) is refused: the upper dir alone would then be a
 * wrong layer. The stream is reproducible: entries sorted byte-wise, each directory's whiteouts
 * before its other entries, no user or group names, mtimes clamped to `timestamp` when given.
 */
import { lstat, open, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { constants, type Stats } from 'node:fs';
import { UnsupportedError } from '../core/errors.js';
import { readTreeXattrs, type TreeXattrs } from './tree-xattrs.js';
import { TAR_END, tarHeader, tarPadding, type TarEntry } from './tar-writer.js';

export interface UpperLayerOptions {
  /** Seconds since the epoch: no mtime in the layer is later (--timestamp, SOURCE_DATE_EPOCH). */
  timestamp?: number;
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

interface Walk {
  upper: string;
  xattrs: TreeXattrs;
  timestamp?: number;
  /** dev:ino → the first name of a file with several links. */
  links: Map<string, string>;
  skipped: string[];
}

export async function upperLayer(upper: string, options: UpperLayerOptions = {}): Promise<UpperLayer> {
  const walk: Walk = { upper, xattrs: await readTreeXattrs(upper), timestamp: options.timestamp, links: new Map(), skipped: [] };
  refuseRedirects(walk.xattrs);
  return { chunks: layerChunks(walk), skipped: walk.skipped };
}

function refuseRedirects(xattrs: TreeXattrs): void {
  for (const [path, names] of xattrs) {
    const refused = [...names.keys()].find((name) => REFUSED_XATTR.test(name));
    if (refused) throw new UnsupportedError(`/${path} has ${refused}: the overlay was mounted with redirect_dir or metacopy, and its upper dir alone is not the container's changes; mount it without them (ovl-mount does) to commit`);
  }
}

async function* layerChunks(walk: Walk): AsyncGenerator<Buffer> {
  yield* directoryChunks(walk, '');
  yield TAR_END;
}

async function* directoryChunks(walk: Walk, dir: string): AsyncGenerator<Buffer> {
  const names = (await readdir(join(walk.upper, dir))).sort(byteOrder);
  const whiteouts: string[] = [];
  const others: Array<{ name: string; info: Stats }> = [];
  for (const name of names) {
    if (name === OPAQUE_MARKER) continue;
    if (name.startsWith('.wh.')) {
      whiteouts.push(name);
      continue;
    }
    const info = await lstat(join(walk.upper, dir, name));
    if (info.isCharacterDevice() && info.rdev === 0) whiteouts.push(`.wh.${name}`);
    else others.push({ name, info });
  }
  if (dir !== '' && (names.includes(OPAQUE_MARKER) || isOpaque(walk, dir))) yield tarHeader(whiteoutEntry(walk, join(dir, OPAQUE_MARKER)));
  for (const name of whiteouts.sort(byteOrder)) yield tarHeader(whiteoutEntry(walk, join(dir, name)));
  for (const { name, info } of others) yield* entryChunks(walk, join(dir, name), info);
}

async function* entryChunks(walk: Walk, rel: string, info: Stats): AsyncGenerator<Buffer> {
  if (info.isSocket()) {
    walk.skipped.push(`/${rel}`);
    return;
  }
  const entry = baseEntry(walk, rel, info);
  if (info.isDirectory()) {
    yield tarHeader(entry);
    yield* directoryChunks(walk, rel);
    return;
  }
  if (entry.type === 'symlink') entry.linkname = await readlink(join(walk.upper, rel));
  const first = info.isFile() && info.nlink > 1 ? linkedName(walk, rel, info) : undefined;
  if (first !== undefined) {
    yield tarHeader({ ...entry, type: 'hardlink', size: 0, linkname: first });
    return;
  }
  yield tarHeader(entry);
  if (entry.type === 'file') yield* fileContent(join(walk.upper, rel), info);
}

function baseEntry(walk: Walk, rel: string, info: Stats): TarEntry {
  const type = entryType(info);
  const entry: TarEntry = {
    name: type === 'dir' ? `${rel}/` : rel,
    type,
    mode: info.mode & 0o7777,
    uid: info.uid,
    gid: info.gid,
    size: type === 'file' ? info.size : 0,
    mtime: clamp(walk, Math.floor(info.mtimeMs / 1000)),
    xattrs: layerXattrs(walk.xattrs.get(rel)),
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

/** The entry's own xattrs: overlay's (opaque, origin, impure, nlink, …) are the mount's bookkeeping. */
function layerXattrs(names: Map<string, Buffer> | undefined): Map<string, Buffer> | undefined {
  if (!names) return undefined;
  const kept = new Map([...names].filter(([name]) => !OVERLAY_XATTR.test(name)));
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
 * A file's bytes, exactly its size: a file that changes while it is read is refused, not cut or
 * padded. Opened without following a symlink and checked to be the inode the walk saw, so a
 * process in the container that swaps the file for a link cannot put a host file in the layer.
 */
async function* fileContent(path: string, info: Stats): AsyncGenerator<Buffer> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  const changed = () => new UnsupportedError(`${path} changed while it was committed (stop the container first)`);
  try {
    const opened = await handle.stat();
    if (opened.ino !== info.ino || opened.dev !== info.dev) throw changed();
    for (let done = 0; done < info.size; ) {
      const buffer = Buffer.allocUnsafe(Math.min(READ_CHUNK, info.size - done));
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, done);
      if (bytesRead === 0) throw changed();
      done += bytesRead;
      yield bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead);
    }
    if ((await handle.stat()).size !== info.size) throw changed();
  } finally {
    await handle.close();
  }
  yield tarPadding(info.size);
}

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
