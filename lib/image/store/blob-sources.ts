/**
 * Where the store's blobs came from: for a blob pulled from a registry, the repositories
 * (`REGISTRY/REPOSITORY`) that served it, in the store's sources/ area, one small file per
 * blob. img-push reads them to mount a blob from a repository of the destination registry
 * instead of sending it (distribution-spec `?mount=&from=`): a committed image's base layers
 * were pulled from somewhere, and that is where the registry already has them. A record is
 * only a hint: a mount the registry refuses opens an upload session, and the blob is sent.
 */
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { digestHex } from '../../core/digest.js';
import { writeFileAtomic } from '../../core/atomic-write.js';
import type { ImageReference } from '../reference.js';

/** The repositories a record keeps at most, newest first (a hint, not a history). */
const MAX_SOURCES = 8;
const RECORD_NAME = /^([a-f0-9]{64})\.json$/;

export interface BlobSource {
  registry: string;
  repository: string;
}

export class BlobSources {
  private readonly dir: string;

  constructor(store: string) {
    this.dir = join(store, 'sources');
  }

  /** The repositories that served `digest`, newest first; none when there is no (readable) record. */
  async read(digest: string): Promise<BlobSource[]> {
    try {
      const parsed = JSON.parse(await readFile(this.path(digest), 'utf8')) as unknown;
      return Array.isArray(parsed) ? parsed.filter(isSource) : [];
    } catch {
      return [];
    }
  }

  /** Records that `origin`'s repository has these blobs (after they are in the store, or in it), all at once. */
  async record(digests: string[], origin: ImageReference): Promise<void> {
    const source: BlobSource = { registry: origin.registry, repository: origin.repository };
    const same = (s: BlobSource) => s.registry === source.registry && s.repository === source.repository;
    await mkdir(this.dir, { recursive: true });
    await Promise.all(
      [...new Set(digests)].map(async (digest) => {
        const known = await this.read(digest);
        // A pull or push of the same image again: nothing to write.
        if (known[0] && same(known[0])) return;
        await writeFileAtomic(this.path(digest), `${JSON.stringify([source, ...known.filter((s) => !same(s))].slice(0, MAX_SOURCES))}\n`);
      }),
    );
  }

  /** Removes the records of blobs the store no longer keeps (the gc); returns their digests. */
  async sweep(keep: Set<string>): Promise<string[]> {
    const removed: string[] = [];
    for (const name of await readdir(this.dir).catch(() => [] as string[])) {
      const hex = RECORD_NAME.exec(name)?.[1];
      if (!hex || keep.has(`sha256:${hex}`)) continue;
      await rm(join(this.dir, name), { force: true });
      removed.push(`sha256:${hex}`);
    }
    return removed;
  }

  private path(digest: string): string {
    return join(this.dir, `${digestHex(digest)}.json`);
  }
}

function isSource(value: unknown): value is BlobSource {
  const source = value as BlobSource;
  return typeof source?.registry === 'string' && typeof source.repository === 'string' && source.registry !== '' && source.repository !== '';
}

