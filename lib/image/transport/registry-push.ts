/**
 * A registry as a sink (`docker://HOST/REPO[:TAG|@DIGEST]`): blobs go up as blob-upload.ts
 * says, and the manifest last, with its own media type, once every blob it names is there (so
 * the tag never names an image the registry cannot serve). Certificates, `insecure` and
 * `blocked` come from certs.d and registries.conf exactly as for a pull (registry-pull.ts);
 * mirrors are for pulls only. The token asked for is `pull,push`.
 */
import { digestOf } from '../../core/digest.js';
import { DigestMismatchError, RegistryError, UsageError } from '../../core/errors.js';
import { formatReference, type ImageReference } from '../reference.js';
import { discardBody } from './http.js';
import { blobExists, uploadBlob, type UploadTarget } from './blob-upload.js';
import { describeSource, registryClient, type PullOptions, type RegistryPlan } from './registry-pull.js';
import type { UploadRecords } from '../store/uploads.js';
import type { BlobSource } from '../store/blob-sources.js';
import type { Image, ImageSink, SinkWrite } from '../image.js';
import type { Descriptor } from '../model.js';

export interface RegistrySinkOptions extends PullOptions {
  /** The destination, planned as a pull's would be (its location; mirrors are not pushed to). */
  plan: RegistryPlan;
  /** A repository of the destination's registry the image came from (its name): its blobs are mounted, not sent. */
  mountFrom?: ImageReference;
  /** The repositories a blob was pulled from (the store's record): one on the destination's registry is mounted from first. */
  blobSources?: (digest: string) => Promise<BlobSource[]>;
  /** The store's record of interrupted uploads to this repository. */
  records?: (registry: string, repository: string) => UploadRecords;
  chunkBytes?: number;
}

export interface RegistrySink extends ImageSink {
  readonly reference: ImageReference;
  close(): void;
}

export function registrySink(options: RegistrySinkOptions): RegistrySink {
  const candidate = options.plan.candidates[0];
  const source = candidate?.sources.find((s) => s.role !== 'mirror');
  if (!candidate || !source) throw new UsageError('img-push: no registry to push to');
  if (source.blocked) throw new RegistryError(source.blocked);
  const reference = source.reference;
  for (const line of describeSource(source, candidate.reference)) options.debug?.(line);
  const registry = registryClient(source, candidate.reference, { ...options, actions: 'pull,push' });
  const target: UploadTarget = {
    registry,
    repository: reference.repository,
    mountFrom: async (digest) => {
      const sources = [...((await options.blobSources?.(digest)) ?? []), ...(options.mountFrom ? [options.mountFrom] : [])];
      return sources.find((s) => s.registry === reference.registry && s.repository !== reference.repository)?.repository;
    },
    records: options.records?.(reference.registry, reference.repository),
    chunkBytes: options.chunkBytes,
    retries: options.retries,
    debug: options.debug,
  };
  return {
    path: `docker://${formatReference(reference)}`,
    reference,
    begin: async () => registryWrite(target, reference),
    close: () => registry.close(),
  };
}

function registryWrite(target: UploadTarget, reference: ImageReference): SinkWrite {
  let image: Image | undefined;
  return {
    already: 'already in the registry',
    hasBlob: (digest, size) => blobExists(target, digest, size),
    putBlob: (from, blob, options) => uploadBlob(target, from, blob, options),
    async readBlob(digest) {
      const chunks: Buffer[] = [];
      const blob = [image?.manifest.config, ...(image?.manifest.layers ?? [])].find((d) => d?.digest === digest);
      if (!image || !blob) throw new RegistryError(`${formatReference(reference)}: blob ${digest} is not one of the image's`);
      for await (const chunk of await image.openBlob(blob)) chunks.push(chunk);
      return Buffer.concat(chunks);
    },
    async stageManifest(source) {
      image = source;
      const raw = source.rawManifest;
      if (reference.digest && reference.digest !== raw.digest) {
        throw new UsageError(`docker://${formatReference(reference)}: the image's manifest is ${raw.digest}, not the digest the destination names`, { hint: 'push to a tag, or name the manifest digest the image has' });
      }
      return { mediaType: raw.mediaType, digest: raw.digest, size: raw.body.length };
    },
    commit: (manifest) => putManifest(target, reference, manifest, (image as Image).rawManifest.body),
    abort: async () => undefined,
  };
}

/** PUT the manifest by tag (or digest) with its media type; the registry's Docker-Content-Digest must be its digest. */
async function putManifest(target: UploadTarget, reference: ImageReference, manifest: Descriptor, body: Buffer): Promise<void> {
  const name = reference.digest ?? reference.tag ?? 'latest';
  const what = `manifest ${reference.repository}${reference.digest ? '@' : ':'}${name}`;
  const res = await target.registry.request(reference.repository, `manifests/${name}`, { what, method: 'PUT', headers: { 'Content-Type': manifest.mediaType }, body });
  await discardBody(res);
  const said = res.headers['docker-content-digest'];
  if (said && said !== manifest.digest && said !== digestOf(body)) throw new DigestMismatchError(`${target.registry.registry}: ${what}: the registry stored ${said}, we sent ${manifest.digest}`);
}
