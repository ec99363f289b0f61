/**
 * An OCI image layout as a source: `oci:DIR[:NAME]` written by skopeo or umoci, and the store
 * itself (img-unpack reads its images this way). Every blob read is verified against its
 * digest: a layout may have been edited behind our back.
 */
import { NotFoundError } from '../../core/errors.js';
import { OciLayout } from '../store/oci-layout.js';
import { storeNameForLayoutImage } from '../reference.js';
import { parseConfig } from '../manifest.js';
import { copyFromStream, resolveImageManifest, type Image, type RawManifest } from '../image.js';
import { REF_NAME_ANNOTATION, type Descriptor, type Platform } from '../model.js';

export interface LayoutImage extends Image {
  readonly layout: OciLayout;
  /** The entry of index.json that named the image. */
  readonly named: Descriptor;
  /** Where a blob of the image is on disk (for readers that open it themselves). */
  blobPath(digest: string): string;
}

export interface LayoutImageOptions {
  platform: Platform;
  /** How messages name the image (default: `oci:DIR[:NAME]`). */
  description?: string;
  debug?: (message: string) => void;
}

export async function openLayoutImage(path: string, name: string | undefined, options: LayoutImageOptions): Promise<LayoutImage> {
  return layoutImage(await OciLayout.open(path), name, options);
}

export async function layoutImage(layout: OciLayout, name: string | undefined, options: LayoutImageOptions): Promise<LayoutImage> {
  const description = options.description ?? `oci:${layout.root}${name ? `:${name}` : ''}`;
  const named = await layout.resolve(name);
  const read = async (descriptor: Descriptor): Promise<RawManifest> => ({ mediaType: descriptor.mediaType, digest: descriptor.digest, body: await layout.readVerifiedBlob(descriptor) });
  const { top, raw, manifest } = await resolveImageManifest({ description, top: () => read(named), manifest: read }, options.platform, options.debug);
  const present = async (descriptor: Descriptor): Promise<void> => {
    if (!(await layout.hasBlob(descriptor.digest))) throw new NotFoundError(`${description}: blob ${descriptor.digest} is missing from the layout`);
  };
  const image: LayoutImage = {
    description,
    top,
    rawManifest: raw,
    manifest,
    layout,
    named,
    defaultName: storeNameForLayoutImage(layout.root, name ?? named.annotations?.[REF_NAME_ANNOTATION]),
    config: async () => parseConfig(await layout.readVerifiedBlob(manifest.config), `config ${manifest.config.digest}`),
    async openBlob(descriptor) {
      await present(descriptor);
      return layout.openBlob(descriptor.digest) as AsyncIterable<Buffer>;
    },
    copyBlob: async (descriptor, writer, copy) => copyFromStream(await image.openBlob(descriptor, copy.signal), writer, copy),
    blobPath: (digest) => layout.blobPath(digest),
    close: () => undefined,
  };
  return image;
}
