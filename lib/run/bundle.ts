/** oci-spec's one decision (runc's defaults, or the config built from the piped image) and the atomic write of DIR/config.json. */
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { EarlierSteps } from './model.js';
import { UnsupportedError, UsageError } from '../core/errors.js';
import { hasRunFlags, type RunFlags } from './runflags.js';
import type { RuntimeConfig } from './runtime-spec.js';
import { formatConfig, runcDefaultConfig, validateRuntimeConfig, type IdMappings } from './spec.js';
import { buildConfig } from './config-from-image.js';
import { withEtcFiles } from './etc-files.js';
import { withCatatonit } from './podman-flags.js';
import { rootFromEarlierSteps, type ContainerRoot } from './earlier-steps.js';
import { requireMountedOverlay } from '../mount/mounted.js';

export interface SpecRequest {
  /** The piped document, if any. */
  document?: EarlierSteps;
  /** --bundle DIR, absolute. */
  bundle?: string;
  flags: RunFlags;
  rootless: boolean;
  /** CMD ARGS (after --). */
  args: string[];
  /** Where a bare `oci-spec` looks for ./rootfs (runc spec's relative root.path). */
  cwd: string;
  /** Rootless with a piped image: the caller's whole maps (lib/userns.ts), so the image's other ids map too. */
  idMappings?: IdMappings;
}

export interface SpecResult {
  config: RuntimeConfig;
  /** The root filesystem on the host. */
  rootfs: string;
  /** No document, flags or command: exactly `runc spec`'s config. */
  bare: boolean;
  /** Why root.readonly is set though no flag asked (the store's copy of the image). */
  notice?: string;
}

/**
 * oci-spec's one decision: runc's default config when given nothing, else the config built
 * from the piped image and rootfs (or ./rootfs) and the flags. root.path stays relative
 * ("rootfs") when the root is the bundle's own rootfs dir, as runc writes it.
 */
export function configForRequest(request: SpecRequest): SpecResult {
  const bundleDir = request.bundle ?? request.cwd;
  const ownRootfs = join(bundleDir, 'rootfs');
  if (!request.document && !hasRunFlags(request.flags) && request.args.length === 0) {
    return { config: runcDefaultConfig({ rootless: request.rootless }), rootfs: ownRootfs, bare: true };
  }
  if (request.document?.mount) requireMountedOverlay(request.document.mount);
  const source: ContainerRoot = request.document ? rootFromEarlierSteps(request.document) : { rootfs: ownRootfs, readOnly: false };
  if (source.overlay && !request.rootless) {
    throw new UsageError(`mount.target ${source.rootfs}: the overlay was left for the runtime to mount in a user namespace (ovl-mount ran without root)`, { hint: 'use oci-spec --rootless' });
  }
  if (source.overlay && request.document?.mount?.optionsDir) {
    throw new UnsupportedError(`mount.options: ${request.document.mount.lower.length} lower dirs need ovl-mount's short names (over one page of options), which a config's mount cannot carry`, { hint: 'run it with ns-enter, or flatten the image with img-unpack without --layers' });
  }
  const flags = source.readOnly ? { ...request.flags, readOnly: true } : request.flags;
  const built = buildConfig({ image: source.image, rootfs: source.rootfs, flags, rootless: request.rootless, args: request.args, idMappings: request.idMappings, rootOverlay: source.overlay, lookupRoot: source.lookupRoot });
  if (resolve(source.rootfs) === resolve(ownRootfs) && built.root) built.root.path = 'rootfs';
  // --init: ns-enter runs its own init; a config for any runtime carries catatonit in it (podman's --init).
  const config = request.flags.init ? withCatatonit(built) : built;
  return { config, rootfs: source.rootfs, bare: false, notice: request.flags.readOnly ? undefined : source.notice };
}

/**
 * Validates the config, then writes DIR/config.json atomically (a temporary file renamed
 * over it), so a failed run leaves no half-written config behind. Returns the file's path.
 */
export async function writeBundleConfig(bundle: string, built: RuntimeConfig, options: { etcFiles: boolean }): Promise<string> {
  validateRuntimeConfig(built, `${bundle}/config.json (generated)`);
  await mkdir(bundle, { recursive: true });
  // A config built from an image gets podman's /etc/hosts, hostname, resolv.conf and .containerenv, from the bundle dir (podman's userdata).
  const config = options.etcFiles ? withEtcFiles(built, bundle) : built;
  const file = join(bundle, 'config.json');
  const temporary = join(bundle, `.config.json.${process.pid}.tmp`);
  try {
    await writeFile(temporary, formatConfig(config), { mode: 0o644 });
    await rename(temporary, file);
  } catch (err) {
    await rm(temporary, { force: true });
    throw err;
  }
  return file;
}
