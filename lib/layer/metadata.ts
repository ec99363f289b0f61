/**
 * An entry's metadata from its tar header: owner, mode, xattrs and times, in the order the
 * kernel needs (chown clears setuid and security.capability, so it comes first), with what
 * a rootless unpack cannot give recorded the way umoci records it (user.rootlesscontainers)
 * or listed as skipped.
 */
import { chmodSync, lchownSync, lutimesSync, type Stats } from 'node:fs';
import type { Syscalls } from '../core/syscalls.js';
import type { SkippedEntry } from './model.js';
import type { TarHeader } from './tarstream.js';

/** umoci's xattr for the owner a rootless unpack could not give a file (rootlesscontainers.proto). */
export const ROOTLESS_XATTR = 'user.rootlesscontainers';

/** Host-specific xattrs that never come from an image (umoci skips the same ones). */
const HOST_XATTRS = new Set(['security.selinux', 'system.nfs4_acl']);

export interface MetadataOptions {
  rootless: boolean;
  /** overlay: a layer may not forge the overlayfs xattrs that whiteouts are made of. */
  whiteouts: 'flat' | 'overlay';
  syscalls: Syscalls;
  /** Names of the xattrs set from headers, by path, over every layer applied to this root (an update replaces them). */
  xattrsSet: Map<string, string[]>;
  skipped: SkippedEntry[];
  warn(message: string): void;
}

export class MetadataWriter {
  constructor(private readonly options: MetadataOptions) {}

  /** Owner, then mode (chown clears setuid), then xattrs (chown clears security.capability), then times. */
  async apply(rel: string, host: string, header: TarHeader): Promise<void> {
    if (!this.options.rootless) lchownSync(host, header.uid, header.gid);
    if (header.type !== 'symlink') chmodSync(host, header.mode);
    await this.applyXattrs(rel, host, header);
    lutimesSync(host, header.atime ?? header.mtime, header.mtime);
  }

  /** The metadata `stats` has (a copy made of a hardlink across devices, an implicit dir like its lower one). */
  copy(host: string, stats: Stats): void {
    if (!this.options.rootless) lchownSync(host, stats.uid, stats.gid);
    if (!stats.isSymbolicLink()) chmodSync(host, stats.mode & 0o7777);
    lutimesSync(host, stats.atimeMs / 1000, stats.mtimeMs / 1000);
  }

  /** The header's xattrs, those set before and no longer wanted removed; no promise when there is nothing to do. */
  applyXattrs(rel: string, host: string, header: TarHeader): Promise<void> | undefined {
    // Nearly every entry: no xattrs wanted, none set before.
    if (header.xattrs.size === 0 && !this.options.rootless && !this.options.xattrsSet.has(rel)) return undefined;
    return this.setXattrs(rel, host, header);
  }

  private async setXattrs(rel: string, host: string, header: TarHeader): Promise<void> {
    const wanted = this.wantedXattrs(rel, header);
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
        this.options.skipped.push({ path: `/${rel}`, reason: name === ROOTLESS_XATTR ? `owner ${header.uid}:${header.gid} not recorded: no user xattrs on a ${header.type}` : `xattr ${name}: not allowed on a ${header.type}` });
      }
    }
    if (set.length) this.options.xattrsSet.set(rel, set);
    else this.options.xattrsSet.delete(rel);
  }

  private wantedXattrs(rel: string, header: TarHeader): Map<string, Buffer> {
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
        this.options.skipped.push({ path: `/${rel}`, reason: `xattr ${name}: setting it needs root` });
        continue;
      }
      wanted.set(name, value);
    }
    if (this.options.rootless) {
      const owner = rootlessOwner(header.uid, header.gid);
      if (owner) wanted.set(ROOTLESS_XATTR, owner);
    }
    return wanted;
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
