/**
 * A container's own directories beside the image store (OciLayout.areaPath('containers', id)):
 * upper (its changes), work (overlay's scratch space) and merged (its root when mounted), so a
 * container's state outlives one run until the user removes it (podman's containers/ID). The
 * container records the image it was made from (container.json): its upper dir holds changes to
 * that image, and another image under the same name is refused. Mounting and unmounting hold the
 * mount lock, so concurrent ovl-mounts check and mount one at a time.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { DriverChoice, OverlayMount } from './model.js';
import type { Change } from './diff.js';
import type { OciLayout } from '../image/store/oci-layout.js';
import { withMountLock } from './lock.js';
import { namespaceUsing } from './mountinfo.js';
import { isRootless, rootlessNamespace, unpackedTrees } from './owners.js';
import { HostError, UsageError } from '../core/errors.js';
import { removeRangeOwnedTree, type UserNamespaceMap } from '../core/userns.js';
import { listDir } from '../core/paths.js';

export interface ContainerDirs {
  id: string;
  dir: string;
  upper: string;
  work: string;
  merged: string;
}

/** A new id: 12 hex digits, like the short ids podman prints. */
export function newContainerId(): string {
  return randomBytes(6).toString('hex');
}

export function containerDirs(store: OciLayout, id: string): ContainerDirs {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(id)) throw new UsageError(`container name ${JSON.stringify(id)}: use letters, digits, _ . - (up to 128)`);
  const dir = store.areaPath('containers', id);
  return { id, dir, upper: join(dir, 'upper'), work: join(dir, 'work'), merged: join(dir, 'merged') };
}

export async function createContainerDirs(dirs: ContainerDirs, options: { readOnly: boolean }): Promise<void> {
  await mkdir(dirs.merged, { recursive: true });
  if (!options.readOnly) {
    await mkdir(dirs.upper, { recursive: true });
    await mkdir(dirs.work, { recursive: true });
  }
}

/** Removes a container's state (podman rm); the caller has unmounted it. */
export async function removeContainerDir(dir: string): Promise<void> {
  if (!isRootless()) return rm(dir, { recursive: true, force: true });
  // Files the container's other users made belong to the subordinate range: removed in the namespace.
  await removeRangeOwnedTree(dir);
}

export interface ContainerRootRequest {
  /** Lower dirs, top first. */
  lower: string[];
  /** Of `lower`, the dirs a piped img-unpack document named (rootless: they get the image's owners). */
  unpackedLower?: string[];
  /** The image's manifest digest, when a piped document names one: what the container records. */
  image?: string;
  upper?: string;
  work?: string;
  target?: string;
  readOnly: boolean;
  driver: DriverChoice;
  /** The container's name (default: a new id); its dirs are made under the store. */
  name?: string;
  storePath: string;
  /** Warnings for the user (rootless: why only one id is mapped, owners the mappings lack). */
  warn?: (message: string) => void;
}

/**
 * ovl-mount's one job: the overlay a container runs on. Whatever the user did not name
 * (upper, work, target) comes from the container's dirs under the store, made if missing;
 * the same name (or the same --upper) mounted again shows the earlier changes. A refused or
 * failed mount leaves no container dir it made behind.
 */
export async function mountContainerRoot(request: ContainerRootRequest): Promise<OverlayMount> {
  if (request.readOnly && (request.upper !== undefined || request.work !== undefined)) throw new UsageError('--read-only takes no --upper or --work');
  const store = await openStore(request.storePath);
  const owned = isRootless() ? unpackedTrees(request.lower, store, request.unpackedLower ?? []) : [];
  const userNamespace = isRootless() ? await rootlessNamespace(owned, store, request.warn, request.driver !== 'fuse' && owned.length > 0) : undefined;
  return withMountLock(overlayStateRoot(store), () => mountLocked(request, store, userNamespace));
}

async function mountLocked(request: ContainerRootRequest, store: OciLayout, userNamespace: UserNamespaceMap | undefined): Promise<OverlayMount> {
  const { mountOverlay } = await import('./overlay.js');
  const needsDirs = request.target === undefined || (!request.readOnly && request.upper === undefined);
  const dirs = needsDirs ? containerDirs(store, request.name ?? newContainerId()) : undefined;
  const made = dirs !== undefined && !existsSync(dirs.dir);
  try {
    if (dirs) await claimContainer(dirs, request);
    const section = await mountOverlay({
      lower: request.lower,
      upper: request.readOnly ? undefined : (request.upper ?? dirs?.upper),
      work: request.readOnly ? undefined : (request.work ?? dirs?.work),
      target: request.target ?? (dirs as ContainerDirs).merged,
      driver: request.driver,
      stateRoot: overlayStateRoot(store),
      userNamespace,
    });
    if (request.readOnly) section.readOnly = true;
    if (dirs) section.container = { id: dirs.id, dir: dirs.dir };
    return section;
  } catch (err) {
    if (made && dirs) await removeContainerDir(dirs.dir);
    throw err;
  }
}

/** What a container was made from: its image's manifest digest, else its lower dirs. */
export interface ContainerRecord {
  image?: string;
  lower: string[];
}

/** Makes the container's dirs and its record, or refuses a container of another image under the same name. */
async function claimContainer(dirs: ContainerDirs, request: ContainerRootRequest): Promise<void> {
  const file = join(dirs.dir, 'container.json');
  const wanted: ContainerRecord = { ...(request.image ? { image: request.image } : {}), lower: request.lower.map((l) => resolve(l)) };
  const recorded = readContainerRecord(file);
  if (recorded && !sameImage(recorded, wanted)) {
    throw new UsageError(`container ${dirs.id} was made from ${describeRecord(recorded)}, not ${describeRecord(wanted)}: its upper dir holds that image's changes`, { hint: `give another --name, or remove ${dirs.dir} first` });
  }
  await createContainerDirs(dirs, { readOnly: request.readOnly || request.upper !== undefined });
  if (!recorded) await writeFile(file, `${JSON.stringify(wanted)}\n`);
}

/** A container's record (`DIR/container.json`), or undefined when it has none that can be read. */
export function readContainerRecord(file: string): ContainerRecord | undefined {
  try {
    const record = JSON.parse(readFileSync(file, 'utf8')) as ContainerRecord;
    return Array.isArray(record.lower) ? record : undefined;
  } catch {
    return undefined;
  }
}

/** Each container dir of the store (containers/NAME), with its record when it has one that can be read. */
export function storeContainers(store: OciLayout): Array<{ name: string; dir: string; record?: ContainerRecord }> {
  return listDir(store.areaPath('containers')).map((name) => {
    const dir = store.areaPath('containers', name);
    return { name, dir, record: readContainerRecord(join(dir, 'container.json')) };
  });
}

function sameImage(a: ContainerRecord, b: ContainerRecord): boolean {
  if (a.image !== undefined && b.image !== undefined) return a.image === b.image;
  return a.lower.join(':') === b.lower.join(':');
}

function describeRecord(record: ContainerRecord): string {
  if (record.image) return `image ${record.image}`;
  return record.lower.length === 1 ? `lower dir ${record.lower[0]}` : `${record.lower.length} lower dirs (top ${record.lower[0]})`;
}

/**
 * Refuses to commit what is not a directory, or an upper dir onto another image than the one its
 * container was made from (container.json beside it, when it is a container's): its changes are
 * changes to that image.
 */
export async function checkUpperImage(upper: string, image: { digest: string; reference: string }): Promise<void> {
  const { requireDirectory } = await import('./checks.js');
  await requireDirectory(upper, 'upper dir');
  const recorded = readContainerRecord(join(resolve(upper), '..', 'container.json'));
  if (recorded?.image !== undefined && recorded.image !== image.digest) {
    throw new UsageError(`${upper} holds changes to image ${recorded.image}, not to ${image.reference} (${image.digest})`, { hint: 'commit it onto the image its container was made from' });
  }
}

/** Without --store, a piped image's store (where img-unpack cached its layers) holds the container too. */
export function pipedStore(flag: string | undefined, doc: { image?: { layout: string; store: string } } | undefined): string | undefined {
  return flag === undefined && doc?.image?.layout === 'oci' ? doc.image.store : undefined;
}

/**
 * The store and the overlay code are loaded when a mount is made or removed: ns-enter's hot
 * path (a run without --rm) needs neither.
 */
export async function openStore(path: string): Promise<OciLayout> {
  const { OciLayout } = await import('../image/store/oci-layout.js');
  return OciLayout.open(path, { create: true });
}

/** Where ovl-mount keeps per-mount scratch (short-name links) and its mount records while a mount exists. */
export function overlayStateRoot(store: OciLayout): string {
  return store.areaPath('overlay');
}

/** Unmounts a container's overlay; with `remove`, also deletes its dirs (podman run --rm). */
export async function unmountContainerRoot(mount: Pick<OverlayMount, 'target' | 'container' | 'mountedIn' | 'upper' | 'work'>, options: { storePath: string; remove: boolean }): Promise<void> {
  const { unmountOverlay } = await import('./overlay.js');
  const { stateDirFor } = await import('./short-names.js');
  const stateRoot = overlayStateRoot(await openStore(options.storePath));
  await withMountLock(stateRoot, async () => {
    if (mount.mountedIn !== 'container') await unmountOverlay(mount.target, stateRoot);
    else {
      // Mounted only inside the container's namespaces, gone with them: only the short-name links remain to remove.
      const running = namespaceUsing(mount);
      if (running) throw new HostError(`${mount.target}: target is busy`, { hint: `the container still runs: process ${running.pid} has its overlay mounted` });
      await rm(stateDirFor(stateRoot, mount.target), { recursive: true, force: true });
    }
  });
  if (options.remove && mount.container) await removeContainerDir(mount.container.dir);
}

/** What the container changed: from the piped `mount` section, or read back from the mount table at TARGET. */
export async function diffContainerRoot(mount: OverlayMount | undefined, target: string | undefined, storePath: string): Promise<Change[]> {
  const { describeMountedOverlay } = await import('./overlay.js');
  const { diffOverlay } = await import('./diff.js');
  let section = mount;
  if (!section) {
    if (target === undefined) throw new UsageError('--diff needs MERGED, or the ovl-mount document on stdin');
    section = await describeMountedOverlay(target, overlayStateRoot(await openStore(storePath)));
  }
  if (section.upper === undefined) throw new UsageError(`${section.target}: a read-only merge has no changes to show`);
  return diffOverlay(section.upper, section.lower);
}
