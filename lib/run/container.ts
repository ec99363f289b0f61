/**
 * Running a container from what the earlier steps made: the config ns-enter runs (a bundle's,
 * or built from the piped document and the run flags), and the run itself; with --rm, the
 * container's overlay is unmounted and its dirs removed after (lib/mount/container.ts).
 */
import { openSync } from 'node:fs';
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
import { giveRecordedOwners, isRootless, rootlessNamespace } from '../mount/owners.js';
import { newContainerId, openStore, unmountContainerRoot } from '../mount/container.js';
import { requireMountedOverlay } from '../mount/mounted.js';
import { checkUserNamespaces, rootlessMappings, type UserNamespaceMap } from '../core/userns.js';

export { isRootless } from '../mount/owners.js';
export { pipedStore } from '../mount/container.js';

/**
 * oci-spec --rootless with a piped image, run by a user: the maps runc is to write (the
 * subordinate range too: runc runs newuidmap/newgidmap for more than one id), with the
 * image's owners given to a flat rootfs first (an overlay's lowers got them from ovl-mount).
 */
export async function rootlessBundleMappings(doc: EarlierSteps, storePath: string, warn: (message: string) => void): Promise<UserNamespaceMap> {
  const flat = !doc.mount && doc.rootfs?.mode === 'flat' && doc.rootfs.path ? [doc.rootfs.path] : [];
  return rootlessNamespace(flat, await openStore(storePath), warn, flat.length > 0);
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
  /** The image's reference, when a piped document named one (for listings of detached containers). */
  image?: string;
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
  if (request.rootfs === undefined && request.document?.mount) requireMountedOverlay(request.document.mount);
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
  // img-unpack's flat root (not an overlay: its lowers were done by ovl-mount; not --rootfs DIR, run as it is) gets the image's owners first.
  const ownedTrees = userNamespace && !mount && request.rootfs === undefined ? [source.rootfs] : undefined;
  const notice = request.flags.readOnly ? undefined : source.notice;
  return { config, id: request.name ?? mount?.container?.id ?? newContainerId(), mount, userNamespace, ownedTrees, notice, image: request.document?.image?.reference };
}

/** What comes before a prepared container runs: its notice, the user namespace checks, the image's owners given to a flat rootfs. */
export async function readyPrepared(prepared: PreparedRun, options: { storePath: string; warn?: (m: string) => void }): Promise<void> {
  if (prepared.notice) options.warn?.(prepared.notice);
  if (prepared.userNamespace) {
    checkUserNamespaces();
    if (prepared.userNamespace.warning) options.warn?.(prepared.userNamespace.warning);
    if (prepared.ownedTrees) await giveRecordedOwners(prepared.ownedTrees, prepared.userNamespace, await openStore(options.storePath), options.warn);
  }
}

/** Runs a prepared container; with --rm, then unmounts its overlay and removes its dirs (podman run --rm). */
export async function runPrepared(prepared: PreparedRun, options: { flags: RunFlags; storePath: string; stdinIsTerminal: boolean; stdin?: number; debug?: (m: string) => void; warn?: (m: string) => void }): Promise<ExitStatus> {
  await readyPrepared(prepared, options);
  try {
    return await runContainer(prepared.config, { id: prepared.id, bundleDir: prepared.bundleDir, init: options.flags.init, stdinIsTerminal: options.stdinIsTerminal, stdin: options.stdin, overlayDir: prepared.mount?.optionsDir, debug: options.debug, etcFiles: prepared.bundleDir === undefined });
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
