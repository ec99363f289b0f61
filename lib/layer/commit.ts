/**
 * A commit: an upper dir becomes a new image in the store, on top of the image it changes. The
 * layer is streamed (tar → diff_id hash → compressor → blob digest, never whole in memory),
 * then the config and the manifest; all of it lands in one store transaction and is named
 * last, so a commit that fails (a full disk, a refused upper dir) leaves nothing in the store.
 */
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { Duplex, PassThrough, Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { HostError, NotFoundError } from '../core/errors.js';
import { OciLayout } from '../image/store/oci-layout.js';
import type { BlobTransaction } from '../image/store/transaction.js';
import { layersOf } from '../image/copy.js';
import { committedConfig, committedManifest, configMediaType, layerMediaType, type CommitMetadata, type ManifestFormat } from '../image/commit-image.js';
import type { Descriptor, StoredImage } from '../image/model.js';
import { upperLayer } from './upper-layer.js';
import { mountPlaceholders } from './mount-placeholders.js';
import { containerOwners } from './container-owners.js';
import { rootlessMappings } from '../core/userns.js';
import { parallelGzip } from './parallel-gzip.js';

export type Compression = 'gzip' | 'zstd' | 'none';

export interface CommitRequest {
  upper: string;
  /** The overlay's lower dirs, top first, when known: the runtime's empty mount points that the image lacks are left out. */
  lower?: string[];
  base: StoredImage;
  /** The new image's name in the store. */
  name: string;
  compression: Compression;
  format: ManifestFormat;
  /** Seconds since the epoch: clamps mtimes and sets `created` (reproducible commits). */
  timestamp?: number;
  meta: Omit<CommitMetadata, 'created'>;
}

export interface CommitResult {
  image: StoredImage;
  layer: Descriptor & { diffID: string };
  /** Paths not in the layer (sockets). */
  skipped: string[];
}

export async function commitUpper(request: CommitRequest): Promise<CommitResult> {
  const mediaType = layerMediaType(request.format, request.compression);
  // create: the store exists (the base image is in it); opening it for writing sweeps dead commits' staging.
  const store = await OciLayout.open(request.base.store, { create: true });
  const created = formatCreated(request.timestamp);
  const txn = await store.begin();
  let made: Awaited<ReturnType<typeof stageImage>>;
  try {
    made = await stageImage(txn, request, { mediaType, created });
    await store.commitAndTag(txn, { name: request.name, descriptor: { ...made.manifestDescriptor, platform: request.base.platform } });
  } catch (err) {
    await txn.abort();
    throw err;
  }
  const image: StoredImage = {
    reference: request.name,
    digest: made.manifestDescriptor.digest,
    store: request.base.store,
    layout: 'oci',
    manifest: made.manifestDescriptor,
    configDigest: made.manifest.config.digest,
    config: made.config,
    layers: layersOf(made.manifest, made.config),
    platform: request.base.platform,
  };
  const { skipped, ...layer } = made.layer;
  return { image, layer, skipped };
}

/** The layer, the config and the manifest, staged in `txn` in that order (the manifest lands last). */
async function stageImage(txn: BlobTransaction, request: CommitRequest, how: { mediaType: string; created: string }) {
  await claimBaseLayers(txn, request.base);
  const layer = await writeLayer(txn, request, how.mediaType);
  const config = committedConfig(request.base.config, layer.diffID, { ...request.meta, created: how.created });
  const configDescriptor = await txn.putBytes(Buffer.from(JSON.stringify(config)), configMediaType(request.format));
  const manifest = committedManifest(request.base, { mediaType: layer.mediaType, digest: layer.digest, size: layer.size }, configDescriptor, request.format);
  const manifestDescriptor = await txn.putBytes(Buffer.from(JSON.stringify(manifest)), manifest.mediaType as string);
  return { layer, config, manifest, manifestDescriptor };
}

/** The layer blob, staged in `txn`: its descriptor, its diff_id and what it left out. */
async function writeLayer(txn: BlobTransaction, request: CommitRequest, mediaType: string): Promise<Descriptor & { diffID: string; skipped: string[] }> {
  const rootless = (process.getuid?.() ?? 0) !== 0;
  const owners = rootless ? containerOwners(rootlessMappings()) : undefined;
  const layer = await upperLayer(request.upper, { timestamp: request.timestamp, owners, leaveOut: mountPlaceholders(request.upper, request.lower) });
  const diffHash = createHash('sha256');
  const tap = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      diffHash.update(chunk);
      done(null, chunk);
    },
  });
  const compressor = compressorFor(request.compression);
  const stored = new PassThrough({ highWaterMark: 1 << 20 });
  const [written, produced] = await Promise.allSettled([txn.putStream(stored, mediaType), pipeline(Readable.from(layer.chunks), tap, compressor.stream, stored)]);
  // The store's failure first: a full disk stops the pipeline too, which then only says it was aborted.
  if (written.status === 'rejected') throw written.reason;
  if (produced.status === 'rejected') throw produced.reason;
  await compressor.done();
  const descriptor = written.value;
  return { ...descriptor, diffID: `sha256:${diffHash.digest('hex')}`, skipped: layer.skipped };
}

interface Compressor {
  stream: Duplex;
  /** Resolves when the compressor has finished well (zstd: exited 0). */
  done(): Promise<void>;
}

/**
 * gzip at level 1 in parallel members (parallel-gzip.ts): a commit is made to be run and pushed,
 * and level 1 on every core is several times faster than one level-6 stream for a few percent
 * more bytes; the blob is stored as it will be pushed, so its digest never changes after. zstd
 * is the zstd program (node 20 has none), one process per commit.
 */
function compressorFor(compression: Compression): Compressor {
  if (compression === 'none') return { stream: new PassThrough(), done: async () => undefined };
  if (compression === 'gzip') return { stream: parallelGzip(), done: async () => undefined };
  const child = spawn('zstd', ['-q', '-c', '-3', '-T1', '--no-progress'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<void>((resolve, reject) => {
    child.on('error', (err: NodeJS.ErrnoException) => reject(new HostError(err.code === 'ENOENT' ? 'zstd not found' : `zstd: ${err.message}`, { hint: 'apt-get install zstd' })));
    child.on('close', (code) => (code === 0 ? resolve() : reject(new HostError(`zstd exited ${code}: ${stderr.trim()}`))));
  });
  exited.catch(() => undefined);
  return { stream: Duplex.from({ writable: child.stdin, readable: child.stdout }), done: () => exited };
}

/** RFC 3339 in UTC, without fractions of a second when there are none (as docker and buildah write it). */
function formatCreated(timestamp: number | undefined): string {
  const date = timestamp === undefined ? new Date() : new Date(timestamp * 1000);
  return date.toISOString().replace(/\.000Z$/, 'Z');
}

/** The base's layers, claimed by the transaction: an `img-store rm` and gc meanwhile cannot leave the new image without them. */
async function claimBaseLayers(txn: BlobTransaction, base: StoredImage): Promise<void> {
  for (const layer of base.layers) {
    if (!(await txn.hasBlob(layer.digest, layer.size))) throw new NotFoundError(`layer ${layer.digest} of ${base.reference} is not in the store ${base.store}`, { hint: `img-fetch ${base.reference} again` });
  }
}
