/**
 * The tree a layer is applied to, and the ONLY way the applier changes it. Every call that
 * creates or removes something at a path tells the chroot-safe resolver (`changed`), which
 * forgets each cached resolution that looked at that path; so a resolution is never used
 * after a change that could alter it, whatever the change was (issue 12: a hardlink to a
 * symlink made a symlink the old cache did not hear of). Paths are relative to the root and
 * already resolved; the last component is never followed (O_NOFOLLOW, link(2), unlink(2)).
 */
import { chmodSync, constants, copyFileSync, linkSync, mkdirSync, openSync, readdirSync, rmdirSync, symlinkSync, unlinkSync, type Stats } from 'node:fs';
import { lstatOrMissing, RootResolver } from '../core/root-resolver.js';
import type { Syscalls } from '../core/syscalls.js';

export class LayerTree {
  private readonly resolver: RootResolver;
  private readonly syscalls: Syscalls;
  private readonly rootless: boolean;

  constructor(readonly root: string, options: { lowers?: string[]; syscalls: Syscalls; rootless: boolean }) {
    this.resolver = new RootResolver(root, options.lowers);
    this.syscalls = options.syscalls;
    this.rootless = options.rootless;
  }

  resolve(unsafe: string, what: string): string {
    return this.resolver.resolve(unsafe, what);
  }

  /** Where `rel` comes from in the merged view (this layer, or with lowers a layer below). */
  lookup(rel: string): { dir: string; stats: Stats } | undefined {
    return this.resolver.lookup(rel);
  }

  hostPath(rel: string): string {
    return this.resolver.hostPath(rel);
  }

  /** What is at `rel` in this layer's own directory (not the lowers), or undefined. */
  lstat(rel: string): Stats | undefined {
    return lstatOrMissing(this.hostPath(rel));
  }

  mkdir(rel: string, mode: number): void {
    mkdirSync(this.hostPath(rel), mode);
    this.resolver.changed(rel);
  }

  /** A new regular file (O_EXCL|O_NOFOLLOW: a new inode always, never written through a link that was there); its fd. */
  createFile(rel: string, mode: number): number {
    const fd = openSync(this.hostPath(rel), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
    this.resolver.changed(rel);
    return fd;
  }

  symlink(rel: string, target: string): void {
    symlinkSync(target, this.hostPath(rel));
    this.resolver.changed(rel);
  }

  /** A hardlink at `rel` to the host path `source` (link(2): a symlink source is linked, not followed). */
  link(source: string, rel: string): void {
    linkSync(source, this.hostPath(rel));
    this.resolver.changed(rel);
  }

  /** A copy of the host file `source` at `rel` (a hardlink across devices). */
  copyFile(source: string, rel: string): void {
    copyFileSync(source, this.hostPath(rel), constants.COPYFILE_EXCL);
    this.resolver.changed(rel);
  }

  async mknod(rel: string, node: { mode: number; major?: number; minor?: number }): Promise<void> {
    try {
      await this.syscalls.mknod(this.hostPath(rel), node.mode, node.major, node.minor);
    } finally {
      this.resolver.changed(rel);
    }
  }

  /** Removes `rel` (a whole tree for a directory), never following a symlink. */
  remove(rel: string, stats: Stats): void {
    try {
      if (stats.isDirectory()) removeTree(this.hostPath(rel), this.rootless);
      else unlinkSync(this.hostPath(rel));
    } finally {
      this.resolver.changed(rel);
    }
  }
}

/** rm -r that never follows a symlink; rootless, it first makes each directory writable. */
export function removeTree(path: string, makeWritable = process.getuid?.() !== 0): void {
  const stats = lstatOrMissing(path);
  if (!stats) return;
  if (!stats.isDirectory()) {
    unlinkSync(path);
    return;
  }
  if (makeWritable && (stats.mode & 0o700) !== 0o700) chmodSync(path, (stats.mode & 0o7777) | 0o700);
  for (const name of readdirSync(path)) removeTree(`${path}/${name}`, makeWritable);
  rmdirSync(path);
}
