/**
 * The content-addressed store: an OCI image layout (oci-layout, index.json, blobs/sha256/…)
 * shared by every image, each named in index.json by its full reference, so skopeo
 * (`oci:STORE:REF`) and umoci (`--image STORE:REF`) read it. Like umoci's oci/cas: blobs are
 * written whole and verified, or not at all; a missing blob is a BlobNotExistError. Beside the
 * layout, named areas (layers/, rootfs/, containers/, owners/, overlay/, uploads/) hold what the toolkit derives.
 */
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { digestHex, digestOf } from '../../core/digest.js';
import { DigestMismatchError } from '../../core/errors.js';
import { isFileOfSize, sweepTempFiles, writeFileAtomic } from '../../core/atomic-write.js';
import { withLock } from '../../core/lock.js';
import { REF_NAME_ANNOTATION, type Descriptor, type ImageIndex } from '../model.js';
import { BlobTransaction, sweepStaging } from './transaction.js';
import { asWriteError, BlobNotExistError, InvalidLayoutError, NameNotExistError } from './errors.js';

/** The folders beside the layout that the toolkit keeps (OCI readers ignore them). */
export type StoreArea = 'layers' | 'rootfs' | 'containers' | 'owners' | 'overlay' | 'uploads';

export class OciLayout {
  private constructor(readonly root: string) {}

  /** Opens the layout at `root`, creating it when asked to (and refusing a directory that is something else). */
  static async open(root: string, options: { create?: boolean } = {}): Promise<OciLayout> {
    const layoutFile = join(root, 'oci-layout');
    try {
      const layout = JSON.parse(await readFile(layoutFile, 'utf8'));
      if (layout.imageLayoutVersion !== '1.0.0') throw new InvalidLayoutError(`${root}: unsupported imageLayoutVersion ${JSON.stringify(layout.imageLayoutVersion)}`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        if (err instanceof SyntaxError) throw new InvalidLayoutError(`${layoutFile}: not valid JSON`);
        throw err;
      }
      if (!options.create) throw new NameNotExistError(`${root}: not an OCI image layout (no oci-layout file)`);
      await create(root).catch((e) => Promise.reject(asWriteError(e, root)));
    }
    if (options.create) await Promise.all([sweepStaging(root), sweepTempFiles(root)]);
    return new OciLayout(root);
  }

  /** Starts writing a set of blobs that land together or not at all (see BlobTransaction). */
  async begin(): Promise<BlobTransaction> {
    return BlobTransaction.begin(this.root, (digest) => this.blobPath(digest));
  }

  blobPath(digest: string): string {
    return join(this.root, 'blobs', 'sha256', digestHex(digest));
  }

  async hasBlob(digest: string, size?: number): Promise<boolean> {
    return isFileOfSize(this.blobPath(digest), size);
  }

  async readBlob(digest: string): Promise<Buffer> {
    try {
      return await readFile(this.blobPath(digest));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new BlobNotExistError(digest, this.root);
      throw err;
    }
  }

  /** Reads a blob and checks it against its digest: the store may have been edited behind our back. */
  async readVerifiedBlob(descriptor: { digest: string; size?: number }): Promise<Buffer> {
    const data = await this.readBlob(descriptor.digest);
    const actual = digestOf(data);
    if (actual !== descriptor.digest || (descriptor.size !== undefined && data.length !== descriptor.size)) {
      throw new DigestMismatchError(`blob ${descriptor.digest} in ${this.root} is corrupt (content has digest ${actual})`);
    }
    return data;
  }

  async readJson<T>(descriptor: { digest: string; size?: number }): Promise<T> {
    return JSON.parse((await this.readVerifiedBlob(descriptor)).toString('utf8')) as T;
  }

  openBlob(digest: string): NodeJS.ReadableStream {
    return createReadStream(this.blobPath(digest), { highWaterMark: 1 << 20 });
  }

  /** Stores a blob from a stream; verified before it is visible. */
  async putBlob(source: AsyncIterable<Buffer>, expected: { digest: string; size?: number }): Promise<void> {
    if (await this.hasBlob(expected.digest, expected.size)) return;
    await this.transaction(async (txn) => {
      const writer = await txn.blobWriter(expected);
      for await (const chunk of source) await writer.write(chunk);
      await writer.commit();
    });
  }

  /** Stores bytes whose digest we compute (manifests and configs we write ourselves). */
  async putBytes(data: Buffer, mediaType: string): Promise<Descriptor> {
    return this.transaction((txn) => txn.putBytes(data, mediaType));
  }

  /** Runs `fn` in a transaction: committed if it returns, aborted (nothing left) if it throws. */
  async transaction<T>(fn: (txn: BlobTransaction) => Promise<T>): Promise<T> {
    const txn = await this.begin();
    try {
      const result = await fn(txn);
      await txn.commit();
      return result;
    } catch (err) {
      await txn.abort();
      throw err;
    }
  }

  async readIndex(): Promise<ImageIndex> {
    try {
      return JSON.parse(await readFile(join(this.root, 'index.json'), 'utf8')) as ImageIndex;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NameNotExistError(`${this.root}: no index.json`);
      if (err instanceof SyntaxError) throw new InvalidLayoutError(`${join(this.root, 'index.json')}: not valid JSON`);
      throw err;
    }
  }

  /** The descriptor index.json names `name`, or NameNotExistError listing what is there. */
  async resolve(name: string | undefined): Promise<Descriptor> {
    const index = await this.readIndex();
    if (name === undefined) {
      if (index.manifests.length === 1) return index.manifests[0] as Descriptor;
      throw new NameNotExistError(`${this.root}: ${index.manifests.length} images in the layout; name one (${describeNames(index)})`);
    }
    const found = index.manifests.filter((m) => m.annotations?.[REF_NAME_ANNOTATION] === name);
    if (found.length === 0) throw new NameNotExistError(`${this.root}: no image named "${name}" (${describeNames(index)})`);
    return found[found.length - 1] as Descriptor;
  }

  /**
   * Names `descriptor` as `name` in index.json, replacing what had that name (like skopeo's
   * oci: destination). When the tag fails, the blobs in `placed` (a commit's own) that
   * index.json does not name go again: a failed tag leaves no unreferenced manifest.
   */
  async tag(name: string, descriptor: Descriptor, placed: string[] = []): Promise<void> {
    await this.withIndexLock(() => this.tagLocked(name, descriptor, placed));
  }

  /**
   * A transaction's blobs moved into place and `descriptor` named, in one turn of the index
   * lock: `img-store gc` holds it too, so it never sees the blobs placed but not yet named.
   * `own` picks, of the blobs this commit placed, those a failed tag takes away again.
   */
  async commitAndTag(txn: BlobTransaction, tag: { name: string; descriptor: Descriptor }, own: (placed: string[]) => string[] = (placed) => placed): Promise<void> {
    await this.withIndexLock(async () => this.tagLocked(tag.name, tag.descriptor, own(await txn.commit())));
  }

  /** Runs `fn` holding the index.json lock (core/lock.ts), which every writer of names takes. */
  async withIndexLock<T>(fn: () => Promise<T>): Promise<T> {
    return withLock(`${join(this.root, 'index.json')}.lock`, fn);
  }

  /** Writes index.json whole (called under the index lock). */
  async writeIndex(index: ImageIndex): Promise<void> {
    const indexPath = join(this.root, 'index.json');
    await writeFileAtomic(indexPath, `${JSON.stringify(index)}\n`).catch((err) => Promise.reject(asWriteError(err, indexPath)));
  }

  private async tagLocked(name: string, descriptor: Descriptor, placed: string[]): Promise<void> {
    try {
      const index = await this.readIndex();
      index.manifests = index.manifests.filter((m) => m.annotations?.[REF_NAME_ANNOTATION] !== name).concat(indexEntry(name, descriptor));
      await this.writeIndex(index);
    } catch (err) {
      await this.forget(placed);
      throw err;
    }
  }

  /** Directories the toolkit keeps beside the layout (unpacked layers, containers); OCI readers ignore them. */
  areaPath(area: StoreArea, ...parts: string[]): string {
    return join(this.root, area, ...parts);
  }

  /** Removes blobs index.json does not name (called under the index lock). */
  private async forget(digests: string[]): Promise<void> {
    const index = await this.readIndex().catch(() => undefined);
    const named = new Set(index?.manifests.map((m) => m.digest) ?? []);
    for (const digest of digests) if (!named.has(digest)) await rm(this.blobPath(digest), { force: true });
  }
}

function indexEntry(name: string, descriptor: Descriptor): Descriptor {
  const entry: Descriptor = {
    mediaType: descriptor.mediaType,
    digest: descriptor.digest,
    size: descriptor.size,
    annotations: { ...(descriptor.annotations ?? {}), [REF_NAME_ANNOTATION]: name },
  };
  if (descriptor.platform) entry.platform = descriptor.platform;
  return entry;
}

async function create(root: string): Promise<void> {
  await mkdir(join(root, 'blobs', 'sha256'), { recursive: true });
  await writeFileAtomic(join(root, 'oci-layout'), `${JSON.stringify({ imageLayoutVersion: '1.0.0' })}\n`, { onlyIfMissing: true });
  await writeFileAtomic(join(root, 'index.json'), `${JSON.stringify({ schemaVersion: 2, manifests: [] })}\n`, { onlyIfMissing: true });
}

function describeNames(index: ImageIndex): string {
  const names = index.manifests.map((m) => m.annotations?.[REF_NAME_ANNOTATION]).filter((n): n is string => !!n);
  return names.length ? `it has: ${names.join(', ')}` : 'it names no images';
}

