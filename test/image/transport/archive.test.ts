import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { create as createTar } from 'tar';
import { indexTar } from '../../../lib/image/transport/archive.js';
import { UnsupportedError } from '../../../lib/core/errors.js';
import { tempDir } from '../../helpers/paths.js';
import { assertOneLineError, tool } from '../../helpers/exec.js';

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

test('a crafted docker archive: a malformed manifest.json names the field, a huge config is refused before it is read', async () => {
  const dir = await tempDir('cp-archive-crafted-');
  try {
    const craft = async (name: string, manifest: string, files: Record<string, string | Buffer> = {}) => {
      const content = join(dir.path, name);
      await mkdir(content, { recursive: true });
      await writeFile(join(content, 'manifest.json'), manifest);
      for (const [file, data] of Object.entries(files)) await writeFile(join(content, file), data);
      const tarPath = join(dir.path, `${name}.tar`);
      await createTar({ cwd: content, file: tarPath }, ['manifest.json', ...Object.keys(files)]);
      return tool('img-fetch', [`docker-archive:${tarPath}`, '--store', join(dir.path, `store-${name}`)]);
    };
    assertOneLineError(await craft('null-layers', '[{"Config":"c.json","Layers":null}]', { 'c.json': '{}' }), 'img-fetch', 1, /manifest\.json: \[0\]\.Layers must be a list, got null/);
    assertOneLineError(await craft('not-a-list', '{"Config":"c.json"}'), 'img-fetch', 1, /manifest\.json: the document must be a list, got an object/);
    assertOneLineError(await craft('bad-layer', '[{"Config":"c.json","Layers":[7]}]', { 'c.json': '{}' }), 'img-fetch', 1, /\[0\]\.Layers\[0\] must be a non-empty string, got number 7/);
    // The config member is over skopeo's 4 MiB cap: refused by its size in the tar header, not read.
    const huge = await craft('huge-config', '[{"Config":"c.json","Layers":[]}]', { 'c.json': Buffer.alloc(5 << 20, 0x20) });
    assertOneLineError(huge, 'img-fetch', 1, /c\.json is 5242880 bytes, more than the 4(\.0)? MiB allowed/);
  } finally {
    await dir.cleanup();
  }
});
