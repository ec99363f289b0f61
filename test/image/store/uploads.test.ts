/**
 * img-push's upload records (the store's uploads/ area), in process: a record is kept per
 * registry and repository, read back as written, and only a hint (garbled or foreign records
 * are no session); a record another live push holds is neither resumed, overwritten nor
 * removed, one of a dead push (or of this one) is.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { digestHex, digestOf } from '../../../lib/core/digest.js';
import { currentHolder, processStartTime } from '../../../lib/core/holder.js';
import { UploadRecords } from '../../../lib/image/store/uploads.js';
import { withTempDir } from '../../helpers/paths.js';

const withTemp = (fn: (dir: string) => Promise<void>) => withTempDir('cp-uploads-', fn);

const digest = digestOf(Buffer.from('layer'));
const session = { location: 'https://registry.example/v2/lab/x/blobs/uploads/abc?_state=1', offset: 1024 };

/** The one record file of `records` (there is one directory per registry and repository). */
function recordFile(area: string): string {
  const [dir, ...others] = readdirSync(area);
  assert.deepEqual(others, []);
  return join(area, dir as string, `${digestHex(digest)}.json`);
}

test('a record reads back as written, per registry and repository, with its holder; remove drops it', () =>
  withTemp(async (area) => {
    const records = new UploadRecords(area, 'registry.example', 'lab/x');
    assert.equal(await records.read(digest), undefined);
    await records.write(digest, session);
    assert.deepEqual(await records.read(digest), session);
    const stored = JSON.parse(readFileSync(recordFile(area), 'utf8'));
    assert.deepEqual(stored, { ...session, holder: currentHolder() });
    assert.equal(await new UploadRecords(area, 'registry.example', 'lab/y').read(digest), undefined, 'another repository');
    assert.equal(await new UploadRecords(area, 'other.example', 'lab/x').read(digest), undefined, 'another registry');
    assert.equal(readdirSync(area)[0]?.length, 32);
    await records.write(digest, { ...session, offset: 2048 });
    assert.equal((await records.read(digest))?.offset, 2048, 'our own record is ours to overwrite');
    await records.remove(digest);
    assert.equal(await records.read(digest), undefined);
    await records.remove(digest);
  }));

test('a garbled record, or one with a location that is not http(s) or an offset that is not an integer, is no session', () =>
  withTemp(async (area) => {
    const records = new UploadRecords(area, 'r', 'p');
    await records.write(digest, session);
    const file = recordFile(area);
    for (const text of ['{', '[]', JSON.stringify({ ...session, location: 'file:///etc/passwd' }), JSON.stringify({ ...session, location: 'file:///etc/passwd#https://x' }), JSON.stringify({ ...session, location: 7 }), JSON.stringify({ ...session, offset: 1.5 }), JSON.stringify({ location: session.location })]) {
      await writeFile(file, text);
      assert.equal(await records.read(digest), undefined, text);
    }
    await writeFile(file, JSON.stringify({ ...session, location: 'http://plain.example/u' }));
    assert.deepEqual(await records.read(digest), { location: 'http://plain.example/u', offset: session.offset });
    await writeFile(file, JSON.stringify({ ...session, holder: { pid: 'garbled' } }));
    assert.deepEqual(await records.read(digest), session, 'a holder we cannot read holds nothing');
  }));

test("another live push's record is not resumed, overwritten or removed; a dead push's is", () =>
  withTemp(async (area) => {
    const records = new UploadRecords(area, 'r', 'p');
    await records.write(digest, session);
    const file = recordFile(area);
    const me = currentHolder();
    // pid 1 lives in our namespace (init), with its own start time: another live holder.
    const live = { ...me, pid: 1, startTime: processStartTime(1) };
    const theirs = JSON.stringify({ ...session, holder: live });
    await writeFile(file, theirs);
    assert.equal(await records.read(digest), undefined);
    await records.write(digest, { ...session, offset: 1 });
    assert.equal(readFileSync(file, 'utf8'), theirs, 'not overwritten');
    await records.remove(digest);
    assert.equal(readFileSync(file, 'utf8'), theirs, 'not removed');
    // The same pid started at another time: that push is gone, its session is free.
    await writeFile(file, JSON.stringify({ ...session, holder: { ...live, startTime: '1' } }));
    assert.deepEqual(await records.read(digest), session);
    await records.write(digest, { ...session, offset: 4096 });
    assert.equal((await records.read(digest))?.offset, 4096);
    await writeFile(file, JSON.stringify({ ...session, holder: { ...me, startTime: '1' } }));
    assert.deepEqual(await records.read(digest), session, 'our pid, another start: a dead push');
    await records.remove(digest);
    assert.equal(readdirSync(join(file, '..')).length, 0);
  }));
