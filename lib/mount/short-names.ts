/**
 * The option string for overlay. Paths are absolute when they fit in a page and need no
 * escaping; otherwise each lower dir gets a short numbered symlink in the target's state dir
 * and the mount runs there with relative names (containers/storage's answer to the page limit:
 * 128 lowers cost ~500 bytes however long their paths are). The links live as long as the mount.
 */
import { createHash } from 'node:crypto';
import { mkdir, rm, symlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { OverlayLayout } from './model.js';
import { UsageError } from '../core/errors.js';

/** The mount data of mount(2) is one page; the kernel refuses longer option strings. */
const MOUNT_DATA_LIMIT = 4095;

/** Per-target scratch dir: the short-name links, the empty lower of a one-layer read-only merge, the mount record. */
export function stateDirFor(stateRoot: string, target: string): string {
  return join(stateRoot, createHash('sha256').update(resolve(target)).digest('hex').slice(0, 16));
}

/** Where a state dir keeps its short-name links (the dir a relative option string is relative to). */
export function linksDirOf(stateDir: string): string {
  return join(stateDir, 'l');
}

/** The empty lower dir that makes a one-layer read-only merge two layers. */
export function emptyLowerOf(stateDir: string): string {
  return join(stateDir, 'empty');
}

export interface OverlayOptions {
  options: string;
  /** Where the mount must run when the names are relative. */
  cwd?: string;
}

export async function overlayOptions(layout: OverlayLayout): Promise<OverlayOptions> {
  const { upper, work } = layout;
  const lowers = [...layout.lower];
  if (upper === undefined && lowers.length === 1) {
    // The kernel wants two lowers for a merge without an upper; an empty one changes nothing.
    const empty = emptyLowerOf(layout.stateDir);
    await mkdir(empty, { recursive: true });
    lowers.push(empty);
  }
  const tail = upper !== undefined && work !== undefined ? `,upperdir=${upper},workdir=${work}` : '';
  const direct = `lowerdir=${lowers.join(':')}${tail}`;
  const needsEscape = [...lowers, upper ?? '', work ?? ''].some((p) => /[,:\\]/.test(p));
  if (direct.length <= MOUNT_DATA_LIMIT && !needsEscape) return { options: direct };
  const links = linksDirOf(layout.stateDir);
  await rm(links, { recursive: true, force: true });
  await mkdir(links, { recursive: true });
  const names = await Promise.all(lowers.map(async (dir, i) => {
    const name = i.toString(36);
    await symlink(dir, join(links, name));
    return name;
  }));
  const options = `lowerdir=${names.join(':')}${await shortTail(layout, links, names.join(':').length)}`;
  if (options.length > MOUNT_DATA_LIMIT) throw new UsageError(`${lowers.length} lower dirs do not fit in one page of mount options even with short names`);
  return { options, cwd: links };
}

/**
 * upperdir= and workdir= past the page limit: absolute when they need no escaping and fit (the
 * mount table then names the upper dir, so another mount of it is found), else short links too.
 */
async function shortTail(layout: OverlayLayout, links: string, lowerLength: number): Promise<string> {
  const { upper, work } = layout;
  if (upper === undefined || work === undefined) return '';
  const absolute = `,upperdir=${upper},workdir=${work}`;
  if (!/[,:\\]/.test(upper + work) && 'lowerdir='.length + lowerLength + absolute.length <= MOUNT_DATA_LIMIT) return absolute;
  await symlink(upper, join(links, 'U'));
  await symlink(work, join(links, 'W'));
  return ',upperdir=U,workdir=W';
}
