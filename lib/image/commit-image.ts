/**
 * The image a commit makes: the base image's config plus the new layer's diff_id and a history
 * entry (and the --change instructions), and a manifest listing the base's layers and the new
 * one, OCI or (`--format docker`) Docker schema2, media types converted for every layer.
 */
import { UsageError } from '../core/errors.js';
import { MEDIA_TYPES, type Descriptor, type ImageConfig, type ImageManifest, type StoredImage } from './model.js';
import { applyChanges } from './config-change.js';

export type ManifestFormat = 'oci' | 'docker';

export interface CommitMetadata {
  /** RFC 3339: the config's `created` and the history entry's. */
  created: string;
  createdBy: string;
  message?: string;
  author?: string;
  changes: string[];
}

/** The base config (every field, known or not, kept) with the new layer, the history entry and the changes. */
export function committedConfig(base: ImageConfig, diffId: string, meta: CommitMetadata): ImageConfig {
  const config: ImageConfig = structuredClone(base);
  config.created = meta.created;
  if (meta.author !== undefined) (config as ImageConfig & { author?: string }).author = meta.author;
  config.config = applyChanges(base.config ?? {}, meta.changes);
  config.rootfs = { type: 'layers', diff_ids: [...(base.rootfs?.diff_ids ?? []), diffId] };
  const entry: Record<string, string> = { created: meta.created, created_by: meta.createdBy };
  if (meta.author !== undefined) entry.author = meta.author;
  if (meta.message !== undefined) entry.comment = meta.message;
  config.history = [...(base.history ?? []), entry];
  return config;
}

const TO_DOCKER: Record<string, string> = {
  [MEDIA_TYPES.ociLayerGzip]: MEDIA_TYPES.dockerLayerGzip,
  [MEDIA_TYPES.ociLayer]: 'application/vnd.docker.image.rootfs.diff.tar',
};
const TO_OCI: Record<string, string> = Object.fromEntries(Object.entries(TO_DOCKER).map(([oci, docker]) => [docker, oci]));

/** The layer media type a format gives a compression; zstd has no Docker schema2 type. */
export function layerMediaType(format: ManifestFormat, compression: 'gzip' | 'zstd' | 'none'): string {
  const oci = { gzip: MEDIA_TYPES.ociLayerGzip, zstd: MEDIA_TYPES.ociLayerZstd, none: MEDIA_TYPES.ociLayer }[compression];
  if (format === 'oci') return oci;
  const docker = TO_DOCKER[oci];
  if (!docker) throw new UsageError('--format docker cannot carry a zstd layer (Docker schema2 has no zstd type): use --compression gzip or --format oci');
  return docker;
}

/** The manifest: the base's layers (their media types in this format) and the new layer. */
export function committedManifest(base: StoredImage, layer: Descriptor, config: Descriptor, format: ManifestFormat): ImageManifest {
  const convert = format === 'docker' ? TO_DOCKER : TO_OCI;
  const layers = base.layers.map(({ diffID: _diffID, ...descriptor }) => {
    const mediaType = convert[descriptor.mediaType] ?? descriptor.mediaType;
    if (format === 'docker' && mediaType === MEDIA_TYPES.ociLayerZstd) throw new UsageError(`--format docker: the base image has a zstd layer (${descriptor.digest}), which Docker schema2 cannot carry`);
    return { ...descriptor, mediaType };
  });
  return {
    schemaVersion: 2,
    mediaType: format === 'docker' ? MEDIA_TYPES.dockerManifest : MEDIA_TYPES.ociManifest,
    config,
    layers: [...layers, layer],
  };
}

export function configMediaType(format: ManifestFormat): string {
  return format === 'docker' ? MEDIA_TYPES.dockerConfig : MEDIA_TYPES.ociConfig;
}
