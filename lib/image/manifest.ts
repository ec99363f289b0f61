/**
 * Reading manifests and indexes (OCI and Docker schema2), refusing schema1, and choosing the
 * platform from an index the way podman does: the host's, unless --platform names another.
 */
import { UnsupportedError, NotFoundError, UsageError } from '../core/errors.js';
import { MEDIA_TYPES, type ImageIndex, type ImageManifest } from './model.js';
import type { Descriptor, Platform } from './model.js';

export const MANIFEST_ACCEPT = [
  MEDIA_TYPES.ociIndex,
  MEDIA_TYPES.ociManifest,
  MEDIA_TYPES.dockerManifestList,
  MEDIA_TYPES.dockerManifest,
  MEDIA_TYPES.dockerSchema1Signed,
  MEDIA_TYPES.dockerSchema1,
] as const;

export type ParsedManifest = { kind: 'index'; mediaType: string; index: ImageIndex } | { kind: 'image'; mediaType: string; manifest: ImageManifest };

const INDEX_TYPES = new Set<string>([MEDIA_TYPES.ociIndex, MEDIA_TYPES.dockerManifestList]);
const IMAGE_TYPES = new Set<string>([MEDIA_TYPES.ociManifest, MEDIA_TYPES.dockerManifest]);

/** Classifies a manifest body; the body's own mediaType wins over a vague Content-Type. */
export function parseManifest(body: Buffer, contentType: string, what: string): ParsedManifest {
  let value: { mediaType?: string; schemaVersion?: number; manifests?: unknown; layers?: unknown; config?: unknown };
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    throw new UnsupportedError(`${what}: the manifest is not valid JSON`);
  }
  const mediaType = value.mediaType ?? (INDEX_TYPES.has(contentType) || IMAGE_TYPES.has(contentType) ? contentType : value.manifests ? MEDIA_TYPES.ociIndex : MEDIA_TYPES.ociManifest);
  if (value.schemaVersion === 1 || mediaType === MEDIA_TYPES.dockerSchema1 || mediaType === MEDIA_TYPES.dockerSchema1Signed) {
    throw new UnsupportedError(`${what}: Docker schema1 manifests are not supported (deprecated since 2017; re-push the image with a current client)`);
  }
  if (INDEX_TYPES.has(mediaType)) {
    if (!Array.isArray(value.manifests)) throw new UnsupportedError(`${what}: index without a manifests list`);
    return { kind: 'index', mediaType, index: value as ImageIndex };
  }
  if (IMAGE_TYPES.has(mediaType)) {
    if (!Array.isArray(value.layers) || typeof value.config !== 'object') throw new UnsupportedError(`${what}: manifest without config or layers`);
    return { kind: 'image', mediaType, manifest: value as ImageManifest };
  }
  throw new UnsupportedError(`${what}: unsupported manifest media type "${mediaType}"`);
}

const NODE_ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64', mips: 'mips', mipsel: 'mipsle' };

export function hostPlatform(): Platform {
  const architecture = NODE_ARCH[process.arch] ?? process.arch;
  return architecture === 'arm' ? { os: 'linux', architecture, variant: 'v7' } : { os: 'linux', architecture };
}

/** `linux/arm64/v8` → a platform. */
export function parsePlatform(text: string): Platform {
  const [os, architecture, variant, extra] = text.split('/');
  if (!os || !architecture || extra !== undefined) throw new UsageError(`--platform: want OS/ARCH[/VARIANT], got "${text}"`);
  return variant ? { os, architecture, variant } : { os, architecture };
}

export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

/** The index entry for `wanted`; arm64's variant v8 is implied, as containerd's matcher does. */
export function selectPlatform(index: ImageIndex, wanted: Platform, what: string): Descriptor {
  const normalVariant = (p: Platform) => p.variant ?? (p.architecture === 'arm64' ? 'v8' : undefined);
  const candidates = index.manifests.filter((m) => m.platform && m.platform.os === wanted.os && m.platform.architecture === wanted.architecture);
  const exact = candidates.find((m) => normalVariant(m.platform as Platform) === normalVariant(wanted));
  const chosen = exact ?? (wanted.variant === undefined ? candidates[0] : undefined);
  if (!chosen) {
    const offered = index.manifests.filter((m) => m.platform).map((m) => formatPlatform(m.platform as Platform));
    throw new NotFoundError(`${what}: no image for ${formatPlatform(wanted)} (the index has: ${offered.join(', ') || 'no platforms'})`, { hint: 'choose one with --platform' });
  }
  return chosen;
}

/** Docker schema2 media types and their OCI equivalents (the blobs' bytes are the same). */
const DOCKER_TO_OCI: Record<string, string> = {
  [MEDIA_TYPES.dockerManifest]: MEDIA_TYPES.ociManifest,
  [MEDIA_TYPES.dockerConfig]: MEDIA_TYPES.ociConfig,
  [MEDIA_TYPES.dockerLayerGzip]: MEDIA_TYPES.ociLayerGzip,
  'application/vnd.docker.image.rootfs.diff.tar': MEDIA_TYPES.ociLayer,
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip': 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
};

/**
 * A Docker schema2 manifest as an OCI one, as `skopeo copy docker://… oci:…` writes it: the
 * store is an OCI layout, and umoci reads only OCI manifests. Layers and config keep their
 * bytes and digests; only media types change (so the manifest's digest changes).
 */
export function toOciManifest(manifest: ImageManifest, what: string): ImageManifest {
  const convert = (descriptor: Descriptor): Descriptor => {
    if (descriptor.mediaType.startsWith('application/vnd.oci.')) return descriptor;
    const oci = DOCKER_TO_OCI[descriptor.mediaType];
    if (!oci) throw new UnsupportedError(`${what}: cannot store blob ${descriptor.digest} of media type "${descriptor.mediaType}" in an OCI layout`);
    return { ...descriptor, mediaType: oci };
  };
  const converted: ImageManifest = { schemaVersion: 2, mediaType: MEDIA_TYPES.ociManifest, config: convert(manifest.config), layers: manifest.layers.map(convert) };
  if (manifest.annotations) converted.annotations = manifest.annotations;
  return converted;
}

export function isDockerManifest(mediaType: string): boolean {
  return mediaType === MEDIA_TYPES.dockerManifest;
}
