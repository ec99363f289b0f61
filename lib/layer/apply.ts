/**
 * Applies one layer's tar stream to a root filesystem, as image-spec layer.md says and as
 * umoci does: entries replace what is there (a directory over a directory only updates its
 * metadata), whiteouts remove lower content, hardlinks point inside the root, and every path
 * is resolved as if chrooted (core/root-resolver.ts) and changed only through the layer's
 * tree (tree.ts), so nothing outside the root is ever created, changed, linked or removed.
 *
 * Two whiteout forms: `flat` applies the layer onto the layers below it in one directory;
 * `overlay` unpacks a layer into a directory of its own and keeps its whiteouts the way
 * overlayfs reads them (a 0/0 character device, the opaque xattr), so the layer directories
 * stacked as lowerdir= show the same tree as the flat unpack.
 */
import { closeSync, fchmodSync, fchownSync, futimesSync, readFileSync, writeSync, type Stats } from 'node:fs';
import { UnsafeLayerError, UnsupportedError } from '../core/errors.js';
import { baseOf, cleanEntryName, climbsOutOfRoot, joinRel, parentOf } from '../core/root-resolver.js';
import { S_IFBLK, S_IFCHR, S_IFIFO, type Syscalls } from '../core/syscalls.js';
import { LayerDirs } from './dirs.js';
import { MetadataWriter } from './metadata.js';
import { LayerTree } from './tree.js';
import { Whiteouts, WHITEOUT_PREFIX } from './whiteouts.js';
import type { TarHeader, TarReader } from './tarstream.js';
import type { SkippedEntry } from './model.js';

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

/**
 * Applies every entry `reader` yields to `root` (an absolute, symlink-free path). The reader's
 * and the applier's steps that are done at once return no promise, and none is awaited: an
 * await per step is a cost of 100,000 small files (issue 18).
 */
export async function applyLayer(root: string, reader: TarReader, options: LayerOptions): Promise<LayerResult> {
  const applier = new LayerApplier(root, options);
  for (;;) {
    const next = reader.next();
    const header = next instanceof Promise ? await next : next;
    if (!header) break;
    const applying = applier.apply(header, reader);
    if (applying) await applying;
  }
  await applier.finish();
  return { entries: applier.entries, skipped: applier.skipped };
}

class LayerApplier {
  entries = 0;
  readonly skipped: SkippedEntry[] = [];
  private readonly tree: LayerTree;
  private readonly dirs: LayerDirs;
  private readonly metadata: MetadataWriter;
  private readonly whiteouts: Whiteouts;

  constructor(root: string, private readonly options: LayerOptions) {
    this.tree = new LayerTree(root, { lowers: options.lowers, syscalls: options.syscalls, rootless: options.rootless });
    this.dirs = new LayerDirs(this.tree, { rootless: options.rootless, lowers: (options.lowers?.length ?? 0) > 0 });
    this.metadata = new MetadataWriter({ ...options, skipped: this.skipped });
    this.whiteouts = new Whiteouts({ tree: this.tree, dirs: this.dirs, form: options.whiteouts, opaqueXattr: options.opaqueXattr, syscalls: options.syscalls });
  }

  /** One entry; a promise only when it has work that is not done at once. */
  apply(header: TarHeader, reader: TarReader): Promise<void> | undefined {
    this.entries++;
    if (header.name.includes('\0')) throw new UnsupportedError(`layer entry "${header.name.replace(/\0/g, '\\0')}": NUL in the name`);
    const rel = cleanEntryName(header.name);
    if (rel === '') {
      // A symlink or file in place of the root would redirect everything after it (umoci's CVE-2021-29136).
      if (header.type !== 'directory') throw new UnsafeLayerError(`layer entry "${header.name}" would replace the root directory with a ${header.type} (refused)`);
      this.dirs.rootHeader(header);
      return;
    }
    if ((header.name.startsWith('/') || header.name.includes('..')) && climbsOutOfRoot(header.name)) this.options.warn(`layer entry "${header.name}" names a path outside the root; applied as "/${rel}" inside it`);
    const parent = this.tree.resolve(parentOf(rel), `layer entry "${header.name}"`);
    const base = baseOf(rel);
    if (base.startsWith(WHITEOUT_PREFIX)) return this.whiteouts.apply(header, parent, base);
    const path = joinRel(parent, base);
    this.dirs.ensure(parent, header.name);
    this.dirs.touch(parent);
    if (header.type === 'file') {
      const writing = this.writeFile(path, header, reader);
      this.dirs.markUpper(path);
      return writing;
    }
    return this.create(path, header).then((made) => {
      if (made) this.dirs.markUpper(path);
    });
  }

  finish(): Promise<void> {
    return this.dirs.finish(this.metadata);
  }

  /** Makes the entry (not a file) at its resolved path; false when it was skipped. */
  private async create(path: string, header: TarHeader): Promise<boolean> {
    const host = this.tree.hostPath(path);
    switch (header.type) {
      case 'directory':
        await this.directory(path, header);
        return true;
      case 'symlink':
        this.replacing(path, () => this.tree.symlink(path, header.linkname));
        await this.metadata.apply(path, host, header);
        return true;
      case 'hardlink':
        this.replacing(path, () => this.hardlink(path, header));
        return true;
      default: {
        const existing = this.tree.lstat(path);
        if (existing) this.remove(path, existing);
        return this.makeNode(path, header);
      }
    }
  }

  private async directory(path: string, header: TarHeader): Promise<void> {
    let existing: Stats | undefined;
    try {
      this.tree.mkdir(path, 0o700);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      existing = this.tree.lstat(path);
    }
    if (existing?.isDirectory()) {
      // A directory over a directory keeps it (and its content) and takes the new metadata.
      this.dirs.updated(path, header);
      return;
    }
    if (existing) {
      this.remove(path, existing);
      this.tree.mkdir(path, 0o700);
      // A directory over this layer's own whiteout must still hide the lower one's content.
      if (isWhiteoutDevice(existing) && this.options.whiteouts === 'overlay') await this.whiteouts.setOpaque(path);
    }
    this.dirs.made(path, header);
  }

  /**
   * Creates a path; when something is there already, removes it and creates again (the
   * spec's "remove, then recreate"). Trying first saves a lookup for nearly every entry.
   */
  private replacing<T>(path: string, create: () => T): T {
    try {
      return create();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    this.remove(path, this.tree.lstat(path) as Stats);
    return create();
  }

  private remove(rel: string, stats: Stats): void {
    this.dirs.remove(rel, stats);
  }

  /**
   * A file: created with its permission bits (less the umask), written, then given its owner
   * and mode only where the create did not already (issue 18: per-file calls are the cost of
   * 100,000 small files), and its times. A mode with setuid/setgid/sticky is set after the
   * chown, which would clear it. A promise only when the body is not all in the reader's chunk
   * at hand, or xattrs are to be set.
   */
  private writeFile(path: string, header: TarHeader, reader: TarReader): Promise<void> | undefined {
    const fd = this.replacing(path, () => this.tree.createFile(path, header.mode & 0o777 & ~UMASK));
    let reading: Promise<void> | undefined;
    try {
      reading = reader.readBody((data) => {
        for (let done = 0; done < data.length; ) done += writeSync(fd, data, done, data.length - done);
      });
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    if (reading) return this.closeFileAfter(reading, { fd, path, header });
    this.closeFile(fd, path, header);
    return this.metadata.applyXattrs(path, this.tree.hostPath(path), header);
  }

  private async closeFileAfter(reading: Promise<void>, file: { fd: number; path: string; header: TarHeader }): Promise<void> {
    try {
      await reading;
    } catch (err) {
      closeSync(file.fd);
      throw err;
    }
    this.closeFile(file.fd, file.path, file.header);
    await this.metadata.applyXattrs(file.path, this.tree.hostPath(file.path), file.header);
  }

  /** The owner and mode the create did not give, the times; then the fd is closed. */
  private closeFile(fd: number, path: string, header: TarHeader): void {
    try {
      if (!this.options.rootless && !this.ownedAlready(header, parentOf(path))) fchownSync(fd, header.uid, header.gid);
      if ((header.mode & 0o777 & ~UMASK) !== header.mode) fchmodSync(fd, header.mode);
      futimesSync(fd, header.atime ?? header.mtime, header.mtime);
    } finally {
      closeSync(fd);
    }
  }

  /** A new file already has the wanted owner: the caller's ids, in a directory that does not pass its group on (setgid). */
  private ownedAlready(header: TarHeader, parent: string): boolean {
    return header.uid === EUID && header.gid === EGID && !this.dirs.passesGroupOn(parent);
  }

  /** Devices need root; FIFOs do not. Returns false when the entry was skipped. */
  private async makeNode(path: string, header: TarHeader): Promise<boolean> {
    if (header.type !== 'fifo' && this.options.rootless) {
      this.skipped.push({ path: `/${path}`, reason: `${header.type} device ${header.devmajor}:${header.devminor}: creating device nodes needs root` });
      return false;
    }
    this.dirs.touch(parentOf(path));
    const kind = header.type === 'char' ? S_IFCHR : header.type === 'block' ? S_IFBLK : S_IFIFO;
    await this.tree.mknod(path, { mode: kind | 0o600, major: header.devmajor, minor: header.devminor });
    await this.metadata.apply(path, this.tree.hostPath(path), header);
    return true;
  }

  /**
   * A hardlink to an entry of this layer or a lower one. With overlay whiteouts the lower
   * layer is another (immutable, cached) layer dir: linked across, as ostree's checkouts share
   * inodes, so the merged tree shows one inode as the flat tree does; copied only across devices.
   */
  private hardlink(path: string, header: TarHeader): void {
    const rel = cleanEntryName(header.linkname);
    const target = rel === '' ? '' : joinRel(this.tree.resolve(parentOf(rel), `layer entry "${header.name}"`), baseOf(rel));
    const found = target === '' ? undefined : this.tree.lookup(target);
    if (!found) throw new UnsupportedError(`layer entry "${header.name}": hardlink to "${header.linkname}", which is not in this or a lower layer`);
    if (found.stats.isDirectory()) throw new UnsupportedError(`layer entry "${header.name}": hardlink to the directory "${header.linkname}"`);
    const source = `${found.dir}/${target}`;
    try {
      this.tree.link(source, path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EXDEV' || found.stats.isSymbolicLink()) throw err;
      this.tree.copyFile(source, path);
      this.metadata.copy(this.tree.hostPath(path), found.stats);
    }
  }
}

/** The ids and umask new files get from this process (the umask as /proc says; when unknown, all bits: always chmod). */
const EUID = process.geteuid?.() ?? -1;
const EGID = process.getegid?.() ?? -1;
const UMASK = readUmask();

function readUmask(): number {
  try {
    // Stryker disable next-line Regex,StringLiteral: a umask not read falls back to 0o777 ("always chmod"): the same tree, one more call per file.
    const line = /^Umask:\s*([0-7]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return line ? parseInt(line[1] as string, 8) : 0o777;
  } catch {
    return 0o777;
  }
}

export function isWhiteoutDevice(stats: Stats): boolean {
  return stats.isCharacterDevice() && stats.rdev === 0;
}
