import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { create as createTar } from 'tar';
import { indexTar, memberName } from '../../../lib/image/transport/archive.js';
import { writeTar } from '../../helpers/tar-writer.js';
import { ustar } from '../../helpers/ustar.js';
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

/** Sets a header's field in an uncompressed tar (at `at`, the header's offset) and its checksum again. */
function patchHeader(tar: Buffer, at: number, offset: number, bytes: Buffer): void {
  bytes.copy(tar, at + offset);
  tar.fill(0x20, at + 148, at + 156);
  let sum = 0;
  for (let i = at; i < at + 512; i++) sum += tar[i] as number;
  Buffer.from(`${sum.toString(8).padStart(6, '0')}\0 `).copy(tar, at + 148);
}

test('indexTar: PAX and GNU long names, old-style and contiguous files, ./ and / prefixes, base-256 sizes; links and dirs are no members', async () => {
  const dir = await tempDir('cp-archive-index-');
  try {
    const long = `${'a-long-directory-name/'.repeat(8)}layer.tar`;
    for (const format of ['pax', 'gnu'] as const) {
      const path = join(dir.path, `${format}.tar`);
      await writeFile(path, await writeTar([{ name: long, content: 'long' }, { name: 'd', type: 'dir' }, { name: 's', type: 'symlink', linkname: long }, { name: 'short', content: 'short' }, { name: 'h', type: 'hardlink', linkname: 'short' }], format));
      const members = await indexTar(path);
      assert.deepEqual([...members.keys()], [long, 'short'], format);
      const bytes = await readFile(path);
      const at = (name: string) => members.get(name) as { offset: number; size: number };
      assert.equal(bytes.subarray(at(long).offset, at(long).offset + at(long).size).toString(), 'long');
      assert.equal(bytes.subarray(at('short').offset, at('short').offset + at('short').size).toString(), 'short', 'the long name is not carried over');
    }
    // A PAX header with other records around the path, one with a bad length, a global one with no path.
    const tar = ustar([{ name: './a', type: 'file', content: 'a' }, { name: '/b', type: 'file', content: 'bb' }, { name: 'c', type: 'file', content: 'c' }, { name: '././d', type: 'file', content: 'd' }]);
    patchHeader(tar, 1024, 156, Buffer.from('7'));
    patchHeader(tar, 2048, 156, Buffer.from('\0'));
    const path = join(dir.path, 'kinds.tar');
    await writeFile(path, tar);
    assert.deepEqual([...(await indexTar(path)).entries()], [
      ['a', { offset: 512, size: 1 }],
      ['b', { offset: 1536, size: 2 }],
      ['c', { offset: 2560, size: 1 }],
      ['d', { offset: 3584, size: 1 }],
    ]);
    // GNU base-256: a size field with its top bit set (here, 3 in binary).
    const big = ustar([{ name: 'big', type: 'file', content: 'xyz' }, { name: 'after', type: 'file', content: 'z' }]);
    const size = Buffer.alloc(12);
    size[0] = 0x80;
    size[11] = 3;
    patchHeader(big, 0, 124, size);
    const bigPath = join(dir.path, 'big.tar');
    await writeFile(bigPath, big);
    assert.deepEqual([...(await indexTar(bigPath)).entries()], [['big', { offset: 512, size: 3 }], ['after', { offset: 1536, size: 1 }]]);
    // No end-of-archive blocks: the last member still counts; a header cut short is not read.
    const cut = ustar([{ name: 'x', type: 'file', content: 'x' }]).subarray(0, 1024 + 100);
    const cutPath = join(dir.path, 'cut.tar');
    await writeFile(cutPath, cut);
    assert.deepEqual([...(await indexTar(cutPath)).keys()], ['x']);
    const pax = (records: string[]) => {
      const body = Buffer.from(records.join(''));
      const header = ustar([{ name: 'PaxHeader', type: 'file', content: body.toString('latin1') }]).subarray(0, 512 + Math.ceil(body.length / 512) * 512);
      const copy = Buffer.from(header);
      patchHeader(copy, 0, 156, Buffer.from('x'));
      return copy;
    };
    const record = (key: string, value: string) => {
      const text = ` ${key}=${value}\n`;
      let length = text.length + 1;
      if (String(length).length + text.length !== length) length = String(length + 1).length + text.length;
      return `${length}${text}`;
    };
    const withPax = Buffer.concat([pax([record('mtime', '1700000000.5'), record('path', 'named/by/pax'), record('uid', '0')]), ustar([{ name: 'ignored', type: 'file', content: 'p' }])]);
    const paxPath = join(dir.path, 'pax.tar');
    await writeFile(paxPath, withPax);
    assert.deepEqual([...(await indexTar(paxPath)).keys()], ['named/by/pax']);
    const badPax = Buffer.concat([pax(['x1 path=nope\n']), ustar([{ name: 'kept', type: 'file', content: 'k' }])]);
    await writeFile(paxPath, badPax);
    assert.deepEqual([...(await indexTar(paxPath)).keys()], ['kept'], 'a record with no length: the rest is not read');
    const noPath = Buffer.concat([pax([record('comment', 'hi')]), ustar([{ name: 'own', type: 'file', content: 'o' }])]);
    await writeFile(paxPath, noPath);
    assert.deepEqual([...(await indexTar(paxPath)).keys()], ['own']);
    assert.equal(memberName('./x/../y'), 'y');
  } finally {
    await dir.cleanup();
  }
});
