/**
 * Blobs written together, all or nothing: each is verified into a private staging directory
 * inside the layout, and only commit() moves them into place (so one bad layer leaves no
 * other layer of the same pull behind). The staging directory holds its owner's record
 * (core/holder.ts) from the moment it exists under its name, and the owner keeps touching it;
 * a later open sweeps the directories of owners that are dead, or unseen and silent too long.
 * A blob the transaction finds already in place is claimed: hard-linked into the staging
 * directory, so that `img-store gc` (which removes only what index.json does not name and
 * leaves live staging directories alone) cannot take it before the transaction's name does.
 */
import { link, mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { digestHex, digestOf } from '../../core/digest.js';
import { isFileOfSize } from '../../core/atomic-write.js';
import { currentHolder, holderLiveness, isStale, parseHolder, pidExists, startHeartbeat } from '../../core/holder.js';
import { BlobWriter, type ExpectedBlob } from './blob-writer.js';
import { asWriteError } from './errors.js';
import type { Descriptor } from '../model.js';
import { putThroughWriter, type SinkWrite } from '../image.js';

const STAGING_PREFIX = '.staging-';
const HOLDER_FILE = 'holder.json';

export class BlobTransaction {
  private readonly staged: string[] = [];
  private readonly heartbeat: { stop(): void };

  private constructor(readonly stagingDir: string, private readonly finalPath: (digest: string) => string) {
    this.heartbeat = startHeartbeat(join(stagingDir, HOLDER_FILE));
  }

  /** A new transaction in a fresh staging directory under `root`. */
  static async begin(root: string, finalPath: (digest: string) => string): Promise<BlobTransaction> {
    return new BlobTransaction(await createStagingDir(root), finalPath);
  }

  /** Where a blob is readable now: staged in this transaction, or already in place. */
  blobPath(digest: string): string {
    return this.staged.includes(digest) ? this.stagedPath(digest) : this.finalPath(digest);
  }

  /** Whether the blob is there for this transaction: staged in it, or in place and claimed by it. */
  async hasBlob(digest: string, size?: number): Promise<boolean> {
    if (this.staged.includes(digest)) return (await isFileOfSize(this.stagedPath(digest), size)) || (await this.claim(digest, size));
    return this.claim(digest, size);
  }

  /**
   * A link of the blob in place, in the staging directory: from here on the transaction holds
   * it (commit's rename puts it back if a gc removed it meanwhile). link(2) is atomic, so a gc
   * either removed the blob first (the transaction then fetches it) or cannot take it at all.
   */
  private async claim(digest: string, size?: number): Promise<boolean> {
    if (!(await isFileOfSize(this.finalPath(digest), size))) return false;
    const claimed = this.stagedPath(digest);
    try {
      await link(this.finalPath(digest), claimed);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return false;
      // A file system without hard links (or no room for the entry): the blob is used unclaimed, as before claims.
      if (code !== 'EEXIST') return true;
    }
    if (!this.staged.includes(digest)) this.staged.push(digest);
    return isFileOfSize(claimed, size);
  }

  async blobWriter(expected: ExpectedBlob): Promise<BlobWriter> {
    const hex = digestHex(expected.digest);
    if (!this.staged.includes(expected.digest)) this.staged.push(expected.digest);
    return new BlobWriter(expected, join(this.stagingDir, `${hex}.${randomBytes(4).toString('hex')}.part`), this.stagedPath(expected.digest));
  }

  /** The blob half of a file sink's write (image.ts SinkWrite), bound to this transaction. */
  blobAccess(already: string): Pick<SinkWrite, 'already' | 'hasBlob' | 'putBlob' | 'readBlob'> {
    return {
      already,
      hasBlob: (digest, size) => this.hasBlob(digest, size),
      putBlob: async (image, blob, options) => putThroughWriter(await this.blobWriter(blob), image, blob, options),
      readBlob: (digest) => readFile(this.blobPath(digest)),
    };
  }

  /** Stages bytes whose digest we compute (manifests we write). */
  async putBytes(data: Buffer, mediaType: string): Promise<Descriptor> {
    const digest = digestOf(data);
    if (!(await this.hasBlob(digest, data.length))) {
      const writer = await this.blobWriter({ digest, size: data.length });
      await writer.write(data);
      await writer.commit();
    }
    return { mediaType, digest, size: data.length };
  }

  /**
   * Stages a blob whose digest is known only at its end (a layer being made): hashed as it is
   * written, synced, then named by its digest. A failed source or write leaves no file.
   */
  async putStream(source: AsyncIterable<Buffer>, mediaType: string): Promise<Descriptor> {
    const temp = join(this.stagingDir, `new.${randomBytes(4).toString('hex')}.part`);
    // Only the store's own calls are write errors: the source's (a walk that fails) pass as they are.
    const store = <T>(call: Promise<T>) => call.catch((err) => Promise.reject(asWriteError(err, temp)));
    const hash = createHash('sha256');
    let size = 0;
    try {
      const handle = await store(open(temp, 'w'));
      try {
        for await (const chunk of source) {
          hash.update(chunk);
          size += chunk.length;
          await store(handle.write(chunk));
        }
        await store(handle.sync());
      } finally {
        await handle.close();
      }
      const digest = `sha256:${hash.digest('hex')}`;
      if (await this.hasBlob(digest, size)) await rm(temp, { force: true });
      else await store(this.adopt(temp, digest));
      return { mediaType, digest, size };
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
  }

  private async adopt(temp: string, digest: string): Promise<void> {
    await rename(temp, this.stagedPath(digest));
    if (!this.staged.includes(digest)) this.staged.push(digest);
  }

  /**
   * Moves the staged blobs into place, in the order they were staged (so manifests, staged
   * last, land last). Returns the digests that were not in place before: this commit's own.
   */
  async commit(): Promise<string[]> {
    const placed: string[] = [];
    for (const digest of this.staged) {
      const staged = this.stagedPath(digest);
      if (!(await isFileOfSize(staged))) continue;
      if (!(await isFileOfSize(this.finalPath(digest)))) placed.push(digest);
      await rename(staged, this.finalPath(digest)).catch((err) => Promise.reject(asWriteError(err, this.finalPath(digest))));
    }
    await this.abort();
    return placed;
  }

  async abort(): Promise<void> {
    this.heartbeat.stop();
    await rm(this.stagingDir, { recursive: true, force: true });
  }

  private stagedPath(digest: string): string {
    return join(this.stagingDir, digestHex(digest));
  }
}

/**
 * The directory is made under a name the sweep leaves alone until stale, given its holder
 * record, and only then renamed to its staging name: no sweep ever sees it without a record.
 */
async function createStagingDir(root: string): Promise<string> {
  const id = randomBytes(4).toString('hex');
  const dir = join(root, `${STAGING_PREFIX}${process.pid}-${id}`);
  const fresh = join(root, `${STAGING_PREFIX}new-${id}`);
  try {
    await mkdir(fresh);
    await writeFile(join(fresh, HOLDER_FILE), JSON.stringify(currentHolder()));
    await rename(fresh, dir);
  } catch (err) {
    await rm(fresh, { recursive: true, force: true }).catch(() => undefined);
    throw asWriteError(err, fresh);
  }
  return dir;
}

/** Removes staging directories whose owners are gone (killed in the middle of a pull); returns their names. */
export async function sweepStaging(root: string): Promise<string[]> {
  const entries = await readdir(root).catch(() => [] as string[]);
  const swept: string[] = [];
  for (const entry of entries) {
    if (!entry.startsWith(STAGING_PREFIX) || !(await abandoned(join(root, entry), entry))) continue;
    await rm(join(root, entry), { recursive: true, force: true });
    swept.push(entry);
  }
  return swept;
}

async function abandoned(dir: string, entry: string): Promise<boolean> {
  const holder = parseHolder(await readFile(join(dir, HOLDER_FILE), 'utf8').catch(() => ''));
  if (holder) {
    const liveness = holderLiveness(holder);
    return liveness === 'unknown' ? await untouchedTooLong(join(dir, HOLDER_FILE)) : liveness === 'dead';
  }
  // No record: an older version's directory, named by its pid alone (in our namespace, we must assume).
  const pid = Number(/^\.staging-(\d+)-/.exec(entry)?.[1]);
  if (pid) return pid !== process.pid && !pidExists(pid);
  return untouchedTooLong(dir);
}

async function untouchedTooLong(path: string): Promise<boolean> {
  const info = await stat(path).catch(() => undefined);
  return !info || isStale(info.mtimeMs);
}
