/**
 * Reading manifests and indexes (OCI and Docker schema2), refusing schema1, and choosing the
 * platform from an index the way podman does: the host's, unless --platform names another.
 */
import { UnsupportedError, NotFoundError, UsageError } from '../core/errors.js';
import { quoted } from '../core/digest.js';
import { FieldCheck, formatBytes } from './fields.js';
import { MEDIA_TYPES, type ImageIndex, type ImageManifest } from './model.js';
import type { Descriptor, ImageConfig, Platform } from './model.js';

export const MANIFEST_ACCEPT = [
  MEDIA_TYPES.ociIndex,
  MEDIA_TYPES.ociManifest,
  MEDIA_TYPES.dockerManifestList,
  MEDIA_TYPES.dockerManifest,
  MEDIA_TYPES.dockerSchema1Signed,
  MEDIA_TYPES.dockerSchema1,
] as const;

export type ParsedManifest = { kind: 'index'; mediaType: string; index: ImageIndex } | { kind: 'image'; mediaType: string; manifest: ImageManifest };

/** Manifests and indexes are small; a bigger one is refused rather than read into memory (containerd's limit). */
export const MAX_MANIFEST_BYTES = 4 << 20;
/** skopeo's limit for a config, which also goes whole into the pipe document. */
export const MAX_CONFIG_BYTES = 4 << 20;

const INDEX_TYPES = new Set<string>([MEDIA_TYPES.ociIndex, MEDIA_TYPES.dockerManifestList]);
const IMAGE_TYPES = new Set<string>([MEDIA_TYPES.ociManifest, MEDIA_TYPES.dockerManifest]);
/** The layer types img-unpack can apply (tar, gzip, zstd; OCI, non-distributable and Docker names). */
const LAYER_TYPES = new Set<string>([
  MEDIA_TYPES.ociLayer,
  MEDIA_TYPES.ociLayerGzip,
  MEDIA_TYPES.ociLayerZstd,
  'application/vnd.oci.image.layer.nondistributable.v1.tar',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  MEDIA_TYPES.dockerLayerGzip,
  'application/vnd.docker.image.rootfs.diff.tar',
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  'application/vnd.docker.image.rootfs.diff.tar.zstd',
]);

/**
 * Classifies a manifest body (its own mediaType wins over a vague Content-Type) and checks it
 * against the image-spec schema, naming the field that is wrong: only a document the next
 * step can use gets through.
 */
export function parseManifest(body: Buffer, contentType: string, what: string): ParsedManifest {
  const check = new FieldCheck(what);
  const value = check.object(parseJson(body, `${what}: the manifest`), 'the manifest');
  const mediaType = value.mediaType ?? (INDEX_TYPES.has(contentType) || IMAGE_TYPES.has(contentType) ? contentType : value.manifests ? MEDIA_TYPES.ociIndex : MEDIA_TYPES.ociManifest);
  if (value.schemaVersion === 1 || mediaType === MEDIA_TYPES.dockerSchema1 || mediaType === MEDIA_TYPES.dockerSchema1Signed) {
    throw new UnsupportedError(`${what}: Docker schema1 manifests are not supported (deprecated since 2017; re-push the image with a current client)`);
  }
  check.string(mediaType, 'mediaType');
  if (!INDEX_TYPES.has(mediaType as string) && !IMAGE_TYPES.has(mediaType as string)) throw new UnsupportedError(`${what}: unsupported manifest media type ${quoted(mediaType)}`);
  if (value.schemaVersion !== 2) check.fail('schemaVersion', `must be 2, got ${quoted(value.schemaVersion)}`);
  check.optionalStringMap(value.annotations, 'annotations');
  if (INDEX_TYPES.has(mediaType as string)) {
    if (value.manifests === undefined) throw new UnsupportedError(`${what}: index without a manifests list`);
    check.array(value.manifests, 'manifests').forEach((entry, i) => check.descriptor(entry, `manifests[${i}]`));
    return { kind: 'index', mediaType: mediaType as string, index: value as unknown as ImageIndex };
  }
  if (value.layers === undefined || value.config === undefined) throw new UnsupportedError(`${what}: manifest without config or layers`);
  check.descriptor(value.config, 'config', { storable: true, maxSize: MAX_CONFIG_BYTES });
  check.array(value.layers, 'layers').forEach((layer, i) => check.descriptor(layer, `layers[${i}]`, { storable: true, mediaTypes: LAYER_TYPES }));
  return { kind: 'image', mediaType: mediaType as string, manifest: value as unknown as ImageManifest };
}

/** An image config (image-spec config.md), checked in the fields the toolkit reads and passes on. */
export function parseConfig(body: Buffer, what: string): ImageConfig {
  const check = new FieldCheck(what);
  if (body.length > MAX_CONFIG_BYTES) check.fail('the config', `is ${body.length} bytes, more than the ${formatBytes(MAX_CONFIG_BYTES)} allowed`);
  const value = check.object(parseJson(body, `${what}: the config`), 'the config');
  for (const field of ['created', 'architecture', 'os', 'variant']) check.optionalString(value[field], field);
  const rootfs = check.object(value.rootfs, 'rootfs');
  if (rootfs.type !== 'layers') check.fail('rootfs.type', `must be "layers", got ${quoted(rootfs.type)}`);
  check.array(rootfs.diff_ids, 'rootfs.diff_ids').forEach((id, i) => check.digest(id, `rootfs.diff_ids[${i}]`, true));
  if (value.config !== undefined) {
    const config = check.object(value.config, 'config');
    for (const field of ['User', 'WorkingDir', 'StopSignal']) check.optionalString(config[field], `config.${field}`);
    for (const field of ['Env', 'Entrypoint', 'Cmd']) check.optionalStrings(config[field], `config.${field}`);
    for (const field of ['ExposedPorts', 'Volumes']) check.optionalObject(config[field], `config.${field}`);
    check.optionalStringMap(config.Labels, 'config.Labels');
  }
  if (value.history !== undefined) check.array(value.history, 'history');
  return value as unknown as ImageConfig;
}

function parseJson(body: Buffer, what: string): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    throw new UnsupportedError(`${what} is not valid JSON`);
  }
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
