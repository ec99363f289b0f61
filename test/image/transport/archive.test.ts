import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { create as createTar } from 'tar';
import { indexTar } from '../../../lib/image/transport/archive.js';
import { UnsupportedError } from '../../../lib/core/errors.js';
import { tempDir } from '../../helpers/paths.js';

test('members of a tar are found by name with their byte ranges, long (pax) names included', async () => {
  const dir = await tempDir('cp-archive-');
  try {
    const content = join(dir.path, 'content');
    const long = `${'deep/'.repeat(30)}layer.tar`;
    await mkdir(join(content, long, '..'), { recursive: true });
    await writeFile(join(content, 'manifest.json'), '[{"Config":"c.json"}]');
    await writeFile(join(content, long), Buffer.alloc(1500, 7));
    const tarPath = join(dir.path, 'a.tar');
    await createTar({ cwd: content, file: tarPath }, ['manifest.json', long]);
    const members = await indexTar(tarPath);
    const bytes = await readFile(tarPath);
    const manifest = members.get('manifest.json');
    assert.ok(manifest);
    assert.equal(bytes.subarray(manifest.offset, manifest.offset + manifest.size).toString(), '[{"Config":"c.json"}]');
    const layer = members.get(long);
    assert.ok(layer, `long name found (${[...members.keys()].join(', ')})`);
    assert.equal(layer.size, 1500);
    assert.ok(bytes.subarray(layer.offset, layer.offset + layer.size).every((b) => b === 7));

    const notTar = join(dir.path, 'not.tar');
    await writeFile(notTar, Buffer.alloc(2048, 1));
    await assert.rejects(indexTar(notTar), (e: unknown) => e instanceof UnsupportedError && /not a tar archive \(bad header checksum at byte 0\)/.test(e.message));
  } finally {
    await dir.cleanup();
  }
});
