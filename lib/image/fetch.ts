/**
 * img-fetch's one operation: copy an image (manifest, config, layers) from a source — a
 * registry, an OCI layout, a `docker save` archive — into the store or a skopeo `dir:`
 * layout, verifying every blob as it streams, and describe it for the next command.
 */
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { createHash } from 'node:crypto';
import { indexTar, memberName, type TarMember } from './transport/archive.js';
import { lookupCredentials, type Credentials } from './transport/auth.js';
import { digestOf } from '../core/digest.js';
import { describeError, NotFoundError, UnsupportedError } from '../core/errors.js';
import { formatPlatform, hostPlatform, isDockerManifest, MANIFEST_ACCEPT, parseConfig, parseManifest, selectPlatform, toOciManifest } from './manifest.js';
import { formatReference, formatSource, manifestReference, parseReference, storeNameForLayoutImage, type ImageSource } from './reference.js';
import { Registry, type FetchedManifest } from './transport/registry.js';
import { DirLayout, OciLayout, type BlobWriter } from './store/store.js';
import { MEDIA_TYPES, REF_NAME_ANNOTATION, type ImageManifest } from './model.js';
import { SILENT_ITEM, type ItemProgress, type Progress } from '../core/progress.js';
import type { Descriptor, ImageConfig, StoredImage, LayerDescriptor, Platform } from './model.js';

export interface FetchOptions {
  /** The store (an OCI layout, created if missing); ignored when `dir` is given. */
  store: string;
  /** Write skopeo's dir: layout here instead of the store. */
  dir?: string;
  /** The name to give the image in the store (default: its reference). */
  name?: string;
  tlsVerify: boolean;
  credentials?: Credentials;
  platform?: Platform;
  concurrency?: number;
  retries?: number;
  env?: NodeJS.ProcessEnv;
  progress?: Progress;
  /** Ends the pull when it aborts (--timeout), with its reason. */
  signal?: AbortSignal;
  debug?: (message: string) => void;
}

/** Where an image's content comes from. */
interface ContentSource {
  readonly description: string;
  /** The manifest the source names (by tag, digest or name); an index or an image manifest. */
  topManifest(): Promise<FetchedManifest>;
  manifest(descriptor: Descriptor): Promise<FetchedManifest>;
  copyBlob(descriptor: Descriptor, writer: BlobWriter, progress: ItemProgress, signal: AbortSignal): Promise<void>;
  /** The name the image gets in the store unless --name says otherwise. */
  defaultName(top: FetchedManifest): string;
  close(): void;
}

/** Where the content goes: blobs already there are skipped; the rest is written all or nothing. */
interface Destination {
  readonly path: string;
  readonly layout: 'oci' | 'dir';
  /** A blob that is in place already (readable at blobPath). */
  hasBlob(digest: string, size?: number): Promise<boolean>;
  blobPath(digest: string): string;
  begin(): Promise<DestinationWrite>;
}

interface DestinationWrite {
  hasBlob(digest: string, size?: number): Promise<boolean>;
  blobPath(digest: string): string;
  blobWriter(expected: { digest: string; size?: number }): Promise<BlobWriter>;
  /** Stages the manifest (converted if the destination needs it) beside the blobs; returns its descriptor there. */
  stageManifest(manifest: FetchedManifest, parsed: ImageManifest, name: string): Promise<Descriptor>;
  /** Lands the blobs, then the manifest, then (store only) its name in index.json. */
  commit(manifest: Descriptor, name: string, platform: Platform): Promise<void>;
  abort(): Promise<void>;
}

export async function fetchImage(source: ImageSource, options: FetchOptions): Promise<StoredImage> {
  const destination = options.dir ? await dirDestination(resolve(options.dir)) : await storeDestination(resolve(options.store));
  const content = await openSource(source, options, destination);
  try {
    return await copyImage(content, destination, source, options);
  } finally {
    content.close();
  }
}

async function copyImage(content: ContentSource, destination: Destination, source: ImageSource, options: FetchOptions): Promise<StoredImage> {
  const wanted = options.platform ?? hostPlatform();
  const top = await content.topManifest();
  let chosen = top;
  let parsed = parseManifest(top.body, top.mediaType, content.description);
  if (parsed.kind === 'index') {
    const entry = selectPlatform(parsed.index, wanted, content.description);
    options.debug?.(`${content.description}: ${formatPlatform(wanted)} is ${entry.digest}`);
    chosen = await content.manifest(entry);
    parsed = parseManifest(chosen.body, chosen.mediaType, `${content.description}@${entry.digest}`);
    if (parsed.kind !== 'image') throw new UnsupportedError(`${content.description}: an index inside an index is not supported`);
  }
  if (parsed.kind !== 'image') throw new UnsupportedError(`${content.description}: expected an image manifest`);
  const manifest = parsed.manifest;
  chosen = { ...chosen, mediaType: parsed.mediaType };

  const name = options.name ?? content.defaultName(top);
  const write = await destination.begin();
  try {
    // The config, the layers and the manifest all at once: nothing waits for the config's round trip.
    const staging = write.stageManifest(chosen, manifest, name);
    const copying = copyBlobs(content, write, [{ blob: manifest.config, kind: 'config' }, ...manifest.layers.map((blob) => ({ blob, kind: 'layer' }))], options);
    const [stored] = await Promise.all([staging, copying]).catch(async (err) => {
      await Promise.allSettled([staging, copying]);
      throw err;
    });
    const config = await readConfig(write, manifest.config);
    const diffIDs = config.rootfs?.diff_ids ?? [];
    if (diffIDs.length !== manifest.layers.length) {
      throw new UnsupportedError(`${content.description}: the manifest has ${manifest.layers.length} layers but the config lists ${diffIDs.length} diff_ids`);
    }
    const platform: Platform = { os: config.os ?? wanted.os, architecture: config.architecture ?? wanted.architecture };
    if (config.variant) platform.variant = config.variant;
    await write.commit(stored, name, platform);
    const storedManifest = stored.digest === chosen.digest ? manifest : (JSON.parse(await readFile(destination.blobPath(stored.digest), 'utf8')) as ImageManifest);
    const layers: LayerDescriptor[] = storedManifest.layers.map((layer, i) => ({ mediaType: layer.mediaType, digest: layer.digest, size: layer.size, diffID: diffIDs[i] as string }));
    return {
      source: formatSource(source),
      reference: name,
      digest: stored.digest,
      sourceDigest: top.digest,
      store: destination.path,
      layout: destination.layout,
      manifest: stored,
      configDigest: manifest.config.digest,
      config,
      layers,
      platform,
    };
  } catch (err) {
    await write.abort();
    throw err;
  }
}

async function readConfig(write: DestinationWrite, descriptor: Descriptor): Promise<ImageConfig> {
  return parseConfig(await readFile(write.blobPath(descriptor.digest)), `config ${descriptor.digest}`);
}

/**
 * Copies blobs that are not there yet, at most `concurrency` at a time. The first failure
 * aborts the downloads still running, so a failed pull ends at once.
 */
async function copyBlobs(content: ContentSource, write: DestinationWrite, blobs: Array<{ blob: Descriptor; kind: string }>, options: FetchOptions): Promise<void> {
  const queue = blobs.filter((b, i) => blobs.findIndex((o) => o.blob.digest === b.blob.digest) === i);
  const controller = new AbortController();
  let failure: unknown;
  const worker = async () => {
    for (let next = queue.shift(); next && failure === undefined; next = queue.shift()) {
      try {
        await copyBlob(content, write, next.blob, options, next.kind, controller.signal);
      } catch (err) {
        if (failure === undefined) {
          failure = err;
          controller.abort();
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 6) }, worker));
  if (failure !== undefined) throw failure;
}

async function copyBlob(content: ContentSource, write: DestinationWrite, blob: Descriptor, options: FetchOptions, kind: string, signal: AbortSignal): Promise<void> {
  const label = `${kind} ${blob.digest.slice(7, 19)}`;
  if (await write.hasBlob(blob.digest, blob.size)) {
    options.progress?.skipped(label, 'already in the store');
    return;
  }
  const item = options.progress?.item(label, blob.size) ?? SILENT_ITEM;
  const writer = await write.blobWriter({ digest: blob.digest, size: blob.size });
  try {
    await content.copyBlob(blob, writer, item, signal);
    await writer.commit();
    item.done();
  } catch (err) {
    await writer.abort();
    item.failed(signal.aborted ? 'stopped' : `failed: ${describeError(err)}`);
    throw err;
  }
}

async function storeDestination(path: string): Promise<Destination> {
  const layout = await OciLayout.open(path, { create: true });
  return {
    path,
    layout: 'oci',
    hasBlob: (digest, size) => layout.hasBlob(digest, size),
    blobPath: (digest) => layout.blobPath(digest),
    async begin() {
      const txn = await layout.begin();
      return {
        hasBlob: (digest, size) => txn.hasBlob(digest, size),
        blobPath: (digest) => txn.blobPath(digest),
        blobWriter: (expected) => txn.blobWriter(expected),
        stageManifest(manifest, parsed, name) {
          // The store is an OCI layout: a Docker manifest is kept as its OCI equivalent, as skopeo's oci: does.
          const docker = isDockerManifest(manifest.mediaType);
          const body = docker ? Buffer.from(JSON.stringify(toOciManifest(parsed, name))) : manifest.body;
          return txn.putBytes(body, docker ? MEDIA_TYPES.ociManifest : manifest.mediaType);
        },
        async commit(descriptor, name, platform) {
          await txn.commit();
          await layout.tag(name, { ...descriptor, platform });
        },
        abort: () => txn.abort(),
      };
    },
  };
}

async function dirDestination(path: string): Promise<Destination> {
  const layout = await DirLayout.create(path);
  return {
    path,
    layout: 'dir',
    hasBlob: (digest, size) => layout.hasBlob(digest, size),
    blobPath: (digest) => layout.blobPath(digest),
    async begin() {
      const txn = await layout.begin();
      // skopeo's dir: keeps the manifest as the source served it; it is written last, at commit.
      let staged: { body: Buffer; blobs: string[] } = { body: Buffer.alloc(0), blobs: [] };
      return {
        hasBlob: (digest, size) => txn.hasBlob(digest, size),
        blobPath: (digest) => txn.blobPath(digest),
        blobWriter: (expected) => txn.blobWriter(expected),
        async stageManifest(manifest, parsed) {
          staged = { body: manifest.body, blobs: [parsed.config.digest, ...parsed.layers.map((l) => l.digest)] };
          return { mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.body.length };
        },
        async commit() {
          await layout.commit(txn, staged.body, staged.blobs);
        },
        abort: () => layout.abort(txn),
      };
    },
  };
}

async function openSource(source: ImageSource, options: FetchOptions, destination: Destination): Promise<ContentSource> {
  switch (source.transport) {
    case 'docker':
      return registrySource(source.reference, options, destination);
    case 'oci':
      return layoutSource(resolve(source.path), source.name);
    case 'docker-archive':
      return archiveSource(resolve(source.path), source.name);
  }
}

function registrySource(reference: ReturnType<typeof parseReference>, options: FetchOptions, destination: Destination): ContentSource {
  const registry = new Registry(reference.registry, {
    tlsVerify: options.tlsVerify,
    credentials: async () => options.credentials ?? (await lookupCredentials(reference.registry, reference.repository, options.env)),
    retries: options.retries,
    signal: options.signal,
    debug: options.debug,
  });
  const description = formatReference(reference);
  return {
    description,
    async topManifest() {
      // A digest-pinned manifest already in the store costs no request.
      if (reference.digest && destination.layout === 'oci' && (await destination.hasBlob(reference.digest))) {
        const body = await readFile(destination.blobPath(reference.digest));
        if (digestOf(body) === reference.digest) return { mediaType: parseManifest(body, '', description).mediaType, digest: reference.digest, body };
      }
      return registry.manifest(reference.repository, manifestReference(reference), MANIFEST_ACCEPT);
    },
    manifest: (descriptor) => registry.manifest(reference.repository, descriptor, MANIFEST_ACCEPT),
    copyBlob: (descriptor, writer, progress, signal) => registry.blob(reference.repository, descriptor.digest, writer, { progress, signal }),
    defaultName: () => formatReference(reference),
    close: () => registry.close(),
  };
}

async function layoutSource(path: string, name: string | undefined): Promise<ContentSource> {
  const layout = await OciLayout.open(path);
  const description = `oci:${path}${name ? `:${name}` : ''}`;
  let topDescriptor: Descriptor | undefined;
  const read = async (descriptor: Descriptor): Promise<FetchedManifest> => {
    const body = await layout.readVerifiedBlob(descriptor);
    return { mediaType: descriptor.mediaType, digest: descriptor.digest, body };
  };
  return {
    description,
    async topManifest() {
      topDescriptor = await layout.resolve(name);
      return read(topDescriptor);
    },
    manifest: read,
    async copyBlob(descriptor, writer, progress, signal) {
      if (!(await layout.hasBlob(descriptor.digest))) throw new NotFoundError(`${description}: blob ${descriptor.digest} is missing from the layout`);
      await copyStream(layout.openBlob(descriptor.digest) as AsyncIterable<Buffer>, writer, progress, signal);
    },
    defaultName: () => storeNameForLayoutImage(path, name ?? topDescriptor?.annotations?.[REF_NAME_ANNOTATION]),
    close: () => undefined,
  };
}

interface ArchiveManifestEntry {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

/**
 * A `docker save` tarball: manifest.json names the config and the layer tars (or, from Docker
 * 25, blobs/sha256/… of the OCI layout inside). We build an OCI manifest for it, as skopeo does.
 */
async function archiveSource(path: string, name: string | undefined): Promise<ContentSource> {
  const members = await indexTar(path);
  const description = `docker-archive:${path}`;
  const member = (memberPath: string): TarMember => {
    const found = members.get(memberName(memberPath));
    if (!found) throw new UnsupportedError(`${description}: ${memberPath} is named in manifest.json but not in the archive`);
    return found;
  };
  const readMember = async (memberPath: string): Promise<Buffer> => {
    const { offset, size } = member(memberPath);
    if (size === 0) return Buffer.alloc(0);
    const chunks: Buffer[] = [];
    for await (const chunk of createReadStream(path, { start: offset, end: offset + size - 1 })) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  };
  if (!members.has('manifest.json')) throw new UnsupportedError(`${description}: no manifest.json (not a docker save archive)`);
  let entries: ArchiveManifestEntry[];
  try {
    entries = JSON.parse((await readMember('manifest.json')).toString('utf8')) as ArchiveManifestEntry[];
  } catch {
    throw new UnsupportedError(`${description}: manifest.json is not valid JSON`);
  }
  const entry = name ? entries.find((e) => (e.RepoTags ?? []).some((t) => t === name || safeFormat(t) === safeFormat(name))) : entries[0];
  if (!entry) throw new NotFoundError(`${description}: no image ${name ? `tagged "${name}"` : ''} in the archive`);

  const configBytes = await readMember(entry.Config);
  const config = JSON.parse(configBytes.toString('utf8')) as ImageConfig;
  const layerPaths = new Map<string, string>();
  const layers: Descriptor[] = [];
  for (const [i, layerPath] of entry.Layers.entries()) {
    const { offset, size } = member(layerPath);
    const compressed = await isGzip(path, offset, size);
    // An uncompressed layer's digest is its diff_id; only a compressed one must be hashed first.
    const digest = compressed ? await hashRange(path, offset, size) : config.rootfs?.diff_ids?.[i] ?? (await hashRange(path, offset, size));
    layers.push({ mediaType: compressed ? MEDIA_TYPES.ociLayerGzip : MEDIA_TYPES.ociLayer, digest, size });
    layerPaths.set(digest, layerPath);
  }
  const configDescriptor: Descriptor = { mediaType: MEDIA_TYPES.ociConfig, digest: digestOf(configBytes), size: configBytes.length };
  const manifest: ImageManifest = { schemaVersion: 2, mediaType: MEDIA_TYPES.ociManifest, config: configDescriptor, layers };
  const body = Buffer.from(JSON.stringify(manifest));
  const top: FetchedManifest = { mediaType: MEDIA_TYPES.ociManifest, digest: digestOf(body), body };
  return {
    description,
    topManifest: async () => top,
    manifest: async () => top,
    async copyBlob(descriptor, writer, progress, signal) {
      if (descriptor.digest === configDescriptor.digest) {
        await writer.write(configBytes);
        return;
      }
      const { offset, size } = member(layerPaths.get(descriptor.digest) as string);
      if (size === 0) return;
      await copyStream(createReadStream(path, { start: offset, end: offset + size - 1, highWaterMark: 1 << 20 }), writer, progress, signal);
    },
    defaultName: () => {
      const tag = name ?? entry.RepoTags?.[0];
      return tag ? safeFormat(tag) : `${description}@${top.digest}`;
    },
    close: () => undefined,
  };
}

async function copyStream(source: AsyncIterable<Buffer>, writer: BlobWriter, progress: ItemProgress, signal: AbortSignal): Promise<void> {
  for await (const chunk of source) {
    if (signal.aborted) throw signal.reason;
    await writer.write(chunk);
    progress.add(chunk.length);
  }
}

function safeFormat(tag: string): string {
  try {
    return formatReference(parseReference(tag));
  } catch {
    return tag;
  }
}

async function isGzip(path: string, offset: number, size: number): Promise<boolean> {
  if (size < 2) return false;
  for await (const chunk of createReadStream(path, { start: offset, end: offset + 1 })) {
    const b = chunk as Buffer;
    return b[0] === 0x1f && b[1] === 0x8b;
  }
  return false;
}

async function hashRange(path: string, offset: number, size: number): Promise<string> {
  const hash = createHash('sha256');
  if (size > 0) for await (const chunk of createReadStream(path, { start: offset, end: offset + size - 1, highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

