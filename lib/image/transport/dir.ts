/**
 * skopeo's `dir:` layout (seed 000) as a sink: one image, blobs named by their hex digest, the
 * manifest as manifest.json and a version file. Written the way skopeo writes it so skopeo
 * reads it back; the manifest is kept as the source served it.
 */
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { digestHex } from '../../core/digest.js';
import { ClobberError } from '../../core/errors.js';
import { isFileOfSize, writeFileAtomic } from '../../core/atomic-write.js';
import { BlobTransaction } from '../store/transaction.js';
import { asWriteError } from '../store/errors.js';
import type { LocalSink } from '../image.js';

export class DirLayout {
  private constructor(readonly root: string, private readonly created: boolean) {}

  /** A new or empty directory, or one skopeo's dir: transport wrote (its image is replaced, as skopeo does). */
  static async create(root: string): Promise<DirLayout> {
    let entries: string[];
    try {
      entries = await readdir(root);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      await mkdir(root, { recursive: true }).catch((e) => Promise.reject(asWriteError(e, root)));
      return new DirLayout(root, true);
    }
    if (entries.length > 0 && !entries.includes('version')) {
      throw new ClobberError(`${root}: not empty and not a dir: layout; refusing to write into it`, { hint: 'give a new or empty directory' });
    }
    return new DirLayout(root, false);
  }

  blobPath(digest: string): string {
    return join(this.root, digestHex(digest));
  }

  async hasBlob(digest: string, size?: number): Promise<boolean> {
    return isFileOfSize(this.blobPath(digest), size);
  }

  async begin(): Promise<BlobTransaction> {
    return BlobTransaction.begin(this.root, (digest) => this.blobPath(digest));
  }

  /** Commits the image's blobs, then its manifest; blobs of the image that was there before go. */
  async commit(txn: BlobTransaction, manifest: Buffer, blobs: string[]): Promise<void> {
    await txn.commit();
    const manifestPath = join(this.root, 'manifest.json');
    await writeFileAtomic(manifestPath, manifest).catch((err) => Promise.reject(asWriteError(err, manifestPath)));
    await writeFile(join(this.root, 'version'), 'Directory Transport Version: 1.1\n').catch((err) => Promise.reject(asWriteError(err, join(this.root, 'version'))));
    const keep = new Set(blobs.map(digestHex));
    for (const entry of await readdir(this.root)) {
      if (/^[a-f0-9]{64}$/.test(entry) && !keep.has(entry)) await rm(join(this.root, entry), { force: true });
    }
  }

  /** After a failed write: nothing staged stays, and a directory we created goes. */
  async abort(txn: BlobTransaction): Promise<void> {
    await txn.abort();
    if (this.created) await rm(this.root, { recursive: true, force: true });
  }
}

export async function dirSink(path: string): Promise<LocalSink> {
  const layout = await DirLayout.create(path);
  return {
    path,
    layout: 'dir',
    hasBlob: layout.hasBlob.bind(layout),
    blobPath: layout.blobPath.bind(layout),
    async begin() {
      const txn = await layout.begin();
      // Written last, at commit: the manifest and the blobs it names.
      let staged: { body: Buffer; blobs: string[] } = { body: Buffer.alloc(0), blobs: [] };
      return {
        ...txn.blobAccess('already in the store'),
        async stageManifest(image) {
          const { rawManifest: raw, manifest } = image;
          staged = { body: raw.body, blobs: [manifest.config.digest, ...manifest.layers.map((l) => l.digest)] };
          return { mediaType: raw.mediaType, digest: raw.digest, size: raw.body.length };
        },
        commit: () => layout.commit(txn, staged.body, staged.blobs),
        abort: () => layout.abort(txn),
      };
    },
  };
}
