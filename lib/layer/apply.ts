/**
 * Applies one layer's tar stream to a root filesystem, as image-spec layer.md says and as
 * umoci does: entries replace what is there (a directory over a directory only updates its
 * metadata), whiteouts remove lower content, hardlinks point inside the root, and every path
 * is resolved as if chrooted (lib/rootfs.ts), so nothing outside the root is ever created,
 * changed, linked or removed.
 *
 * Two whiteout forms: `flat` applies the layer onto the layers below it in one directory;
 * `overlay` unpacks a layer into a directory of its own and keeps its whiteouts the way
 * overlayfs reads them (a 0/0 character device, the opaque xattr), so the layer directories
 * stacked as lowerdir= show the same tree as the flat unpack.
 */
import { chmodSync, closeSync, constants, copyFileSync, fchmodSync, fchownSync, futimesSync, linkSync, lchownSync, lstatSync, lutimesSync, mkdirSync, openSync, readdirSync, rmdirSync, symlinkSync, unlinkSync, writeSync, type Stats } from 'node:fs';
import { UnsafeLayerError, UnsupportedError } from '../core/errors.js';
import { baseOf, cleanEntryName, climbsOutOfRoot, joinRel, parentOf, RootResolver } from '../core/root-resolver.js';
import { S_IFBLK, S_IFCHR, S_IFIFO, type Syscalls } from '../core/syscalls.js';
import type { TarHeader, TarReader } from './tarstream.js';
import type { SkippedEntry } from './model.js';

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_WHITEOUT = '.wh..wh..opq';
/** umoci's xattr for the owner a rootless unpack could not give a file (rootlesscontainers.proto). */
export const ROOTLESS_XATTR = 'user.rootlesscontainers';

/** Host-specific xattrs that never come from an image (umoci skips the same ones). */
const HOST_XATTRS = new Set(['security.selinux', 'system.nfs4_acl']);

export interface LayerOptions {
  /** flat: onto the layers below, in one directory. overlay: this layer alone, whiteouts in overlayfs form. */
  whiteouts: 'flat' | 'overlay';
  /** Not root: ownership goes into user.rootlesscontainers, device nodes and privileged xattrs are skipped. */
  rootless: boolean;
  /** The xattr overlayfs reads for an opaque directory: trusted.overlay.opaque, or user.overlay.opaque for userxattr mounts. */
  opaqueXattr: string;
  syscalls: Syscalls;
  /** Names of the xattrs set from headers, by path, over every layer applied to this root (an update replaces them). */
  xattrsSet: Map<string, string[]>;
  /** overlay: the directories of the layers below (top first), for paths this layer names through them. */
  lowers?: string[];
  warn(message: string): void;
}

export interface LayerResult {
  entries: number;
  skipped: SkippedEntry[];
}

/** Applies every entry `reader` yields to `root` (an absolute, symlink-free path). */
export async function applyLayer(root: string, reader: TarReader, options: LayerOptions): Promise<LayerResult> {
  const applier = new LayerApplier(root, options);
  for (let header = await reader.next(); header; header = await reader.next()) await applier.apply(header, reader);
  await applier.finish();
  return { entries: applier.entries, skipped: applier.skipped };
}

/** What a directory gets once the layer is done: its header's metadata, or the times (and mode) it had before. */
interface DirFixup {
  header?: TarHeader;
  /** overlay: an implicit parent takes the metadata the same directory has in the layers below. */
  copyOf?: Stats;
  atime?: number;
  mtime?: number;
  mode?: number;
}

class LayerApplier {
  entries = 0;
  readonly skipped: SkippedEntry[] = [];
  private readonly resolver: RootResolver;
  /** Paths this layer created, and their ancestors: whiteouts only remove what lower layers made. */
  private readonly upper = new Set<string>();
  private readonly dirs = new Map<string, DirFixup>();
  /** Directories known to exist as directories (and, rootless, to be writable) in this layer. */
  private readonly readyDirs = new Set<string>();
  /** Directories whose content this layer changes, with their old times noted (or made by this layer). */
  private readonly touched = new Set<string>();

  constructor(root: string, private readonly options: LayerOptions) {
    this.resolver = new RootResolver(root, options.lowers);
  }

  async apply(header: TarHeader, reader: TarReader): Promise<void> {
    this.entries++;
    if (header.name.includes('\0')) throw new UnsupportedError(`layer entry "${header.name.replace(/\0/g, '\\0')}": NUL in the name`);
    const rel = cleanEntryName(header.name);
    if (rel === '') {
      // A symlink or file in place of the root would redirect everything after it (umoci's CVE-2021-29136).
      if (header.type !== 'directory') throw new UnsafeLayerError(`layer entry "${header.name}" would replace the root directory with a ${header.type} (refused)`);
      this.fixup('').header = header;
      return;
    }
    if (climbsOutOfRoot(header.name)) this.options.warn(`layer entry "${header.name}" names a path outside the root; applied as "/${rel}" inside it`);
    const parent = this.resolver.resolve(parentOf(rel), `layer entry "${header.name}"`);
    const base = baseOf(rel);
    if (base.startsWith(WHITEOUT_PREFIX)) return this.whiteout(header, parent, base);

    const path = joinRel(parent, base);
    const host = this.resolver.hostPath(path);
    this.ensureDir(parent, header.name);
    this.touch(parent);
    switch (header.type) {
      case 'file':
        await this.writeFile(path, host, header, reader);
        break;
      case 'directory': {
        let existing: Stats | undefined;
        try {
          mkdirSync(host, 0o700);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
          existing = lstatSync(host);
        }
        // A directory over a directory keeps it (and its content) and takes the new metadata.
        if (existing && !existing.isDirectory()) {
          this.remove(path, existing);
          mkdirSync(host, 0o700);
          // A directory over this layer's own whiteout must still hide the lower one's content.
          if (isWhiteoutDevice(existing) && this.options.whiteouts === 'overlay') await this.setOpaque(path);
        }
        if (!existing?.isDirectory()) {
          this.readyDirs.add(path);
          this.touched.add(path);
        }
        this.fixup(path).header = header;
        break;
      }
      case 'symlink':
        this.replacing(path, host, () => symlinkSync(header.linkname, host));
        this.resolver.invalidate();
        await this.applyMetadata(path, host, header);
        break;
      case 'hardlink':
        this.replacing(path, host, () => this.hardlink(header, host));
        break;
      case 'char':
      case 'block':
      case 'fifo': {
        const existing = lstatOrUndefined(host);
        if (existing) this.remove(path, existing);
        if (!(await this.makeNode(path, host, header))) return;
        break;
      }
    }
    this.markUpper(path);
  }

  /** Directory metadata last: chown before chmod (chown clears setuid), times after the contents, deepest first. */
  async finish(): Promise<void> {
    const depth = (rel: string) => (rel === '' ? 0 : rel.split('/').length);
    const dirs = [...this.dirs].sort((a, b) => depth(b[0]) - depth(a[0]));
    for (const [rel, fixup] of dirs) {
      const host = this.resolver.hostPath(rel);
      if (!lstatOrUndefined(host)?.isDirectory()) continue;
      if (fixup.header) {
        await this.applyMetadata(rel, host, fixup.header);
      } else if (fixup.copyOf) {
        this.copyMetadata(host, fixup.copyOf);
      } else {
        if (fixup.mode !== undefined) chmodSync(host, fixup.mode);
        if (fixup.mtime !== undefined) lutimesSync(host, fixup.atime ?? fixup.mtime, fixup.mtime);
      }
    }
  }

  /**
   * Creates a path; when something is there already, removes it and creates again (the
   * spec's "remove, then recreate"). Trying first saves a lookup for nearly every entry.
   */
  private replacing<T>(path: string, host: string, create: () => T): T {
    try {
      return create();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    this.remove(path, lstatSync(host));
    return create();
  }

  private async writeFile(path: string, host: string, header: TarHeader, reader: TarReader): Promise<void> {
    // O_EXCL|O_NOFOLLOW: a new inode always, never written through a link that was there.
    const fd = this.replacing(path, host, () => openSync(host, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600));
    try {
      await reader.readBody((data) => {
        for (let done = 0; done < data.length; ) done += writeSync(fd, data, done, data.length - done);
      });
      if (!this.options.rootless) fchownSync(fd, header.uid, header.gid);
      fchmodSync(fd, header.mode);
      futimesSync(fd, header.atime ?? header.mtime, header.mtime);
    } finally {
      closeSync(fd);
    }
    await this.applyXattrs(path, host, header);
  }

  /** Devices need root; FIFOs do not. Returns false when the entry was skipped. */
  private async makeNode(path: string, host: string, header: TarHeader): Promise<boolean> {
    if (header.type !== 'fifo' && this.options.rootless) {
      this.skipped.push({ path: `/${path}`, reason: `${header.type} device ${header.devmajor}:${header.devminor}: creating device nodes needs root` });
      return false;
    }
    this.touch(parentOf(path));
    const kind = header.type === 'char' ? S_IFCHR : header.type === 'block' ? S_IFBLK : S_IFIFO;
    await this.options.syscalls.mknod(host, kind | 0o600, header.devmajor, header.devminor);
    await this.applyMetadata(path, host, header);
    return true;
  }

  /**
   * A hardlink to an entry of this layer or a lower one. With overlay whiteouts the lower
   * layer is another (immutable, cached) layer dir: linked across, as ostree's checkouts share
   * inodes, so the merged tree shows one inode as the flat tree does; copied only across devices.
   */
  private hardlink(header: TarHeader, host: string): void {
    const rel = cleanEntryName(header.linkname);
    const target = rel === '' ? '' : joinRel(this.resolver.resolve(parentOf(rel), `layer entry "${header.name}"`), baseOf(rel));
    const found = target === '' ? undefined : this.resolver.lookup(target);
    if (!found) throw new UnsupportedError(`layer entry "${header.name}": hardlink to "${header.linkname}", which is not in this or a lower layer`);
    if (found.stats.isDirectory()) throw new UnsupportedError(`layer entry "${header.name}": hardlink to the directory "${header.linkname}"`);
    const source = `${found.dir}/${target}`;
    try {
      linkSync(source, host);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EXDEV' || found.stats.isSymbolicLink()) throw err;
      copyFileSync(source, host, constants.COPYFILE_EXCL);
      this.copyMetadata(host, found.stats);
    }
  }

  private copyMetadata(host: string, stats: Stats): void {
    if (!this.options.rootless) lchownSync(host, stats.uid, stats.gid);
    if (!stats.isSymbolicLink()) chmodSync(host, stats.mode & 0o7777);
    lutimesSync(host, stats.atimeMs / 1000, stats.mtimeMs / 1000);
  }

  private async whiteout(header: TarHeader, parent: string, base: string): Promise<void> {
    if (base === OPAQUE_WHITEOUT) {
      if (this.options.whiteouts === 'overlay') {
        this.ensureDir(parent, header.name);
        await this.setOpaque(parent);
      } else {
        this.removeLower(parent, true);
      }
      return;
    }
    // Other .wh..wh. names are aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs); docker and containerd skip them too.
    if (base.startsWith(`${WHITEOUT_PREFIX}${WHITEOUT_PREFIX}`)) return;
    const name = base.slice(WHITEOUT_PREFIX.length);
    if (name === '') throw new UnsupportedError(`layer entry "${header.name}": a whiteout that names nothing`);
    if (name === '.' || name === '..') throw new UnsafeLayerError(`layer entry "${header.name}": a whiteout of "${name}" would remove a parent directory (refused)`);
    const target = joinRel(parent, name);
    if (this.options.whiteouts === 'flat') {
      this.removeLower(target, false);
      return;
    }
    this.ensureDir(parent, header.name);
    const existing = lstatOrUndefined(this.resolver.hostPath(target));
    if (!existing) {
      this.touch(parent);
      await this.options.syscalls.mknod(this.resolver.hostPath(target), S_IFCHR, 0, 0);
    } else if (existing.isDirectory() && this.upper.has(target)) {
      // This layer's own directory stays, but what lower layers had in it goes: opaque.
      await this.setOpaque(target);
    }
  }

  /** Removes `rel` (or with keepSelf only its content) as far as lower layers made it. */
  private removeLower(rel: string, keepSelf: boolean): void {
    const host = this.resolver.hostPath(rel);
    const stats = lstatOrUndefined(host);
    if (!stats) return;
    if (!keepSelf && !this.upper.has(rel)) {
      this.remove(rel, stats);
      return;
    }
    if (!stats.isDirectory()) return;
    for (const name of readdirSync(host)) this.removeLower(joinRel(rel, name), false);
  }

  /** Removes a path (a whole tree for a directory), never following a symlink. */
  private remove(rel: string, stats: Stats): void {
    this.touch(parentOf(rel));
    const host = this.resolver.hostPath(rel);
    if (stats.isDirectory()) {
      removeTree(host, this.options.rootless);
      this.forgetTree(rel);
      this.resolver.invalidate();
    } else {
      unlinkSync(host);
      if (stats.isSymbolicLink()) this.resolver.invalidate();
    }
  }

  /** Creates the missing directories of a resolved path (implicit parents get 0755, as umoci's MkdirAll). */
  private ensureDir(rel: string, what: string): void {
    if (this.readyDirs.has(rel)) return;
    const parts = rel === '' ? [] : rel.split('/');
    for (let i = 0; i <= parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (this.readyDirs.has(dir)) continue;
      const host = this.resolver.hostPath(dir);
      const stats = lstatOrUndefined(host);
      if (!stats) {
        this.touch(parentOf(dir));
        const lower = this.options.lowers?.length ? this.resolver.lookup(dir) : undefined;
        mkdirSync(host, 0o755);
        chmodSync(host, 0o755);
        this.touched.add(dir);
        if (lower?.stats.isDirectory()) this.fixup(dir).copyOf = lower.stats;
      } else if (!stats.isDirectory()) {
        throw new UnsupportedError(`layer entry "${what}": "/${dir}" is not a directory`);
      }
      this.readyDirs.add(dir);
    }
  }

  /**
   * About to change what is in directory `rel`: remember its times (restored at the end
   * unless a header gives new ones) and, rootless, make sure we may write into it.
   */
  private touch(rel: string): void {
    if (this.touched.has(rel)) return;
    this.touched.add(rel);
    const fixup = this.fixup(rel);
    const host = this.resolver.hostPath(rel);
    const stats = lstatSync(host);
    fixup.atime = stats.atimeMs / 1000;
    fixup.mtime = stats.mtimeMs / 1000;
    if (this.options.rootless && (stats.mode & 0o700) !== 0o700) {
      fixup.mode = stats.mode & 0o7777;
      chmodSync(host, fixup.mode | 0o700);
    }
  }

  private fixup(rel: string): DirFixup {
    let fixup = this.dirs.get(rel);
    if (!fixup) this.dirs.set(rel, (fixup = {}));
    return fixup;
  }

  private markUpper(rel: string): void {
    for (let path = rel; path !== '' && !this.upper.has(path); path = parentOf(path)) this.upper.add(path);
  }

  /** Drops what we knew about a removed directory and everything under it. */
  private forgetTree(rel: string): void {
    const prefix = `${rel}/`;
    for (const set of [this.readyDirs, this.upper, this.touched]) for (const key of set) if (key === rel || key.startsWith(prefix)) set.delete(key);
    for (const key of this.dirs.keys()) if (key === rel || key.startsWith(prefix)) this.dirs.delete(key);
  }

  private async setOpaque(rel: string): Promise<void> {
    await this.options.syscalls.setxattr(this.resolver.hostPath(rel), this.options.opaqueXattr, Buffer.from('y'));
  }

  /** Owner, then mode (chown clears setuid), then xattrs (chown clears security.capability), then times. */
  private async applyMetadata(rel: string, host: string, header: TarHeader): Promise<void> {
    if (!this.options.rootless) lchownSync(host, header.uid, header.gid);
    if (header.type !== 'symlink') chmodSync(host, header.mode);
    await this.applyXattrs(rel, host, header);
    lutimesSync(host, header.atime ?? header.mtime, header.mtime);
  }

  private async applyXattrs(rel: string, host: string, header: TarHeader): Promise<void> {
    const wanted = new Map<string, Buffer>();
    for (const [name, value] of header.xattrs) {
      if (HOST_XATTRS.has(name)) continue;
      if (name === ROOTLESS_XATTR) {
        this.options.warn(`layer entry "${header.name}": ignoring the ${ROOTLESS_XATTR} xattr stored in the layer`);
        continue;
      }
      if (this.options.whiteouts === 'overlay' && /^(trusted|user)\.overlay\./.test(name)) {
        this.options.warn(`layer entry "${header.name}": ignoring the ${name} xattr (a layer may not forge overlayfs metadata)`);
        continue;
      }
      if (this.options.rootless && !name.startsWith('user.')) {
        this.skipped.push({ path: `/${rel}`, reason: `xattr ${name}: setting it needs root` });
        continue;
      }
      wanted.set(name, value);
    }
    if (this.options.rootless) {
      const owner = rootlessOwner(header.uid, header.gid);
      if (owner) wanted.set(ROOTLESS_XATTR, owner);
    }
    const previous = this.options.xattrsSet.get(rel) ?? [];
    if (wanted.size === 0 && previous.length === 0) return;
    const syscalls = this.options.syscalls;
    for (const name of previous) if (!wanted.has(name)) await syscalls.removexattr(host, name);
    const set: string[] = [];
    for (const [name, value] of wanted) {
      try {
        await syscalls.setxattr(host, name, value);
        set.push(name);
      } catch (err) {
        // user.* xattrs are not allowed on symlinks and device nodes (xattr(7)).
        if (!this.options.rootless || (err as NodeJS.ErrnoException).code !== 'EPERM') throw err;
        this.skipped.push({ path: `/${rel}`, reason: name === ROOTLESS_XATTR ? `owner ${header.uid}:${header.gid} not recorded: no user xattrs on a ${header.type}` : `xattr ${name}: not allowed on a ${header.type}` });
      }
    }
    if (set.length) this.options.xattrsSet.set(rel, set);
    else this.options.xattrsSet.delete(rel);
  }
}

/**
 * user.rootlesscontainers as umoci writes it: the protobuf `Resource { uint32 uid = 1; uint32 gid = 2; }`,
 * with 0 written as the no-op id 2^32-1; no xattr at all for 0:0.
 */
export function rootlessOwner(uid: number, gid: number): Buffer | undefined {
  if (uid === 0 && gid === 0) return undefined;
  const NOOP = 0xffffffff;
  return Buffer.concat([Buffer.from([0x08]), varint(uid === 0 ? NOOP : uid), Buffer.from([0x10]), varint(gid === 0 ? NOOP : gid)]);
}

function varint(value: number): Buffer {
  const bytes: number[] = [];
  let v = value;
  while (v > 0x7f) {
    bytes.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  bytes.push(v);
  return Buffer.from(bytes);
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
}

function isWhiteoutDevice(stats: Stats): boolean {
  return stats.isCharacterDevice() && stats.rdev === 0;
}

/** rm -r that never follows a symlink; rootless, it first makes each directory writable. */
export function removeTree(path: string, makeWritable = process.getuid?.() !== 0): void {
  const stats = lstatOrUndefined(path);
  if (!stats) return;
  if (!stats.isDirectory()) {
    unlinkSync(path);
    return;
  }
  if (makeWritable && (stats.mode & 0o700) !== 0o700) chmodSync(path, (stats.mode & 0o7777) | 0o700);
  for (const name of readdirSync(path)) removeTree(`${path}/${name}`, makeWritable);
  rmdirSync(path);
}
