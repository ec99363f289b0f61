/**
 * What a layer knows about its directories while it is applied: which exist (made as
 * implicit parents with 0755, as umoci's MkdirAll), which it made or changed (their times are
 * noted before the first change and restored, or set from their header, after the content:
 * deepest first), and which paths this layer created (whiteouts remove only lower content).
 */
import { chmodSync, lstatSync, lutimesSync, type Stats } from 'node:fs';
import { UnsupportedError } from '../core/errors.js';
import { parentOf } from '../core/root-resolver.js';
import type { MetadataWriter } from './metadata.js';
import type { TarHeader } from './tarstream.js';
import type { LayerTree } from './tree.js';

/** What a directory gets once the layer is done: its header's metadata, or the times (and mode) it had before. */
interface DirFixup {
  header?: TarHeader;
  /** overlay: an implicit parent takes the metadata the same directory has in the layers below. */
  copyOf?: Stats;
  atime?: number;
  mtime?: number;
  mode?: number;
}

export class LayerDirs {
  /** Paths this layer created, and their ancestors: whiteouts only remove what lower layers made. */
  private readonly upper = new Set<string>();
  private readonly fixups = new Map<string, DirFixup>();
  /** Directories known to exist as directories (and, rootless, to be writable) in this layer. */
  private readonly ready = new Set<string>();
  /** Directories whose content this layer changes, with their old times noted (or made by this layer). */
  private readonly touched = new Set<string>();
  /** Directories (from lower layers) with the setgid bit: what is created in them takes their group. */
  private readonly setgid = new Set<string>();

  constructor(private readonly tree: LayerTree, private readonly options: { rootless: boolean; lowers: boolean }) {}

  /** Creates the missing directories of a resolved path. */
  ensure(rel: string, what: string): void {
    if (this.ready.has(rel)) return;
    const parts = rel === '' ? [] : rel.split('/');
    for (let i = 0; i <= parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (this.ready.has(dir)) continue;
      const stats = this.tree.lstat(dir);
      if (!stats) {
        this.touch(parentOf(dir));
        const lower = this.options.lowers ? this.tree.lookup(dir) : undefined;
        this.tree.mkdir(dir, 0o755);
        chmodSync(this.tree.hostPath(dir), 0o755);
        this.touched.add(dir);
        if (lower?.stats.isDirectory()) this.fixup(dir).copyOf = lower.stats;
      } else if (!stats.isDirectory()) {
        throw new UnsupportedError(`layer entry "${what}": "/${dir}" is not a directory`);
      }
      this.ready.add(dir);
    }
  }

  /** A directory this layer made from an entry of its own. */
  made(rel: string, header: TarHeader): void {
    this.ready.add(rel);
    this.touched.add(rel);
    this.fixup(rel).header = header;
  }

  /** A directory entry over an existing directory: it keeps its content and takes the header's metadata. */
  updated(rel: string, header: TarHeader): void {
    this.fixup(rel).header = header;
  }

  /**
   * About to change what is in directory `rel`: remember its times (restored at the end
   * unless a header gives new ones) and, rootless, make sure we may write into it.
   */
  touch(rel: string): void {
    if (this.touched.has(rel)) return;
    this.touched.add(rel);
    const fixup = this.fixup(rel);
    const host = this.tree.hostPath(rel);
    const stats = lstatSync(host);
    fixup.atime = stats.atimeMs / 1000;
    fixup.mtime = stats.mtimeMs / 1000;
    if (stats.mode & 0o2000) this.setgid.add(rel);
    if (this.options.rootless && (stats.mode & 0o700) !== 0o700) {
      fixup.mode = stats.mode & 0o7777;
      chmodSync(host, fixup.mode | 0o700);
    }
  }

  /**
   * True when a file created in `rel` takes the directory's group (setgid). Only directories
   * from lower layers can be: this layer's own get their mode after their content.
   */
  passesGroupOn(rel: string): boolean {
    return this.setgid.has(rel);
  }

  markUpper(rel: string): void {
    for (let path = rel; path !== '' && !this.upper.has(path); path = parentOf(path)) this.upper.add(path);
  }

  isUpper(rel: string): boolean {
    return this.upper.has(rel);
  }

  /** Removes `rel` from the tree, noting its directory's times first and forgetting what we knew below it. */
  remove(rel: string, stats: Stats): void {
    this.touch(parentOf(rel));
    this.tree.remove(rel, stats);
    if (stats.isDirectory()) this.forgetTree(rel);
  }

  /** Drops what we knew about a removed directory and everything under it. */
  private forgetTree(rel: string): void {
    const prefix = `${rel}/`;
    for (const set of [this.ready, this.upper, this.touched, this.setgid]) for (const key of set) if (key === rel || key.startsWith(prefix)) set.delete(key);
    for (const key of this.fixups.keys()) if (key === rel || key.startsWith(prefix)) this.fixups.delete(key);
  }

  /** Directory metadata last: chown before chmod (chown clears setuid), times after the contents, deepest first. */
  async finish(metadata: MetadataWriter): Promise<void> {
    const depth = (rel: string) => (rel === '' ? 0 : rel.split('/').length);
    const dirs = [...this.fixups].sort((a, b) => depth(b[0]) - depth(a[0]));
    for (const [rel, fixup] of dirs) {
      if (!this.tree.lstat(rel)?.isDirectory()) continue;
      const host = this.tree.hostPath(rel);
      if (fixup.header) {
        await metadata.apply(rel, host, fixup.header);
      } else if (fixup.copyOf) {
        metadata.copy(host, fixup.copyOf);
      } else {
        if (fixup.mode !== undefined) chmodSync(host, fixup.mode);
        if (fixup.mtime !== undefined) lutimesSync(host, fixup.atime ?? fixup.mtime, fixup.mtime);
      }
    }
  }

  /** The root entry (`./`): its metadata, applied at the end like any directory's. */
  rootHeader(header: TarHeader): void {
    this.fixup('').header = header;
  }

  private fixup(rel: string): DirFixup {
    let fixup = this.fixups.get(rel);
    if (!fixup) this.fixups.set(rel, (fixup = {}));
    return fixup;
  }
}
