/**
 * Property tests of the tar reader (lib/layer/tarstream.ts), on archives written by another
 * writer (python3's tarfile, test/helpers/tar-writer.ts), PAX and GNU: any sequence of valid
 * entries reads back as written, however the stream is cut into chunks; any corrupted or
 * truncated archive fails with one typed error (UnsupportedError), never another error, a
 * crash or a hang.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { TarReader, type TarHeader } from '../../lib/layer/tarstream.js';
import { UnsupportedError } from '../../lib/core/errors.js';
import type { EntrySpec, TarFormat } from '../helpers/tar-writer.js';
import { TarWriterServer } from '../helpers/tar-writer-server.js';

const tarWriter = new TarWriterServer();
after(() => tarWriter.close());
const writeTar = (entries: EntrySpec[], fmt: TarFormat) => tarWriter.write(entries, fmt);

const component = fc.stringMatching(/^[a-zA-Z0-9._-]{1,40}$/).filter((c) => c !== '.' && c !== '..');
/** Up to 6 components: names over 100 bytes need PAX path records or GNU long names. */
const entryName = fc.array(component, { minLength: 1, maxLength: 6 }).map((parts) => parts.join('/'));
/** Over 100 bytes: PAX path records, GNU long names (L) and long links (K). */
const longName = fc.tuple(component, fc.integer({ min: 101, max: 300 })).map(([c, n]) => `${'d'.repeat(60)}/${c}`.padEnd(n, 'x'));
const anyName = fc.oneof(entryName, longName);
const unicodeName = fc.tuple(entryName, fc.constantFrom('é', 'ß', '日本', '😀')).map(([n, u]) => `${n}${u}`);
/** Ids past 7 octal digits need PAX records or GNU base-256. */
const ids = fc.oneof(fc.integer({ min: 0, max: 65535 }), fc.integer({ min: 0o7777777, max: 0x7fffffff }));

const entrySpec: fc.Arbitrary<EntrySpec> = fc.oneof(
  fc.record({ name: fc.oneof(anyName, unicodeName), type: fc.constant('file' as const), mode: fc.integer({ min: 0, max: 0o7777 }), uid: ids, gid: ids, mtime: fc.oneof(fc.integer({ min: 0, max: 2 ** 31 }), fc.integer({ min: 8 ** 11, max: 2 ** 40 })), content: fc.string({ maxLength: 1500 }) }),
  fc.record({ name: anyName, type: fc.constant('dir' as const), mode: fc.integer({ min: 0, max: 0o7777 }), uid: ids, gid: ids }),
  fc.record({ name: anyName, type: fc.constantFrom('symlink' as const, 'hardlink' as const), linkname: fc.oneof(entryName, longName, entryName.map((n) => `/${n}`), fc.constant('../../..')) }),
  fc.record({ name: entryName, type: fc.constantFrom('char' as const, 'block' as const), devmajor: fc.integer({ min: 0, max: 4095 }), devminor: fc.integer({ min: 0, max: 0xfffff }) }),
  fc.record({ name: entryName, type: fc.constant('fifo' as const) }),
  fc.record({ name: entryName, type: fc.constant('file' as const), content: fc.string({ maxLength: 20 }), xattrs: fc.dictionary(fc.constantFrom('user.a', 'user.b', 'security.capability', 'trusted.x'), fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)), { maxKeys: 3 }) }),
);
const format = fc.constantFrom<TarFormat>('pax', 'gnu');

interface ReadEntry {
  header: TarHeader;
  body: Buffer;
}

/** The archive as chunks cut at `cuts` (fractions of its length): the reader must not care. */
async function* chunked(data: Buffer, cuts: number[]): AsyncGenerator<Buffer> {
  const at = [...new Set(cuts.map((c) => Math.floor(c * data.length)))].sort((a, b) => a - b);
  let from = 0;
  for (const to of [...at, data.length]) {
    yield data.subarray(from, to);
    from = to;
  }
}

async function readAll(source: AsyncIterator<Buffer>): Promise<ReadEntry[]> {
  const reader = new TarReader(source);
  const entries: ReadEntry[] = [];
  for (let header = await reader.next(); header; header = await reader.next()) {
    const parts: Buffer[] = [];
    await reader.readBody((d) => parts.push(Buffer.from(d)));
    entries.push({ header, body: Buffer.concat(parts) });
  }
  return entries;
}

/** Reading must end within `ms`: a hang is a failure of its own, not a stuck test. */
async function readWithin(data: Buffer, cuts: number[], ms = 5000): Promise<ReadEntry[]> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the reader did not end within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([readAll(chunked(data, cuts)[Symbol.asyncIterator]()), hang]);
  } finally {
    clearTimeout(timer);
  }
}

const TYPE_OF: Record<NonNullable<EntrySpec['type']>, TarHeader['type']> = { file: 'file', dir: 'directory', symlink: 'symlink', hardlink: 'hardlink', char: 'char', block: 'block', fifo: 'fifo' };

/** `fmt`: python's GNU format writes no PAX records, so no xattrs. */
function assertReadsBack(spec: EntrySpec, read: ReadEntry | undefined, fmt: TarFormat): void {
  assert.ok(read, `entry ${spec.name} read`);
  const { header, body } = read;
  const type = spec.type ?? 'file';
  assert.equal(header.name.replace(/\/$/, ''), spec.name);
  assert.equal(header.type, TYPE_OF[type]);
  if (spec.mode !== undefined) assert.equal(header.mode, spec.mode);
  assert.equal(header.uid, spec.uid ?? 0);
  assert.equal(header.gid, spec.gid ?? 0);
  assert.equal(header.mtime, spec.mtime ?? 1700000000);
  if (type === 'symlink' || type === 'hardlink') assert.equal(header.linkname, spec.linkname);
  if (type === 'char' || type === 'block') assert.deepEqual([header.devmajor, header.devminor], [spec.devmajor, spec.devminor]);
  const content = Buffer.from(spec.content ?? '', 'utf8');
  assert.equal(header.size, type === 'file' ? content.length : 0);
  assert.deepEqual(body, type === 'file' ? content : Buffer.alloc(0));
  assert.deepEqual(Object.fromEntries(header.xattrs), fmt === 'pax' ? { ...spec.xattrs } : {});
}

const cuts = fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 8 });

test('any sequence of valid entries, PAX or GNU, reads back as written, in any chunking', { timeout: 120_000 }, async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(entrySpec, { minLength: 0, maxLength: 8 }), format, cuts, async (specs, fmt, at) => {
      const entries = await readWithin(await writeTar(specs, fmt), at);
      assert.equal(entries.length, specs.length);
      specs.forEach((spec, i) => assertReadsBack(spec, entries[i], fmt));
    }),
    { numRuns: 150 },
  );
});

/** Reads `data` and says how it ended: entries, or the one typed error. Anything else fails the property. */
async function outcome(data: Buffer, at: number[]): Promise<'read' | 'refused'> {
  try {
    await readWithin(data, at);
    return 'read';
  } catch (err) {
    assert.ok(err instanceof UnsupportedError, `a typed error, not ${(err as Error)?.stack ?? String(err)}`);
    assert.match(err.message, /^layer: [^\n]+$/, 'one line');
    return 'refused';
  }
}

const archive = fc.tuple(fc.array(entrySpec, { minLength: 1, maxLength: 4 }), format);

test('any corrupted byte, any truncation: one typed error (or a valid reading), never a crash or a hang', { timeout: 120_000 }, async () => {
  await fc.assert(
    fc.asyncProperty(archive, fc.nat(), fc.integer({ min: 1, max: 255 }), fc.nat(), cuts, async ([specs, fmt], where, delta, cutAt, at) => {
      const data = await writeTar(specs, fmt);
      const corrupted = Buffer.from(data);
      const offset = where % data.length;
      corrupted[offset] = ((corrupted[offset] as number) + delta) % 256;
      await outcome(corrupted, at);
      await outcome(data.subarray(0, cutAt % data.length), at);
    }),
    { numRuns: 150 },
  );
});

test('a changed byte in a header block, outside its checksum field, is always refused', { timeout: 120_000 }, async () => {
  await fc.assert(
    fc.asyncProperty(archive, fc.integer({ min: 0, max: 511 }).filter((i) => i < 148 || i >= 156), fc.integer({ min: 1, max: 255 }), async ([specs, fmt], offset, delta) => {
      const corrupted = Buffer.from(await writeTar(specs, fmt));
      corrupted[offset] = ((corrupted[offset] as number) + delta) % 256;
      assert.equal(await outcome(corrupted, []), 'refused');
    }),
    { numRuns: 150 },
  );
});

test('an archive cut before its end, not on a 512-byte block boundary, is refused, at any chunking', { timeout: 120_000 }, async () => {
  await fc.assert(
    fc.asyncProperty(archive, fc.nat(), cuts, async ([specs, fmt], where, at) => {
      const data = await writeTar(specs, fmt);
      // Everything before the end-of-archive blocks is in whole blocks: a cut inside one cuts an entry.
      const contentEnd = data.length - trailingZeroBlocks(data) * 512;
      const cut = where % contentEnd;
      fc.pre(cut % 512 !== 0);
      assert.equal(await outcome(data.subarray(0, cut), at), 'refused');
    }),
    { numRuns: 150 },
  );
});

/** The zero blocks at the end (python's tarfile pads the archive to a 10240-byte record). */
function trailingZeroBlocks(data: Buffer): number {
  let n = 0;
  while (n < data.length && data[data.length - 1 - n] === 0) n++;
  return Math.floor(n / 512);
}
