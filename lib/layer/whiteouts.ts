/**
 * Whiteout entries: `.wh.NAME` removes NAME as far as lower layers made it, `.wh..wh..opq`
 * the lower content of its directory. Flat, they are carried out in the one tree; overlay,
 * they are kept as overlayfs reads them (a 0/0 character device, the opaque xattr) in the
 * layer's own directory.
 */
import { readdirSync } from 'node:fs';
import { UnsafeLayerError, UnsupportedError } from '../core/errors.js';
import { joinRel } from '../core/root-resolver.js';
import { S_IFCHR, type Syscalls } from '../core/syscalls.js';
import type { LayerDirs } from './dirs.js';
import type { TarHeader } from './tarstream.js';
import type { LayerTree } from './tree.js';

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_WHITEOUT = '.wh..wh..opq';

export interface WhiteoutContext {
  tree: LayerTree;
  dirs: LayerDirs;
  form: 'flat' | 'overlay';
  /** The xattr overlayfs reads for an opaque directory. */
  opaqueXattr: string;
  syscalls: Syscalls;
}

export class Whiteouts {
  constructor(private readonly context: WhiteoutContext) {}

  /** A whiteout entry named `base` in the (resolved) directory `parent`. */
  async apply(header: TarHeader, parent: string, base: string): Promise<void> {
    const { tree, dirs, form } = this.context;
    if (base === OPAQUE_WHITEOUT) {
      if (form === 'overlay') {
        dirs.ensure(parent, header.name);
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
    if (form === 'flat') {
      this.removeLower(target, false);
      return;
    }
    dirs.ensure(parent, header.name);
    const existing = tree.lstat(target);
    if (!existing) {
      dirs.touch(parent);
      await tree.mknod(target, { mode: S_IFCHR });
    } else if (existing.isDirectory() && dirs.isUpper(target)) {
      // This layer's own directory stays, but what lower layers had in it goes: opaque.
      await this.setOpaque(target);
    }
  }

  async setOpaque(rel: string): Promise<void> {
    await this.context.syscalls.setxattr(this.context.tree.hostPath(rel), this.context.opaqueXattr, Buffer.from('y'));
  }

  /** Removes `rel` (or with keepSelf only its content) as far as lower layers made it. */
  private removeLower(rel: string, keepSelf: boolean): void {
    const { tree, dirs } = this.context;
    const stats = tree.lstat(rel);
    if (!stats) return;
    if (!keepSelf && !dirs.isUpper(rel)) {
      dirs.remove(rel, stats);
      return;
    }
    if (!stats.isDirectory()) return;
    for (const name of readdirSync(tree.hostPath(rel))) this.removeLower(joinRel(rel, name), false);
  }
}
