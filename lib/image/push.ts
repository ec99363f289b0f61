/**
 * img-push's one operation: an image of the store (the piped one, or one named by name,
 * digest or short id) copied into a destination sink: a registry, an OCI layout, a docker
 * archive or skopeo's dir:, through the same copy as img-fetch (copy.ts). What became of
 * each blob (sent, skipped, mounted, resumed) is the result, with the digest pushed.
 */
import { resolve } from 'node:path';
import { NotFoundError, UsageError } from '../core/errors.js';
import type { Progress } from '../core/progress.js';
import { hostPlatform } from './manifest.js';
import { formatReference, parseReference, type ImageReference } from './reference.js';
import { writeImage } from './copy.js';
import { OciLayout } from './store/oci-layout.js';
import { UploadRecords } from './store/uploads.js';
import { BlobSources } from './store/blob-sources.js';
import { layoutImage, type LayoutImage } from './transport/oci-source.js';
import { registrySink, type RegistrySink } from './transport/registry-push.js';
import type { Credentials } from './transport/auth.js';
import type { RegistryPlan } from './transport/registry-pull.js';
import type { BlobOutcome, ImageSink } from './image.js';
import { REF_NAME_ANNOTATION, type Descriptor } from './model.js';
import { findImage } from './store/images.js';

export type PushDestination =
  | { transport: 'docker'; reference: ImageReference }
  | { transport: 'oci'; path: string; name?: string }
  | { transport: 'docker-archive'; path: string; name?: string }
  | { transport: 'dir'; path: string };

/** The push section of the pipe document. */
export interface PushResult {
  destination: string;
  /** The manifest digest as the destination has it (what `img-fetch DESTINATION` gives). */
  digest: string;
  manifest: Descriptor;
  blobs: Record<BlobOutcome, string[]>;
}

export interface PushOptions {
  store: string;
  tlsVerify?: boolean;
  /** The destination registry's plan (certs.d, registries.conf), for docker:// destinations. */
  plan?: RegistryPlan;
  credentials?: Credentials;
  concurrency?: number;
  retries?: number;
  chunkBytes?: number;
  env?: NodeJS.ProcessEnv;
  progress?: Progress;
  signal?: AbortSignal;
  debug?: (message: string) => void;
}

/** DESTINATION as img-push takes it, named as skopeo names it. */
export function parsePushDestination(text: string): PushDestination {
  if (text.startsWith('docker://')) return { transport: 'docker', reference: parseReference(text.slice('docker://'.length)) };
  const match = /^(oci|docker-archive|dir):(.*)$/.exec(text);
  if (!match) throw new UsageError(`${JSON.stringify(text)}: say where to push: docker://HOST/REPO[:TAG], oci:DIR[:TAG], docker-archive:FILE[:REF] or dir:DIR`);
  const transport = match[1] as 'oci' | 'docker-archive' | 'dir';
  const rest = match[2] as string;
  const colon = transport === 'dir' ? -1 : rest.indexOf(':');
  const path = colon < 0 ? rest : rest.slice(0, colon);
  if (path === '') throw new UsageError(`${JSON.stringify(text)}: missing the path after ${transport}:`);
  const name = colon < 0 || rest.slice(colon + 1) === '' ? undefined : rest.slice(colon + 1);
  return transport === 'dir' ? { transport, path } : { transport, path, name };
}

export function formatDestination(destination: PushDestination): string {
  if (destination.transport === 'docker') return `docker://${formatReference(destination.reference)}`;
  return `${destination.transport}:${destination.path}${'name' in destination && destination.name ? `:${destination.name}` : ''}`;
}

/**
 * The store's image that `wanted` names: a name in index.json (or its normalised form), a
 * full manifest digest, or a unique prefix (4 hex digits or more) of a manifest's or a
 * config's digest (podman's image id is the config's).
 */
export async function openStoreImage(store: string, wanted: string): Promise<LayoutImage> {
  const layout = await OciLayout.open(store);
  const { entry } = await findImage(layout, wanted).catch((err) => Promise.reject(err instanceof NotFoundError ? new NotFoundError(`${store}: no image named or with the id ${JSON.stringify(wanted)}`, { hint: 'img-fetch it first, or give its full name' }) : err));
  const named = entry.annotations?.[REF_NAME_ANNOTATION];
  return layoutImage(layout, named, { platform: hostPlatform(), description: `${store}:${named ?? wanted}` });
}

export async function pushImage(image: LayoutImage, destination: PushDestination, options: PushOptions): Promise<PushResult> {
  const sourceName = image.named.annotations?.[REF_NAME_ANNOTATION] ?? image.defaultName;
  const sink = await openSink(destination, sourceName, options);
  const blobs: PushResult['blobs'] = { sent: [], skipped: [], mounted: [], resumed: [] };
  // Each blob the repository has now is recorded as it gets there (not after the manifest, on
  // the push's critical path): a later push to another repository of the registry mounts it.
  const recording: Array<Promise<void>> = [];
  const sources = destination.transport === 'docker' ? new BlobSources(options.store) : undefined;
  try {
    const name = destination.transport === 'oci' ? (destination.name ?? 'latest') : sourceName;
    const written = await writeImage(image, sink, {
      name,
      source: sourceName,
      platform: hostPlatform(),
      concurrency: options.concurrency,
      progress: options.progress,
      signal: options.signal,
      onBlob: (blob, outcome) => {
        blobs[outcome].push(blob.digest);
        if (sources) recording.push(sources.record([blob.digest], (sink as RegistrySink).reference).catch(() => undefined));
      },
    });
    await Promise.all(recording);
    return { destination: destination.transport === 'docker' ? sink.path : formatDestination(destination), digest: written.stored.digest, manifest: written.stored, blobs };
  } finally {
    if ('close' in sink) (sink as { close(): void }).close();
  }
}

async function openSink(destination: PushDestination, sourceName: string, options: PushOptions): Promise<ImageSink> {
  switch (destination.transport) {
    case 'docker':
      return registrySink({
        plan: options.plan as RegistryPlan,
        credentials: options.credentials,
        retries: options.retries,
        signal: options.signal,
        env: options.env,
        debug: options.debug,
        chunkBytes: options.chunkBytes,
        mountFrom: sourceReference(sourceName),
        blobSources: (digest) => new BlobSources(options.store).read(digest),
        records: (registry, repository) => new UploadRecords(resolve(options.store, 'uploads'), registry, repository),
      });
    // Loaded when used: a push to a registry (the common, benchmarked case) starts without them.
    case 'oci':
      return (await import('./store/store-sink.js')).storeSink(resolve(destination.path));
    case 'dir':
      return (await import('./transport/dir.js')).dirSink(resolve(destination.path));
    case 'docker-archive':
      return (await import('./transport/archive-sink.js')).archiveSink(resolve(destination.path), destination.name ?? sourceName);
  }
}

/** Where the image came from, when its store name is a registry reference (img-fetch names images so). */
function sourceReference(name: string): ImageReference | undefined {
  try {
    return parseReference(name);
  } catch {
    return undefined;
  }
}

