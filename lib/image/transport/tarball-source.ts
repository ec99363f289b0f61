/**
 * A flat root filesystem tar (`docker export`, `tar -C rootfs -c .`), plain, gzip or zstd, as
 * a source (`tarball:FILE`): a one-layer image, as `docker import` and skopeo's tarball:
 * transport make one. The file is the layer as it is (its media type says its compression);
 * one reading of it gives the blob's digest and, decompressed, the diff_id. The config is the
 * platform asked for, the diff_id, and a history entry dated by the file's mtime (so
 * importing the same file twice gives the same image); `--change` sets its config as
 * `docker import --change` does (the Dockerfile forms img-commit takes).
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { createHash, type Hash } from 'node:crypto';
import { createGunzip } from 'node:zlib';
import { basename } from 'node:path';
import { Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { digestOf } from '../../core/digest.js';
import { HostError, NotFoundError, UnsupportedError } from '../../core/errors.js';
import { copyFromStream, type Image, type RawManifest } from '../image.js';
import { applyChanges } from '../config-change.js';
import { MEDIA_TYPES, type Descriptor, type ImageConfig, type ImageManifest, type Platform } from '../model.js';

type Compression = 'none' | 'gzip' | 'zstd';

const LAYER_TYPES: Record<Compression, string> = { none: MEDIA_TYPES.ociLayer, gzip: MEDIA_TYPES.ociLayerGzip, zstd: MEDIA_TYPES.ociLayerZstd };

export interface TarballOptions {
  platform: Platform;
  /** `--change` instructions for the config, as `docker import --change` takes them. */
  changes?: string[];
}

export async function openTarballImage(path: string, { platform, changes = [] }: TarballOptions): Promise<Image> {
  const description = `tarball:${path}`;
  // Before the file is read: a wrong instruction is refused at once.
  const runConfig = applyChanges({}, changes);
  const info = await stat(path).catch((err) => Promise.reject((err as NodeJS.ErrnoException).code === 'ENOENT' ? new NotFoundError(`${description}: no such file`) : err));
  if (!info.isFile()) throw new UnsupportedError(`${description}: not a regular file`);
  const compression = await compressionOf(path);
  const { digest, diffID } = await hashLayer(path, compression, description);
  const created = info.mtime.toISOString();
  const configValue: ImageConfig = {
    created,
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    config: runConfig,
    rootfs: { type: 'layers', diff_ids: [diffID] },
    history: [{ created, created_by: `img-fetch tarball:${basename(path)}`, comment: 'imported from a root filesystem tar' }],
  } as ImageConfig;
  const config = Buffer.from(JSON.stringify(configValue));
  const layer: Descriptor = { mediaType: LAYER_TYPES[compression], digest, size: info.size };
  const manifest: ImageManifest = { schemaVersion: 2, mediaType: MEDIA_TYPES.ociManifest, config: { mediaType: MEDIA_TYPES.ociConfig, digest: digestOf(config), size: config.length }, layers: [layer] };
  const body = Buffer.from(JSON.stringify(manifest));
  const raw: RawManifest = { mediaType: MEDIA_TYPES.ociManifest, digest: digestOf(body), body };
  const image: Image = {
    description,
    top: raw,
    rawManifest: raw,
    manifest,
    defaultName: `localhost/${basename(path).replace(/\.(tar(\.(gz|zst|zstd))?|tgz)$/, '').toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '') || 'imported'}:latest`,
    config: async () => configValue,
    async openBlob(descriptor) {
      if (descriptor.digest === manifest.config.digest) return Readable.from([config]);
      if (descriptor.digest !== digest) throw new NotFoundError(`${description}: no blob ${descriptor.digest}`);
      return createReadStream(path, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>;
    },
    copyBlob: async (descriptor, writer, copy) => copyFromStream(await image.openBlob(descriptor, copy.signal), writer, copy),
    close: () => undefined,
  };
  return image;
}

async function compressionOf(path: string): Promise<Compression> {
  for await (const head of createReadStream(path, { start: 0, end: 3 })) {
    const bytes = head as Buffer;
    if (bytes[0] === 0x1f && bytes[1] === 0x8b) return 'gzip';
    if (bytes.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  }
  return 'none';
}

/** The file's sha256 and its decompressed sha256 (the diff_id), in one reading; the tar's first header is checked. */
async function hashLayer(path: string, compression: Compression, description: string): Promise<{ digest: string; diffID: string }> {
  const raw = createHash('sha256');
  const content = compression === 'none' ? raw : createHash('sha256');
  const tar = new TarCheck(content);
  if (compression === 'zstd') {
    await Promise.all([hashFile(path, raw), pipeZstd(path, tar, description)]);
  } else if (compression === 'gzip') {
    const hashing = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        raw.update(chunk);
        callback(null, chunk);
      },
    });
    await pipeline(createReadStream(path, { highWaterMark: 1 << 20 }), hashing, createGunzip(), tar.sink()).catch((err) => Promise.reject(new UnsupportedError(`${description}: gzip could not decompress it (${(err as Error).message})`)));
  } else {
    await pipeline(createReadStream(path, { highWaterMark: 1 << 20 }), tar.sink());
  }
  tar.finish(description);
  const digest = `sha256:${raw.digest('hex')}`;
  return { digest, diffID: compression === 'none' ? digest : `sha256:${content.digest('hex')}` };
}

async function hashFile(path: string, hash: Hash): Promise<void> {
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
}

/** Node 20 has no zstd: the zstd program decompresses, once per import. */
async function pipeZstd(path: string, tar: TarCheck, description: string): Promise<void> {
  const child = spawn('zstd', ['-dc', '--no-progress', '--', path], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exit = new Promise<number | null>((resolve, reject) => {
    child.on('error', (err) => reject(new HostError(`${description}: cannot run zstd (${(err as NodeJS.ErrnoException).code ?? err.message})`, { hint: 'apt-get install zstd' })));
    child.on('close', resolve);
  });
  await pipeline(child.stdout as Readable, tar.sink());
  const code = await exit;
  if (code !== 0) throw new UnsupportedError(`${description}: zstd could not decompress it (${stderr.trim().split('\n').pop() ?? `exit ${code}`})`);
}

/** Hashes the tar stream and keeps its first 512 bytes, to check it is a tar at all. */
class TarCheck {
  private head = Buffer.alloc(0);
  private size = 0;

  constructor(private readonly hash: Hash) {}

  sink(): Writable {
    return new Writable({
      write: (chunk: Buffer, _encoding, callback) => {
        this.hash.update(chunk);
        if (this.head.length < 512) this.head = Buffer.concat([this.head, chunk.subarray(0, 512 - this.head.length)]);
        this.size += chunk.length;
        callback();
      },
    });
  }

  finish(description: string): void {
    const magic = this.head.subarray(257, 262).toString('latin1');
    const empty = this.size >= 1024 && this.head.every((b) => b === 0);
    if (this.size % 512 !== 0 || (magic !== 'ustar' && !empty)) throw new UnsupportedError(`${description}: not a tar archive (a root filesystem as docker export or tar -c writes it)`);
  }
}
