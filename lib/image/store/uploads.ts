/**
 * img-push's interrupted uploads, kept in the store's uploads/ area: for a blob on its way to a
 * registry's repository, the upload session's URL after the last part the registry accepted.
 * A later push of the same blob asks that session where it is and goes on from there
 * (distribution-spec "resume"), instead of sending the blob again. A record is only a hint:
 * the registry's answer decides, and a session it no longer has is simply started again.
 * A record names the push that wrote it: while that push lives, another push of the same blob
 * neither resumes its session nor overwrites or removes its record (it opens its own session).
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { digestHex } from '../../core/digest.js';
import { writeFileAtomic } from '../../core/atomic-write.js';
import { currentHolder, holderLiveness, parseHolder, type HolderRecord } from '../../core/holder.js';

export interface UploadRecord {
  /** The session's URL as the registry last gave it (its Location, resolved). */
  location: string;
  /** The bytes of the blob the registry had accepted when the record was written. */
  offset: number;
}

interface StoredRecord extends UploadRecord {
  holder?: HolderRecord;
}

export class UploadRecords {
  private readonly dir: string;

  /** `area`: the store's uploads/ dir; one subdir per registry and repository. */
  constructor(area: string, registry: string, repository: string) {
    this.dir = join(area, createHash('sha256').update(`${registry}/${repository}`).digest('hex').slice(0, 32));
  }

  /** The session to go on with: undefined when there is none, or when a live push (not this one) is using it. */
  async read(digest: string): Promise<UploadRecord | undefined> {
    const record = await this.stored(digest);
    if (!record || this.heldByOther(record)) return undefined;
    return { location: record.location, offset: record.offset };
  }

  async write(digest: string, record: UploadRecord): Promise<void> {
    if (this.heldByOther(await this.stored(digest))) return;
    await mkdir(this.dir, { recursive: true });
    await writeFileAtomic(this.path(digest), `${JSON.stringify({ ...record, holder: currentHolder() })}\n`);
  }

  async remove(digest: string): Promise<void> {
    if (this.heldByOther(await this.stored(digest))) return;
    await rm(this.path(digest), { force: true });
  }

  private async stored(digest: string): Promise<StoredRecord | undefined> {
    try {
      const record = JSON.parse(await readFile(this.path(digest), 'utf8')) as Partial<StoredRecord>;
      if (typeof record.location !== 'string' || !/^https?:\/\//.test(record.location) || !Number.isSafeInteger(record.offset)) return undefined;
      const holder = record.holder ? parseHolder(JSON.stringify(record.holder)) : undefined;
      return { location: record.location, offset: record.offset as number, ...(holder ? { holder } : {}) };
    } catch {
      // Missing or garbled (a kill -9 mid-write leaves only a temp file): no session to resume.
      return undefined;
    }
  }

  /** A live push other than this one wrote it (a holder we cannot judge, from another namespace, is taken for gone). */
  private heldByOther(record: StoredRecord | undefined): boolean {
    if (!record?.holder) return false;
    const me = currentHolder();
    if (record.holder.pid === me.pid && record.holder.startTime === me.startTime) return false;
    return holderLiveness(record.holder) === 'alive';
  }

  private path(digest: string): string {
    return join(this.dir, `${digestHex(digest)}.json`);
  }
}
