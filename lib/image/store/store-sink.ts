/**
 * The store as a sink: an image's blobs land in one transaction, its manifest last, then its
 * name in index.json. The store is an OCI layout: a Docker manifest is kept as its OCI
 * equivalent, as skopeo's oci: does.
 */
import { isDockerManifest, toOciManifest } from '../manifest.js';
import { MEDIA_TYPES } from '../model.js';
import { OciLayout } from './oci-layout.js';
import { BlobSources } from './blob-sources.js';
import type { Image, LocalSink } from '../image.js';

export async function storeSink(path: string): Promise<LocalSink & { layout: 'oci' }> {
  const layout = await OciLayout.open(path, { create: true });
  return {
    path,
    layout: 'oci',
    hasBlob: layout.hasBlob.bind(layout),
    blobPath: layout.blobPath.bind(layout),
    async begin() {
      const txn = await layout.begin();
      let source: Image | undefined;
      return {
        ...txn.blobAccess('already in the store'),
        stageManifest(image, name) {
          source = image;
          const raw = image.rawManifest;
          const docker = isDockerManifest(raw.mediaType);
          const body = docker ? Buffer.from(JSON.stringify(toOciManifest(image.manifest, name))) : raw.body;
          return txn.putBytes(body, docker ? MEDIA_TYPES.ociManifest : raw.mediaType);
        },
        async commit(descriptor, name, platform) {
          await layout.commitAndTag(txn, { name, descriptor: { ...descriptor, platform } }, (placed) => placed.filter((digest) => digest === descriptor.digest));
          if (source?.origin) {
            const { config, layers } = source.manifest;
            // A hint for img-push's mounts: the image is in the store whether or not it could be written.
            await new BlobSources(layout.root).record([config.digest, ...layers.map((l) => l.digest)], source.origin).catch(() => undefined);
          }
        },
        abort: () => txn.abort(),
      };
    },
  };
}
