/**
 * img-fetch's one operation: open the source an argument names (a registry, an OCI layout, a
 * `docker save` archive, a flat root filesystem tar) as an Image and copy it into the store or a skopeo `dir:` layout
 * (copy.ts), and describe it for the next command.
 */
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UsageError } from '../core/errors.js';
import type { Progress } from '../core/progress.js';
import { formatPlatform, hostPlatform } from './manifest.js';
import { formatSource, parseSource, type ImageSource } from './reference.js';
import { copyImage } from './copy.js';
import { storeSink } from './store/store-sink.js';
import type { Credentials } from './transport/auth.js';
import type { RegistryPlan } from './transport/registry-pull.js';
import type { Image, LocalSink } from './image.js';
import type { Platform, StoredImage } from './model.js';

export interface FetchOptions {
  /** The store (an OCI layout, created if missing); ignored when `dir` is given. */
  store: string;
  /** Write skopeo's dir: layout here instead of the store. */
  dir?: string;
  /** The name to give the image in the store (default: its reference). */
  name?: string;
  /** `--change` instructions for a tarball: import's config (docker import --change). */
  changes?: string[];
  tlsVerify: boolean;
  /** Where registries.conf and certs.d send a registry reference (planPull); without it, the reference as it is. */
  plan?: RegistryPlan;
  credentials?: Credentials;
  platform?: Platform;
  concurrency?: number;
  retries?: number;
  env?: NodeJS.ProcessEnv;
  progress?: Progress;
  /** Ends the pull when it aborts (--timeout), with its reason. */
  signal?: AbortSignal;
  /** Said when the image is for another platform than the host's (and none was asked for). */
  warn?: (message: string) => void;
  debug?: (message: string) => void;
}

export async function fetchImage(source: ImageSource, options: FetchOptions): Promise<StoredImage> {
  if (options.changes?.length && source.transport !== 'tarball') {
    throw new UsageError(`--change sets the config of a tarball: import (as docker import --change); ${formatSource(source)} has its config`, { hint: 'to change that, run it in a container and img-commit --change' });
  }
  const platform = options.platform ?? hostPlatform();
  const { sink, image } = await openBoth(source, { ...options, platform });
  try {
    const stored = await copyImage(image, sink, { name: options.name ?? image.defaultName, source: formatSource(source), platform, concurrency: options.concurrency, progress: options.progress, signal: options.signal });
    if (!options.platform && !samePlatform(stored.platform, platform)) {
      options.warn?.(`${image.description} is an image for ${formatPlatform(stored.platform)}, not for this host (${formatPlatform(platform)}); it will not run here without emulation`);
    }
    return stored;
  } finally {
    image.close();
  }
}

/**
 * The destination and the source, opened at once: the destination's file calls (create, sweep)
 * run in the thread pool while the source's first request is set up. Only a digest-pinned
 * registry image waits for the store (its manifest may be there already). When the destination
 * cannot be opened, that is the error, as when it was opened first.
 */
async function openBoth(source: ImageSource, options: FetchOptions & { platform: Platform }): Promise<{ sink: LocalSink; image: Image }> {
  const opening: Promise<LocalSink> = options.dir ? import('./transport/dir.js').then((m) => m.dirSink(resolve(options.dir as string))) : storeSink(resolve(options.store));
  const pinned = source.transport === 'docker' && source.reference.digest !== undefined;
  const [sink, image] = await Promise.allSettled([opening, pinned ? opening.then((s) => openImage(source, options, s)) : openImage(source, options)]);
  if (sink.status === 'rejected') {
    if (image.status === 'fulfilled') image.value.close();
    throw sink.reason;
  }
  if (image.status === 'rejected') throw image.reason;
  return { sink: sink.value, image: image.value };
}

/** Each transport's source is loaded only when a pull uses it: a start-up pays for one transport's modules, not four. */
async function openImage(source: ImageSource, options: FetchOptions & { platform: Platform }, sink?: LocalSink): Promise<Image> {
  switch (source.transport) {
    case 'docker':
      return (await import('./transport/registry-source.js')).openRegistryImage(source.reference, { ...options, cache: sink?.layout === 'oci' ? sink : undefined });
    case 'oci':
      return (await import('./transport/oci-source.js')).openLayoutImage(resolve(source.path), source.name, options);
    case 'docker-archive':
      return (await import('./transport/archive-source.js')).openArchiveImage(resolve(source.path), source.name);
    case 'tarball':
      return (await import('./transport/tarball-source.js')).openTarballImage(resolve(source.path), { platform: options.platform, changes: options.changes });
  }
}

function samePlatform(a: Platform, b: Platform): boolean {
  const variant = (p: Platform) => p.variant ?? (p.architecture === 'arm64' ? 'v8' : '');
  return a.os === b.os && a.architecture === b.architecture && (b.variant === undefined || variant(a) === variant(b));
}

/**
 * SOURCE as img-fetch takes it. A bare name that is a tar archive or an OCI layout here was
 * meant as one (`img-fetch debian.tar`), not as a Docker Hub image: say what to put before it.
 */
export function parseFetchSource(text: string): ImageSource {
  const bare = !/^[a-z-]+:/.test(text) || /^[^/]+:\d+\//.test(text);
  const local = bare ? localImageKind(text) : undefined;
  if (local) {
    const suggestion = { layout: `oci:${text}`, archive: `docker-archive:${text} (a docker save archive) or tarball:${text} (a root filesystem)`, compressed: `tarball:${text}` }[local];
    const what = { layout: 'an OCI layout', archive: 'a tar archive', compressed: 'a compressed file' }[local];
    throw new UsageError(`"${text}" is ${what} here, not an image reference: say ${suggestion}`, { hint: 'for a registry image of that name, say docker://' });
  }
  return parseSource(text);
}

/** What a local path holds that img-fetch could read: a tar archive (ustar magic), a gzip or zstd file (a compressed root filesystem tar), or an OCI layout. */
function localImageKind(path: string): 'archive' | 'compressed' | 'layout' | undefined {
  const info = statSync(path, { throwIfNoEntry: false });
  if (info?.isDirectory()) return existsSync(join(path, 'oci-layout')) ? 'layout' : undefined;
  if (!info?.isFile() || info.size < 4) return undefined;
  const header = Buffer.alloc(512);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, header, 0, 512, 0);
  } finally {
    closeSync(fd);
  }
  if (info.size >= 512 && header.subarray(257, 262).toString('latin1') === 'ustar') return 'archive';
  const gzip = header[0] === 0x1f && header[1] === 0x8b;
  const zstd = header.readUInt32LE(0) === 0xfd2fb528;
  return gzip || zstd ? 'compressed' : undefined;
}
