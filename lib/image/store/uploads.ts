/**
 * img-push's interrupted uploads, kept in the store's uploads/ area: for a blob on its way to a
 * registry's repository, the upload session's URL after the last part the registry accepted.
 * A later push of the same blob asks that session where it is and goes on from there
 * (distribution-spec "resume"), instead of sending the blob again. A record is only a hint:
 * the registry's answer decides, and a session it no longer has is simply started again.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { digestHex } from '../../core/digest.js';
import { writeFileAtomic } from '../../core/atomic-write.js';

export interface UploadRecord {
  /** The session's URL as the registry last gave it (its Location, resolved). */
  location: string;
  /** The bytes of the blob the registry had accepted when the record was written. */
  offset: number;
}

export class UploadRecords {
  private readonly dir: string;

  /** `area`: the store's uploads/ dir; one subdir per registry and repository. */
  constructor(area: string, registry: string, repository: string) {
    this.dir = join(area, createHash('sha256').update(`${registry}/${repository}`).digest('hex').slice(0, 32));
  }

  async read(digest: string): Promise<UploadRecord | undefined> {
    try {
      const record = JSON.parse(await readFile(this.path(digest), 'utf8')) as Partial<UploadRecord>;
      if (typeof record.location !== 'string' || !/^https?:\/\//.test(record.location) || !Number.isSafeInteger(record.offset)) return undefined;
      return { location: record.location, offset: record.offset as number };
    } catch {
      // Missing or garbled (a kill -9 mid-write leaves only a temp file): no session to resume.
      return undefined;
    }
  }

  async write(digest: string, record: UploadRecord): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    await writeFileAtomic(this.path(digest), `${JSON.stringify(record)}\n`);
  }

  async remove(digest: string): Promise<void> {
    await rm(this.path(digest), { force: true });
  }

  private path(digest: string): string {
    return join(this.dir, `${digestHex(digest)}.json`);
  }
}
