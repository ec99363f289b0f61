/**
 * A `docker save` tarball as a source: manifest.json names the config and the layer tars (or,
 * from Docker 25, blobs/sha256/… of the OCI layout inside). We build an OCI manifest for it,
 * as skopeo does, and read each blob straight out of the tar by its byte range.
 */
import { createReadStream } from 'node:fs';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { digestOf } from '../../core/digest.js';
import { NotFoundError, UnsupportedError } from '../../core/errors.js';
import { indexTar, memberName, type TarMember } from './archive.js';
import { formatReference, parseReference } from '../reference.js';
import { MAX_CONFIG_BYTES, MAX_MANIFEST_BYTES, parseConfig } from '../manifest.js';
import { FieldCheck } from '../fields.js';
import { formatBytes } from '../../core/progress.js';
import { copyFromStream, type Image, type RawManifest } from '../image.js';
import { MEDIA_TYPES, type Descriptor, type ImageConfig, type ImageManifest } from '../model.js';

interface ArchiveManifestEntry {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

/** The archive's members, read by name. */
class Archive {
  private constructor(readonly path: string, readonly description: string, private readonly members: Map<string, TarMember>) {}

  static async open(path: string): Promise<Archive> {
    const archive = new Archive(path, `docker-archive:${path}`, await indexTar(path));
    if (!archive.members.has('manifest.json')) throw new UnsupportedError(`${archive.description}: no manifest.json (not a docker save archive)`);
    return archive;
  }

  member(memberPath: string): TarMember {
    const found = this.members.get(memberName(memberPath));
    if (!found) throw new UnsupportedError(`${this.description}: ${memberPath} is named in manifest.json but not in the archive`);
    return found;
  }

  stream({ offset, size }: TarMember): AsyncIterable<Buffer> {
    if (size === 0) return (async function* () {})();
    return createReadStream(this.path, { start: offset, end: offset + size - 1, highWaterMark: 1 << 20 });
  }

  /** A member read whole, refused past `limit` bytes before any is read (a config of 300 MB is no config). */
  async read(memberPath: string, limit: number): Promise<Buffer> {
    const member = this.member(memberPath);
    if (member.size > limit) throw new UnsupportedError(`${this.description}: ${memberPath} is ${member.size} bytes, more than the ${formatBytes(limit)} allowed`);
    const chunks: Buffer[] = [];
    for await (const chunk of this.stream(member)) chunks.push(chunk);
    return Buffer.concat(chunks);
  }

  async isGzip({ offset, size }: TarMember): Promise<boolean> {
    if (size < 2) return false;
    for await (const chunk of this.stream({ offset, size: 2 })) return chunk[0] === 0x1f && chunk[1] === 0x8b;
    return false;
  }

  async hash(member: TarMember): Promise<string> {
    const hash = createHash('sha256');
    for await (const chunk of this.stream(member)) hash.update(chunk);
    return `sha256:${hash.digest('hex')}`;
  }
}

export async function openArchiveImage(path: string, name: string | undefined): Promise<Image> {
  const archive = await Archive.open(path);
  const { description } = archive;
  const entry = await chooseEntry(archive, name);
  const configBytes = await archive.read(entry.Config, MAX_CONFIG_BYTES);
  const config = parseConfig(configBytes, `config ${digestOf(configBytes)}`);
  const { layers, members } = await describeLayers(archive, entry, config);
  const configDescriptor: Descriptor = { mediaType: MEDIA_TYPES.ociConfig, digest: digestOf(configBytes), size: configBytes.length };
  const manifest: ImageManifest = { schemaVersion: 2, mediaType: MEDIA_TYPES.ociManifest, config: configDescriptor, layers };
  const body = Buffer.from(JSON.stringify(manifest));
  const top: RawManifest = { mediaType: MEDIA_TYPES.ociManifest, digest: digestOf(body), body };
  const tag = name ?? entry.RepoTags?.[0];
  const image: Image = {
    description,
    top,
    rawManifest: top,
    manifest,
    defaultName: tag ? safeFormat(tag) : `${description}@${top.digest}`,
    config: async () => config,
    async openBlob(descriptor) {
      if (descriptor.digest === configDescriptor.digest) return Readable.from([configBytes]);
      const member = members.get(descriptor.digest);
      if (!member) throw new NotFoundError(`${description}: no blob ${descriptor.digest} in the archive`);
      return archive.stream(member);
    },
    copyBlob: async (descriptor, writer, copy) => copyFromStream(await image.openBlob(descriptor, copy.signal), writer, copy),
    close: () => undefined,
  };
  return image;
}

async function chooseEntry(archive: Archive, name: string | undefined): Promise<ArchiveManifestEntry> {
  let parsed: unknown;
  try {
    parsed = JSON.parse((await archive.read('manifest.json', MAX_MANIFEST_BYTES)).toString('utf8'));
  } catch (err) {
    if (err instanceof UnsupportedError) throw err;
    throw new UnsupportedError(`${archive.description}: manifest.json is not valid JSON`);
  }
  const entries = checkEntries(parsed, `${archive.description}: manifest.json`);
  const entry = name ? entries.find((e) => (e.RepoTags ?? []).some((t) => t === name || safeFormat(t) === safeFormat(name))) : entries[0];
  if (!entry) throw new NotFoundError(`${archive.description}: no image ${name ? `tagged "${name}"` : ''} in the archive`);
  return entry;
}

/** manifest.json as `docker save` writes it: a list of {Config, RepoTags, Layers}; each field named when it is not. */
function checkEntries(value: unknown, what: string): ArchiveManifestEntry[] {
  const check = new FieldCheck(what);
  return check.array(value, 'the document').map((item, i) => {
    const entry = check.object(item, `[${i}]`);
    check.string(entry.Config, `[${i}].Config`);
    check.optionalStrings(entry.RepoTags, `[${i}].RepoTags`);
    check.array(entry.Layers, `[${i}].Layers`).forEach((layer, j) => check.string(layer, `[${i}].Layers[${j}]`));
    return entry as unknown as ArchiveManifestEntry;
  });
}

async function describeLayers(archive: Archive, entry: ArchiveManifestEntry, config: ImageConfig): Promise<{ layers: Descriptor[]; members: Map<string, TarMember> }> {
  const members = new Map<string, TarMember>();
  const layers: Descriptor[] = [];
  for (const [i, layerPath] of entry.Layers.entries()) {
    const member = archive.member(layerPath);
    const compressed = await archive.isGzip(member);
    // An uncompressed layer's digest is its diff_id; only a compressed one must be hashed first.
    const digest = compressed ? await archive.hash(member) : config.rootfs?.diff_ids?.[i] ?? (await archive.hash(member));
    layers.push({ mediaType: compressed ? MEDIA_TYPES.ociLayerGzip : MEDIA_TYPES.ociLayer, digest, size: member.size });
    members.set(digest, member);
  }
  return { layers, members };
}

function safeFormat(tag: string): string {
  try {
    return formatReference(parseReference(tag));
  } catch {
    return tag;
  }
}
