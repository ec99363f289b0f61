/**
 * A container's own directories beside the image store (OciLayout.areaPath('containers', id)):
 * upper (its changes), work (overlay's scratch space) and merged (its root when mounted), so a
 * container's state outlives one run until the user removes it (podman's containers/ID).
 */
import { randomBytes } from 'node:crypto';
import { openSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { OverlayMount } from '../mount/model.js';
import type { EarlierSteps } from './model.js';
import { UsageError } from '../core/errors.js';
import { runContainer, type ExitStatus } from './namespaces.js';
import { hasRunFlags, type RunFlags } from './runflags.js';
import type { RuntimeConfig } from './runtime-spec.js';
import { readRuntimeConfig } from './spec.js';
import { buildConfig } from './config-from-image.js';
import { directoryRoot, rootFromEarlierSteps, type ContainerRoot } from './earlier-steps.js';
import type { Change, DriverChoice } from '../mount/overlay.js';
import type { OciLayout } from '../image/store/store.js';
import { applyRecordedOwnership, checkUserNamespaces, removeRangeOwnedTree, rootlessMappings, type UserNamespaceMap } from '../core/userns.js';

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

/** Whether we run unprivileged: a rootless container (a user namespace maps us to root). */
export function isRootless(): boolean {
  return (process.geteuid?.() ?? 0) !== 0;
}

export interface ContainerRootRequest {
  /** Lower dirs, top first; or */
  lower: string[];
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
 * the same name (or the same --upper) mounted again shows the earlier changes.
 */
export async function mountContainerRoot(request: ContainerRootRequest): Promise<OverlayMount> {
  if (request.readOnly && (request.upper !== undefined || request.work !== undefined)) throw new UsageError('--read-only takes no --upper or --work');
  const needsDirs = request.target === undefined || (!request.readOnly && request.upper === undefined);
  const { mountOverlay } = await import('../mount/overlay.js');
  const store = await openStore(request.storePath);
  const dirs = needsDirs ? containerDirs(store, request.name ?? newContainerId()) : undefined;
  if (dirs) await createContainerDirs(dirs, { readOnly: request.readOnly || request.upper !== undefined });
  const userNamespace = isRootless() ? await rootlessNamespace(request.lower, store, request.warn, request.driver !== 'fuse') : undefined;
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
}

/** Without --store, a piped image's store (where img-unpack cached its layers) holds the container too. */
export function pipedStore(flag: string | undefined, doc: EarlierSteps | undefined): string | undefined {
  return flag === undefined && doc?.image?.layout === 'oci' ? doc.image.store : undefined;
}

/**
 * The store and the overlay code are loaded when a mount is made or removed: ns-enter's hot
 * path (a run without --rm) needs neither.
 */
async function openStore(path: string): Promise<OciLayout> {
  const { OciLayout } = await import('../image/store/store.js');
  return OciLayout.open(path, { create: true });
}

/** Where ovl-mount keeps per-mount scratch (short-name links) while a mount exists. */
export function overlayStateRoot(store: OciLayout): string {
  return store.areaPath('overlay');
}

/**
 * Not root: the user namespace the container will run in, and the image's owners given to
 * the files of `trees` in it (img-unpack's rootless mode recorded them in an xattr; chowned
 * from inside the namespace they land on the subordinate ids, so `ls -ln` in the container
 * shows the image's). Done once per tree; a tree done before costs one stat.
 */
export async function rootlessNamespace(trees: string[], store: OciLayout, warn: ((message: string) => void) | undefined, applyOwners: boolean): Promise<UserNamespaceMap> {
  checkUserNamespaces();
  const map = rootlessMappings();
  if (map.warning) warn?.(map.warning);
  if (applyOwners) await giveRecordedOwners(trees, map, store, warn);
  return map;
}

/**
 * oci-spec --rootless with a piped image, run by a user: the maps runc is to write (the
 * subordinate range too: runc runs newuidmap/newgidmap for more than one id), with the
 * image's owners given to a flat rootfs first (an overlay's lowers got them from ovl-mount).
 */
export async function rootlessBundleMappings(doc: EarlierSteps, storePath: string, warn: (message: string) => void): Promise<UserNamespaceMap> {
  const flat = !doc.mount && doc.rootfs?.mode === 'flat' && doc.rootfs.path ? [doc.rootfs.path] : [];
  return rootlessNamespace(flat, await openStore(storePath), warn, flat.length > 0);
}

async function giveRecordedOwners(trees: string[], map: UserNamespaceMap, store: OciLayout, warn: ((message: string) => void) | undefined): Promise<void> {
  const result = await applyRecordedOwnership(trees.map((t) => resolve(t)), map, ownershipMarkers(store));
  if (result.unmapped.length > 0) warn?.(`owners ${result.unmapped.join(', ')} are outside your subordinate id range: those files show as root's`);
}

/** Where applyRecordedOwnership notes the trees it has done. */
function ownershipMarkers(store: OciLayout): string {
  return store.areaPath('owners');
}

/** Unmounts a container's overlay; with `remove`, also deletes its dirs (podman run --rm). */
export async function unmountContainerRoot(mount: Pick<OverlayMount, 'target' | 'container' | 'mountedIn'>, options: { storePath: string; remove: boolean }): Promise<void> {
  const { stateDirFor, unmountOverlay } = await import('../mount/overlay.js');
  const stateRoot = overlayStateRoot(await openStore(options.storePath));
  if (mount.mountedIn !== 'container') await unmountOverlay(mount.target, stateRoot);
  // Mounted only inside the container's namespaces, gone with them: only the short-name links remain to remove.
  else await rm(stateDirFor(stateRoot, mount.target), { recursive: true, force: true });
  if (options.remove && mount.container) await removeContainerDir(mount.container.dir);
}

/** What the container changed: from the piped `mount` section, or read back from the mount table at TARGET. */
export async function diffContainerRoot(mount: OverlayMount | undefined, target: string | undefined, storePath: string): Promise<Change[]> {
  const { describeMountedOverlay, diffOverlay } = await import('../mount/overlay.js');
  let section = mount;
  if (!section) {
    if (target === undefined) throw new UsageError('--diff needs MERGED, or the ovl-mount document on stdin');
    section = await describeMountedOverlay(target, overlayStateRoot(await openStore(storePath)));
  }
  if (section.upper === undefined) throw new UsageError(`${section.target}: a read-only merge has no changes to show`);
  return diffOverlay(section.upper, section.lower);
}

export interface RunRequest {
  /** The piped document (ovl-mount's or img-unpack's), unless --rootfs or --bundle. */
  document?: EarlierSteps;
  /** --bundle DIR: run DIR/config.json as it is. */
  bundle?: string;
  /** --rootfs DIR: a root filesystem without a document. */
  rootfs?: string;
  flags: RunFlags;
  /** CMD ARGS after --: they replace the image's Cmd. */
  args: string[];
  /** --name: the container's name (its cgroup); default the piped container's id, else a new one. */
  name?: string;
}

export interface PreparedRun {
  config: RuntimeConfig;
  id: string;
  bundleDir?: string;
  /** What --rm unmounts and removes. */
  mount?: OverlayMount;
  /** Rootless: the user namespace's maps, and the trees the image's owners are given to before the run (a flat rootfs). */
  userNamespace?: UserNamespaceMap;
  ownedTrees?: string[];
  /** Why the root is read-only though no flag asked (the store's copy of the image). */
  notice?: string;
}

/** The config ns-enter runs: the bundle's, or built from the image config and the run flags (lib/spec.ts). */
export function prepareRun(request: RunRequest): PreparedRun {
  if (request.bundle !== undefined) {
    if (hasRunFlags({ ...request.flags, init: false, rm: false }) || request.args.length > 0) {
      throw new UsageError('--bundle runs DIR/config.json as it is: give run flags and the command to oci-spec --bundle instead');
    }
    const bundleDir = resolve(request.bundle);
    const config = readRuntimeConfig(join(bundleDir, 'config.json'));
    // Even a hand-written config gets the store's copy of an image read-only.
    const root = config.root?.path === undefined ? undefined : directoryRoot(resolve(bundleDir, config.root.path));
    const notice = root?.readOnly && config.root && !config.root.readonly ? root.notice : undefined;
    if (notice && config.root) config.root.readonly = true;
    return { config, id: request.name ?? newContainerId(), bundleDir, notice };
  }
  let source: ContainerRoot;
  if (request.rootfs !== undefined) source = directoryRoot(resolve(request.rootfs));
  else if (request.document) source = rootFromEarlierSteps(request.document);
  else throw new UsageError('no root filesystem: pipe ovl-mount or img-unpack in, or give --rootfs DIR or --bundle DIR');
  const flags = source.readOnly ? { ...request.flags, readOnly: true } : request.flags;
  // Not root: a user namespace maps us to root and, with a subordinate range, the image's other ids.
  const userNamespace = isRootless() ? rootlessMappings() : undefined;
  const config = buildConfig({
    image: source.image,
    rootfs: source.rootfs,
    flags,
    rootless: userNamespace !== undefined,
    idMappings: userNamespace,
    rootOverlay: source.overlay,
    lookupRoot: source.lookupRoot,
    args: request.args,
  });
  const mount = request.rootfs === undefined ? request.document?.mount : undefined;
  // A root that is not an overlay (its lowers were done by ovl-mount) gets the image's owners before it runs.
  const ownedTrees = userNamespace && !mount ? [source.rootfs] : undefined;
  const notice = request.flags.readOnly ? undefined : source.notice;
  return { config, id: request.name ?? mount?.container?.id ?? newContainerId(), mount, userNamespace, ownedTrees, notice };
}

/** Runs a prepared container; with --rm, then unmounts its overlay and removes its dirs (podman run --rm). */
export async function runPrepared(prepared: PreparedRun, options: { flags: RunFlags; storePath: string; stdinIsTerminal: boolean; stdin?: number; debug?: (m: string) => void; warn?: (m: string) => void }): Promise<ExitStatus> {
  if (prepared.notice) options.warn?.(prepared.notice);
  if (prepared.userNamespace) {
    checkUserNamespaces();
    if (prepared.userNamespace.warning) options.warn?.(prepared.userNamespace.warning);
    if (prepared.ownedTrees) await giveRecordedOwners(prepared.ownedTrees, prepared.userNamespace, await openStore(options.storePath), options.warn);
  }
  try {
    return await runContainer(prepared.config, { id: prepared.id, bundleDir: prepared.bundleDir, init: options.flags.init, stdinIsTerminal: options.stdinIsTerminal, stdin: options.stdin, overlayDir: prepared.mount?.optionsDir, debug: options.debug });
  } finally {
    if (options.flags.rm && prepared.mount) await unmountContainerRoot(prepared.mount, { storePath: options.storePath, remove: true });
  }
}

/**
 * The terminal, opened for reading, or undefined when there is none (CI, a daemon). The
 * tutorial's `img-fetch … | ovl-mount | ns-enter -- sh` hands ns-enter its document on stdin,
 * which is then used up: the container's shell reads the terminal instead, as `xargs -o` does.
 */
export function openTerminal(): number | undefined {
  try {
    return openSync('/dev/tty', 'r');
  } catch {
    return undefined;
  }
}
