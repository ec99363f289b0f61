/**
 * A registry as a source (`docker://HOST/REPO[:TAG|@DIGEST]`): the Image over the distribution
 * client in registry.ts. A digest-pinned manifest already in the store costs no request.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { digestOf } from '../../core/digest.js';
import { SILENT_ITEM } from '../../core/progress.js';
import { MANIFEST_ACCEPT, parseConfig, parseManifest } from '../manifest.js';
import { formatReference, type ImageReference } from '../reference.js';
import { BlobWriter } from '../store/blob-writer.js';
import { resolveImageManifest, type Image, type RawManifest } from '../image.js';
import type { Credentials } from './auth.js';
import { directPlan, RegistryPull, type RegistryPlan } from './registry-pull.js';
import type { Descriptor, Platform } from '../model.js';

export interface RegistryImageOptions {
  tlsVerify: boolean;
  credentials?: Credentials;
  retries?: number;
  env?: NodeJS.ProcessEnv;
  platform: Platform;
  /** Ends every request when it aborts (--timeout). */
  signal?: AbortSignal;
  /** Where registries.conf and certs.d send the reference (default: to itself, verified as tlsVerify says). */
  plan?: RegistryPlan;
  /** A store to take a digest-pinned manifest from, when it has it. */
  cache?: { blobPath(digest: string): string };
  debug?: (message: string) => void;
}

export async function openRegistryImage(reference: ImageReference, options: RegistryImageOptions): Promise<Image> {
  const registry = new RegistryPull(options.plan ?? directPlan(reference, options.tlsVerify), {
    credentials: options.credentials,
    retries: options.retries,
    signal: options.signal,
    env: options.env,
    debug: options.debug,
  });
  const description = formatReference(reference);
  try {
    const top = async (): Promise<RawManifest> => (await cachedManifest(reference, options.cache, description)) ?? registry.topManifest(MANIFEST_ACCEPT);
    const manifestOf = (descriptor: Descriptor) => registry.manifest(descriptor, MANIFEST_ACCEPT);
    const resolved = await resolveImageManifest({ description, top, manifest: manifestOf }, options.platform, options.debug);
    const image: Image = {
      description,
      top: resolved.top,
      rawManifest: resolved.raw,
      manifest: resolved.manifest,
      defaultName: formatReference(registry.reference),
      origin: registry.origin,
      copyBlob: (descriptor, writer, copy) => registry.blob(descriptor.digest, writer, copy),
      openBlob: (descriptor, signal) => downloaded(image, descriptor, signal),
      config: async () => parseConfig(await readAll(await image.openBlob(resolved.manifest.config)), `config ${resolved.manifest.config.digest}`),
      close: () => registry.close(),
    };
    return image;
  } catch (err) {
    registry.close();
    throw err;
  }
}

async function cachedManifest(reference: ImageReference, cache: RegistryImageOptions['cache'], description: string): Promise<RawManifest | undefined> {
  if (!reference.digest || !cache) return undefined;
  const body = await readFile(cache.blobPath(reference.digest)).catch(() => undefined);
  if (!body || digestOf(body) !== reference.digest) return undefined;
  return { mediaType: parseManifest(body, '', description).mediaType, digest: reference.digest, body };
}

/**
 * A blob as a stream: downloaded and verified into a private temp file first (the registry
 * client writes into a verifying writer, to resume), then read from there and removed.
 */
async function downloaded(image: Image, descriptor: Descriptor, signal?: AbortSignal): Promise<AsyncIterable<Buffer>> {
  const dir = await mkdtemp(join(tmpdir(), 'cp-blob-'));
  try {
    const writer = new BlobWriter(descriptor, join(dir, 'part'), join(dir, 'blob'));
    await image.copyBlob(descriptor, writer, { progress: SILENT_ITEM, signal: signal ?? new AbortController().signal });
    await writer.commit();
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return (async function* () {
    try {
      yield* createReadStream(join(dir, 'blob'), { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  })();
}

async function readAll(source: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of source) chunks.push(chunk);
  return Buffer.concat(chunks);
}
