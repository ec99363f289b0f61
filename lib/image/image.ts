/**
 * The Image noun, as go-containerregistry's v1.Image is one: every source (a registry, an OCI
 * layout, a docker archive, the store) hands out an Image, and every sink (the store, skopeo's
 * dir:) takes one, so a copy is `source → sink` for any pair. The one walk from what a name
 * resolves to (an index or a manifest) through the platform to the image manifest is here.
 */
import { UnsupportedError } from '../core/errors.js';
import type { ItemProgress } from '../core/progress.js';
import { formatPlatform, parseManifest, selectPlatform } from './manifest.js';
import type { BlobWriter } from './store/blob-writer.js';
import type { Descriptor, ImageConfig, ImageManifest, Platform } from './model.js';
import type { ImageReference } from './reference.js';

/** A manifest's bytes as the source has them, with its media type and digest. */
export interface RawManifest {
  mediaType: string;
  digest: string;
  body: Buffer;
}

export interface BlobCopyOptions {
  progress: ItemProgress;
  signal: AbortSignal;
}

export interface Image {
  /** The source, as messages name it (`127.0.0.1:5000/lab/busybox:latest`, `oci:/path:name`). */
  readonly description: string;
  /** What the name resolved to: an index, or the image manifest itself. */
  readonly top: RawManifest;
  /** The image manifest as the source serves it (its media type the body's own). */
  readonly rawManifest: RawManifest;
  readonly manifest: ImageManifest;
  /** The name the image gets in a store unless the user gives one. */
  readonly defaultName: string;
  /** The registry repository its blobs come from (a registry source): the store records it, so a push to that registry mounts them. */
  readonly origin?: ImageReference;
  /** The config, parsed and verified against its digest. */
  config(): Promise<ImageConfig>;
  /** A blob (a layer as stored, compressed or not; the config) as a stream of its bytes. */
  openBlob(descriptor: Descriptor, signal?: AbortSignal): Promise<AsyncIterable<Buffer>>;
  /** Copies a blob into a verifying writer; a source may resume (a registry's Range requests). */
  copyBlob(descriptor: Descriptor, writer: BlobWriter, options: BlobCopyOptions): Promise<void>;
  /** Releases what the source holds open (connections). */
  close(): void;
}

/** What a source must answer for the walk: what its name resolves to, and manifests by descriptor. */
export interface ManifestReader {
  readonly description: string;
  top(): Promise<RawManifest>;
  manifest(descriptor: Descriptor): Promise<RawManifest>;
}

export interface ResolvedManifest {
  top: RawManifest;
  /** The image manifest; its mediaType is the body's own. */
  raw: RawManifest;
  manifest: ImageManifest;
}

/** index → the entry for `platform` → the image manifest; an index inside an index is refused. */
export async function resolveImageManifest(reader: ManifestReader, platform: Platform, debug?: (message: string) => void): Promise<ResolvedManifest> {
  const top = await reader.top();
  let raw = top;
  let parsed = parseManifest(top.body, top.mediaType, reader.description);
  if (parsed.kind === 'index') {
    const entry = selectPlatform(parsed.index, platform, reader.description);
    debug?.(`${reader.description}: ${formatPlatform(platform)} is ${entry.digest}`);
    raw = await reader.manifest(entry);
    parsed = parseManifest(raw.body, raw.mediaType, `${reader.description}@${entry.digest}`);
    if (parsed.kind !== 'image') throw new UnsupportedError(`${reader.description}: an index inside an index is not supported`);
  }
  if (parsed.kind !== 'image') throw new UnsupportedError(`${reader.description}: expected an image manifest`);
  return { top, raw: { ...raw, mediaType: parsed.mediaType }, manifest: parsed.manifest };
}

/** The platform an image is for, by its config (what the index said is only a claim). */
export function platformOf(config: ImageConfig, fallback: Platform): Platform {
  const platform: Platform = { os: config.os ?? fallback.os, architecture: config.architecture ?? fallback.architecture };
  if (config.variant) platform.variant = config.variant;
  return platform;
}

/** A blob from a stream into a writer, with progress; stops when the copy is aborted. */
export async function copyFromStream(source: AsyncIterable<Buffer>, writer: BlobWriter, options: BlobCopyOptions): Promise<void> {
  for await (const chunk of source) {
    if (options.signal.aborted) throw options.signal.reason;
    await writer.write(chunk);
    options.progress.add(chunk.length);
  }
}

/** What a sink did with one blob: sent it, found it there, mounted it from another repository, or finished an upload an earlier run began. */
export type BlobOutcome = 'sent' | 'skipped' | 'mounted' | 'resumed';

/** Where a copy puts an image: blobs already there are skipped; the rest is written all or nothing. */
export interface ImageSink {
  /** Where the image goes, as messages and documents name it. */
  readonly path: string;
  begin(): Promise<SinkWrite>;
}

/** A sink on this machine (the store, a dir: layout): its blobs are files, readable at blobPath. */
export interface LocalSink extends ImageSink {
  readonly layout: 'oci' | 'dir';
  hasBlob(digest: string, size?: number): Promise<boolean>;
  blobPath(digest: string): string;
}

/** One image being written into a sink. */
export interface SinkWrite {
  /** How a skipped blob is described: `already in the store`. */
  readonly already: string;
  hasBlob(digest: string, size?: number): Promise<boolean>;
  /** Copies a blob of `image` that hasBlob said is missing into the sink. */
  putBlob(image: Image, blob: Descriptor, options: BlobCopyOptions): Promise<Exclude<BlobOutcome, 'skipped'>>;
  /** A blob of this write (staged or in place) or of the sink, read whole (the config, a converted manifest). */
  readBlob(digest: string): Promise<Buffer>;
  /** Stages the image's manifest (converted if the sink needs it) beside the blobs; returns its descriptor there. */
  stageManifest(image: Image, name: string): Promise<Descriptor>;
  /** Lands the blobs, then the manifest, then (a store) its name. */
  commit(manifest: Descriptor, name: string, platform: Platform): Promise<void>;
  abort(): Promise<void>;
}

/** A blob into a file sink's verifying writer: committed whole, or nothing left. */
export async function putThroughWriter(writer: BlobWriter, image: Image, blob: Descriptor, options: BlobCopyOptions): Promise<'sent'> {
  try {
    await image.copyBlob(blob, writer, options);
    await writer.commit();
    return 'sent';
  } catch (err) {
    await writer.abort();
    throw err;
  }
}
