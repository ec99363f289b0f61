/**
 * The copy: an Image from any source into any sink, `source → sink`. The config, the layers
 * and the manifest are written at once, each blob verified as it streams; blobs the sink has
 * are skipped; the first failure stops the rest and leaves the sink as it was.
 */
import { describeError, UnsupportedError } from '../core/errors.js';
import { SILENT_ITEM, type Progress } from '../core/progress.js';
import { parseConfig } from './manifest.js';
import { platformOf, type BlobOutcome, type Image, type ImageSink, type LocalSink, type SinkWrite } from './image.js';
import type { Descriptor, ImageConfig, ImageManifest, LayerDescriptor, Platform, StoredImage } from './model.js';

export interface CopyOptions {
  /** The name the image gets in the sink. */
  name: string;
  /** How the pipe document names the source (`docker://…`, `oci:…`). */
  source: string;
  /** The platform asked for: what a config that names none is taken to be. */
  platform: Platform;
  concurrency?: number;
  progress?: Progress;
  /** Stops the copy (img-fetch --timeout): every source, not only a registry, stops with it. */
  signal?: AbortSignal;
  /** Told what became of each blob (img-push says what it sent, skipped, mounted, resumed). */
  onBlob?: (blob: Descriptor, outcome: BlobOutcome) => void;
}

/** What a sink holds after a copy: the manifest as written there (converted or not), the config, the platform. */
export interface WrittenImage {
  stored: Descriptor;
  storedManifest: ImageManifest;
  config: ImageConfig;
  platform: Platform;
}

/** The copy into a local sink, described for the pipe document's image section. */
export async function copyImage(image: Image, sink: LocalSink, options: CopyOptions): Promise<StoredImage> {
  return describeStored({ image, sink, options, ...(await writeImage(image, sink, options)) });
}

/** The copy into any sink: blobs first (the config read back and checked), the manifest, then the name. */
export async function writeImage(image: Image, sink: ImageSink, options: CopyOptions): Promise<WrittenImage> {
  const { manifest, description } = image;
  const write = await sink.begin();
  try {
    const staging = write.stageManifest(image, options.name);
    const blobs = [{ blob: manifest.config, kind: 'config' }, ...manifest.layers.map((blob) => ({ blob, kind: 'layer' }))];
    const copying = copyBlobs(image, write, blobs, options);
    const [stored] = await Promise.all([staging, copying]).catch(async (err) => {
      await Promise.allSettled([staging, copying]);
      throw err;
    });
    const config = parseConfig(await write.readBlob(manifest.config.digest), `config ${manifest.config.digest}`);
    const diffIDs = config.rootfs?.diff_ids ?? [];
    if (diffIDs.length !== manifest.layers.length) {
      throw new UnsupportedError(`${description}: the manifest has ${manifest.layers.length} layers but the config lists ${diffIDs.length} diff_ids`);
    }
    const platform = platformOf(config, options.platform);
    const storedManifest = stored.digest === image.rawManifest.digest ? manifest : (JSON.parse((await write.readBlob(stored.digest)).toString('utf8')) as ImageManifest);
    await write.commit(stored, options.name, platform);
    return { stored, storedManifest, config, platform };
  } catch (err) {
    await write.abort();
    throw err;
  }
}

interface StoredParts extends WrittenImage {
  image: Image;
  sink: LocalSink;
  options: CopyOptions;
}

function describeStored({ image, sink, stored, storedManifest, config, platform, options }: StoredParts): StoredImage {
  return {
    source: options.source,
    reference: options.name,
    digest: stored.digest,
    sourceDigest: image.top.digest,
    store: sink.path,
    layout: sink.layout,
    manifest: stored,
    configDigest: image.manifest.config.digest,
    config,
    layers: layersOf(storedManifest, config),
    platform,
  };
}

/** The manifest's layers with the config's diff_ids beside them. */
export function layersOf(manifest: ImageManifest, config: ImageConfig): LayerDescriptor[] {
  const diffIDs = config.rootfs?.diff_ids ?? [];
  return manifest.layers.map((layer, i) => ({ mediaType: layer.mediaType, digest: layer.digest, size: layer.size, diffID: diffIDs[i] ?? '' }));
}

interface BlobToCopy {
  blob: Descriptor;
  kind: string;
}

/**
 * Copies blobs that are not there yet, at most `concurrency` at a time. Each download has a
 * signal of its own (no listeners pile up on one signal); the first failure aborts them all.
 */
async function copyBlobs(image: Image, write: SinkWrite, blobs: BlobToCopy[], options: CopyOptions): Promise<void> {
  const queue = blobs.filter((b, i) => blobs.findIndex((o) => o.blob.digest === b.blob.digest) === i);
  const running = new Set<AbortController>();
  let failure: unknown;
  const stop = (reason: unknown) => {
    if (failure !== undefined) return;
    failure = reason;
    for (const other of running) other.abort(reason);
  };
  // One listener for the whole copy, not one per blob.
  const onAbort = () => stop(options.signal?.reason);
  if (options.signal?.aborted) onAbort();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const worker = async () => {
    for (let next = queue.shift(); next && failure === undefined; next = queue.shift()) {
      const controller = new AbortController();
      running.add(controller);
      try {
        await copyBlob(image, write, next, { options, signal: controller.signal });
      } catch (err) {
        stop(err);
      } finally {
        running.delete(controller);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 6) }, worker));
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
  if (failure !== undefined) throw failure;
}

async function copyBlob(image: Image, write: SinkWrite, { blob, kind }: BlobToCopy, { options, signal }: { options: CopyOptions; signal: AbortSignal }): Promise<void> {
  const label = `${kind} ${blob.digest.slice(7, 19)}`;
  if (await write.hasBlob(blob.digest, blob.size)) {
    options.progress?.skipped(label, write.already);
    options.onBlob?.(blob, 'skipped');
    return;
  }
  const item = options.progress?.item(label, blob.size) ?? SILENT_ITEM;
  try {
    const outcome = await write.putBlob(image, blob, { progress: item, signal });
    item.done(outcome === 'sent' ? undefined : outcome);
    options.onBlob?.(blob, outcome);
  } catch (err) {
    item.failed(signal.aborted ? 'stopped' : `failed: ${describeError(err)}`);
    throw err;
  }
}
