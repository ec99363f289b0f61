/**
 * img-unpack's one operation: an image in the store → a root filesystem, flat (every layer
 * applied in order into one directory, like `umoci unpack`) or one directory per layer for a
 * multi-lowerdir overlay, cached in the store by diff_id and shared by every image that has
 * the layer. Each layer is decompressed as it streams, its uncompressed bytes checked against
 * the config's rootfs.diff_ids; nothing appears under its final name unless it is complete
 * and verified (unpacked into a temp dir beside it, renamed at the end).
 */
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { digestHex } from '../core/digest.js';
import { ClobberError, DigestMismatchError, HostError, NotFoundError, UnsupportedError, UsageError } from '../core/errors.js';
import { applyLayer } from './apply.js';
import { createTempTree, discardTempTree, releaseTempTree } from './temp-trees.js';
import { checkFingerprint, recordFingerprint } from './tree-fingerprint.js';
import { hostPlatform } from '../image/manifest.js';
import { formatReference, parseReference } from '../image/reference.js';
import { OciLayout, type StoreArea } from '../image/store/oci-layout.js';
import { NameNotExistError } from '../image/store/errors.js';
import { layoutImage } from '../image/transport/oci-source.js';
import { platformOf } from '../image/image.js';
import { layersOf } from '../image/copy.js';
import { REF_NAME_ANNOTATION } from '../image/model.js';
import { Syscalls } from '../core/syscalls.js';
import { layerCompression, TarReader } from './tarstream.js';
import { LayerStreams } from './layerstream.js';
import type { StoredImage, LayerDescriptor, Platform } from '../image/model.js';
import type { UnpackedRootfs, SkippedEntry } from './model.js';
import type { Progress } from '../core/progress.js';

export interface UnpackOptions {
  /** flat: the root filesystem (default: under the store, per image). layers: the dir that holds one dir per layer (default: the store's layer cache). */
  dest?: string;
  layers: boolean;
  /** Default: not running as root. */
  rootless?: boolean;
  progress?: Progress;
  warn?: (message: string) => void;
  debug?: (message: string) => void;
}

export async function unpackImage(image: StoredImage, options: UnpackOptions): Promise<UnpackedRootfs> {
  const rootless = options.rootless ?? process.getuid?.() !== 0;
  const diffIDs = image.config.rootfs?.diff_ids ?? [];
  if (diffIDs.length !== image.layers.length) {
    throw new UnsupportedError(`image ${image.reference}: ${image.layers.length} layers but the config lists ${diffIDs.length} diff_ids`);
  }
  const layers = image.layers.map((layer, i) => ({ ...layer, diffID: diffIDs[i] as string }));
  for (const layer of layers) layerCompression(layer.mediaType);
  const context: LayerContext = { image, rootless, syscalls: new Syscalls(), streams: new LayerStreams(), xattrsSet: new Map(), options };
  try {
    if (options.layers) return await unpackLayers(layers, context);
    return await unpackFlat(layers, context);
  } finally {
    await Promise.all([context.syscalls.close(), context.streams.close()]);
  }
}

interface LayerContext {
  image: StoredImage;
  rootless: boolean;
  syscalls: Syscalls;
  /** Decompresses and hashes layers on a thread of its own. */
  streams: LayerStreams;
  xattrsSet: Map<string, string[]>;
  options: UnpackOptions;
}

async function unpackFlat(layers: LayerDescriptor[], context: LayerContext): Promise<UnpackedRootfs> {
  const { image, options } = context;
  const dest = options.dest ? resolve(options.dest) : await storeArea(image, 'rootfs', digestHex(image.digest) + (context.rootless ? '-rootless' : ''));
  const section = (skipped: SkippedEntry[]): UnpackedRootfs => ({ mode: 'flat', path: dest, config: image.config, skipped });
  if (!options.dest && existsSync(dest)) {
    options.debug?.(`${dest}: already unpacked`);
    if (!context.rootless) checkFingerprint(dest, `image ${image.reference}: the flat tree`);
    return section(await readSkipped(dest));
  }
  if (!isMissingOrEmptyDir(dest)) throw new ClobberError(`--dest ${dest} exists and is not empty`, { hint: 'remove it, or choose another destination' });
  const skipped: SkippedEntry[] = [];
  // Only the default destination is shared with other img-unpacks of the same image.
  await buildInPlace(dest, { shared: !options.dest, rootless: context.rootless }, async (temp) => {
    for (const [index, layer] of layers.entries()) skipped.push(...(await unpackLayer(context, { root: temp, layer, index, whiteouts: 'flat' })));
    if (!options.dest) await writeSkipped(dest, skipped);
  });
  if (!options.dest && !context.rootless) recordFingerprint(dest);
  return section(skipped);
}

/**
 * Builds a tree in a temp dir beside `final` and renames it into place, so `final` is never
 * half-written; on failure the temp tree goes. Where `final` is shared (the store's caches),
 * another img-unpack that finished the same tree first wins: theirs is as good as ours.
 */
async function buildInPlace(final: string, options: { shared: boolean; rootless: boolean }, build: (temp: string) => Promise<void>): Promise<void> {
  const temp = await createTempTree(final, { rootless: options.rootless });
  try {
    await build(temp);
    await rename(temp, final).catch((err: NodeJS.ErrnoException) => {
      if (!options.shared || (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST')) throw err;
      discardTempTree(temp, options.rootless);
    });
    releaseTempTree(temp);
  } catch (err) {
    discardTempTree(temp, options.rootless);
    throw err;
  }
}

async function unpackLayers(layers: LayerDescriptor[], context: LayerContext): Promise<UnpackedRootfs> {
  const { image, options, rootless } = context;
  const paths: string[] = [];
  const skipped: SkippedEntry[] = [];
  const parent = options.dest ? resolve(options.dest) : undefined;
  if (parent) await mkdir(parent, { recursive: true });
  for (const [i, layer] of layers.entries()) {
    // Rootless overlay mounts read user.overlay.* xattrs (userxattr): a different on-disk form.
    const name = digestHex(layer.diffID) + (rootless ? '-userxattr' : '');
    const final = parent ? join(parent, name) : await storeArea(image, 'layers', name);
    paths.push(final);
    if (existsSync(final)) {
      options.debug?.(`layer ${layer.diffID}: already unpacked in ${final}`);
      options.progress?.skipped(`layer ${layer.digest.slice(7, 19)}`, 'already unpacked');
      if (!rootless && !parent) checkFingerprint(final, `layer ${layer.diffID}: its tree`);
      skipped.push(...(await readSkipped(final)));
      continue;
    }
    await buildInPlace(final, { shared: true, rootless }, async (temp) => {
      const layerSkipped = await unpackLayer(context, { root: temp, layer, index: i, whiteouts: 'overlay', lowers: [...paths.slice(0, -1)].reverse() });
      await writeSkipped(final, layerSkipped);
      skipped.push(...layerSkipped);
    });
    if (!rootless && !parent) recordFingerprint(final);
  }
  return { mode: 'layers', layers: paths, config: image.config, skipped, ...(rootless ? { userxattr: true } : {}) };
}

/** One layer of the image into `root`: flat onto what is there, or (overlay) as a dir of its own over `lowers` (top first). */
interface LayerJob {
  root: string;
  layer: LayerDescriptor;
  index: number;
  whiteouts: 'flat' | 'overlay';
  lowers?: string[];
}

async function unpackLayer(context: LayerContext, job: LayerJob): Promise<SkippedEntry[]> {
  const { options } = context;
  const { root, layer, index, whiteouts, lowers = [] } = job;
  const item = options.progress?.item(`layer ${layer.digest.slice(7, 19)}`);
  const path = blobPath(context.image, layer.digest);
  if (!existsSync(path)) throw new NotFoundError(`layer ${layer.digest} is not in the store (${path})`);
  const source = context.streams.open(path, layerCompression(layer.mediaType), layer.digest);
  source.onBytes = (n) => item?.add(n);
  try {
    const result = await applyLayer(root, new TarReader(source), {
      whiteouts,
      rootless: context.rootless,
      opaqueXattr: context.rootless ? 'user.overlay.opaque' : 'trusted.overlay.opaque',
      syscalls: context.syscalls,
      xattrsSet: whiteouts === 'flat' ? context.xattrsSet : new Map(),
      lowers,
      warn: (m) => options.warn?.(m),
    }).catch((err) => rewordHostError(err, context.rootless));
    // The diff_id covers the whole uncompressed stream, tar end blocks and padding included.
    const diffID = await source.digest();
    if (diffID !== layer.diffID) {
      throw new DigestMismatchError(`layer ${index + 1} (${layer.digest}): its uncompressed content has digest ${diffID}, but the image config's rootfs.diff_ids[${index}] is ${layer.diffID}`);
    }
    item?.done(`${result.entries} entries`);
    return result.skipped;
  } catch (err) {
    item?.failed('failed');
    source.close();
    throw err;
  }
}

/** Turns EPERM from a privileged call into the hint umoci gives. */
function rewordHostError(err: unknown, rootless: boolean): never {
  const code = (err as NodeJS.ErrnoException).code;
  if (!rootless && (code === 'EPERM' || code === 'EINVAL') && (err as NodeJS.ErrnoException).syscall && /chown|mknod|setxattr/.test(String((err as NodeJS.ErrnoException).syscall))) {
    throw new HostError(`${(err as NodeJS.ErrnoException).syscall} ${(err as NodeJS.ErrnoException).path}: ${code === 'EPERM' ? 'operation not permitted' : 'invalid argument (an id not mapped in this user namespace?)'}`, { hint: 'maybe run as a normal user for a rootless unpack?', cause: err });
  }
  throw err;
}

function blobPath(image: StoredImage, digest: string): string {
  // skopeo's dir: layout names blobs by their hex digest alone.
  return image.layout === 'dir' ? join(image.store, digestHex(digest)) : join(image.store, 'blobs', 'sha256', digestHex(digest));
}

async function storeArea(image: StoredImage, area: StoreArea, name: string): Promise<string> {
  if (image.layout !== 'oci') throw new UsageError(`the image is in a dir: layout (${image.store}), which keeps no unpacked trees: give --dest`);
  const layout = await OciLayout.open(image.store);
  const dir = layout.areaPath(area);
  await mkdir(dir, { recursive: true });
  return join(dir, name);
}

function isMissingOrEmptyDir(path: string): boolean {
  try {
    return readdirSync(path).length === 0;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT';
  }
}

/** What a cached tree could not hold (rootless), kept beside it so a reuse reports it too. */
function skippedFile(tree: string): string {
  return `${tree}.skipped.json`;
}

async function writeSkipped(tree: string, skipped: SkippedEntry[]): Promise<void> {
  if (skipped.length) await writeFile(skippedFile(tree), `${JSON.stringify(skipped)}\n`);
}

async function readSkipped(tree: string): Promise<SkippedEntry[]> {
  try {
    return JSON.parse(await readFile(skippedFile(tree), 'utf8')) as SkippedEntry[];
  } catch {
    return [];
  }
}

/** An image in the store by name (`img-unpack --store S --image REF`), described as img-fetch describes it. */
export async function readStoredImage(store: string, name: string, platform: Platform = hostPlatform()): Promise<StoredImage> {
  const layout = await OciLayout.open(store);
  const open = (n: string) => layoutImage(layout, n, { platform, description: `${store}:${n}` });
  const image = await open(name).catch(async (err) => {
    // Also accept the short forms img-fetch normalises (busybox → docker.io/library/busybox:latest).
    const normalized = normalizedName(name);
    if (normalized === undefined || normalized === name || !(err instanceof NameNotExistError)) throw err;
    return open(normalized).catch(() => Promise.reject(err));
  });
  const config = await image.config();
  const raw = image.rawManifest;
  return {
    reference: image.named.annotations?.[REF_NAME_ANNOTATION] ?? name,
    digest: raw.digest,
    store: resolve(store),
    layout: 'oci',
    manifest: { mediaType: raw.mediaType, digest: raw.digest, size: raw.body.length },
    configDigest: image.manifest.config.digest,
    config,
    layers: layersOf(image.manifest, config),
    platform: platformOf(config, platform),
  };
}

function normalizedName(name: string): string | undefined {
  try {
    return formatReference(parseReference(name));
  } catch {
    return undefined;
  }
}
