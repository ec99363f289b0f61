/**
 * A streaming tar reader for layers: ustar, GNU (long names, base-256 numbers) and PAX
 * headers, read from an async stream of chunks with no copying of file data.
 *
 * Our own rather than npm tar's Parser because a layer needs what that parser drops or
 * mangles: PAX `SCHILY.xattr.*` records (npm tar ignores them) whose values are binary
 * (`security.capability` is a little-endian struct; npm tar decodes PAX bodies as UTF-8,
 * which replaces its bytes). Here PAX values stay bytes until a known text key is decoded.
 */
import { UnsupportedError } from '../core/errors.js';

export type EntryType = 'file' | 'directory' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';

export interface TarHeader {
  /** The name as stored (not cleaned: callers decide what `../` and `/` mean). */
  name: string;
  type: EntryType;
  /** Permission bits with setuid/setgid/sticky (07777). */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Seconds since the epoch; fractional when a PAX header gives sub-second precision. */
  mtime: number;
  atime?: number;
  /** Symlink target, or for a hardlink the name of the entry it links to. */
  linkname: string;
  devmajor: number;
  devminor: number;
  /** Extended attributes from PAX SCHILY.xattr.NAME records, values as raw bytes. */
  xattrs: ReadonlyMap<string, Buffer>;
}

export type Compression = 'none' | 'gzip' | 'zstd';

/** The layer media types of the OCI image-spec and Docker's schema2 (incl. non-distributable/foreign). */
export function layerCompression(mediaType: string): Compression {
  if (/^application\/vnd\.oci\.image\.layer\.(nondistributable\.)?v1\.tar$/.test(mediaType) || mediaType === 'application/vnd.docker.image.rootfs.diff.tar') return 'none';
  if (/^application\/vnd\.oci\.image\.layer\.(nondistributable\.)?v1\.tar\+gzip$/.test(mediaType) || /^application\/vnd\.docker\.image\.rootfs\.(foreign\.)?diff\.tar\.gzip$/.test(mediaType)) return 'gzip';
  if (/^application\/vnd\.oci\.image\.layer\.(nondistributable\.)?v1\.tar\+zstd$/.test(mediaType) || mediaType === 'application/vnd.docker.image.rootfs.diff.tar.zstd') return 'zstd';
  throw new UnsupportedError(`unsupported layer media type "${mediaType}"`);
}

const BLOCK = 512;
/** The xattrs of every entry without a PAX header (most of them): one empty map, never written to. */
const NO_XATTRS: ReadonlyMap<string, Buffer> = new Map();
const XATTR_PREFIX = 'SCHILY.xattr.';

const TYPES: Record<string, EntryType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'directory',
  '6': 'fifo',
};

/** Reads entries one after the other: `next()` for a header, then `readBody()` (or not: `next()` skips it). */
export class TarReader {
  private chunk: Buffer = Buffer.alloc(0);
  private pos = 0;
  /** Bytes of the current entry's body not read yet, and the padding after it. */
  private bodyLeft = 0;
  private paddingLeft = 0;
  private globals = new Map<string, Buffer>();
  private ended = false;
  /** Offset of the next unread byte in the uncompressed stream, for error messages. */
  private offset = 0;

  /** `source`'s chunks may be reused once the next one is asked for: nothing here keeps a view past that. */
  constructor(private readonly source: AsyncIterator<Buffer>) {}

  /** The next entry's header, or undefined at the end of the archive. */
  async next(): Promise<TarHeader | undefined> {
    if (this.ended) return undefined;
    await this.skip(this.bodyLeft + this.paddingLeft);
    this.bodyLeft = this.paddingLeft = 0;
    let longName: string | undefined;
    let longLink: string | undefined;
    let pax: Map<string, Buffer> | undefined;
    for (;;) {
      const at = this.offset;
      const block = await this.read(BLOCK);
      if (!block) {
        // No end-of-archive blocks at all: accepted (as GNU tar does) when nothing is half-read.
        if (longName !== undefined || longLink !== undefined || pax) throw new UnsupportedError('layer: tar archive ends inside an entry');
        this.ended = true;
        return undefined;
      }
      if (isZero(block)) {
        this.ended = true;
        return undefined;
      }
      if (!checksumOk(block)) throw new UnsupportedError(`layer: not a tar archive (bad header checksum at byte ${at})`);
      const flag = String.fromCharCode(block[156] as number);
      const size = readNumber(block, FIELDS.size, at);
      if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
        const body = await this.readMeta(size, at);
        if (flag === 'L') longName = cString(body);
        else if (flag === 'K') longLink = cString(body);
        else if (flag === 'g') for (const [k, v] of parsePax(body, at)) this.globals.set(k, v);
        else pax = parsePax(body, at);
        continue;
      }
      if (flag === 'S' || (pax && [...pax.keys()].some((k) => k.startsWith('GNU.sparse.')))) {
        throw new UnsupportedError(`layer: sparse file entries are not supported (entry at byte ${at}; the image-spec says layers SHOULD NOT use them)`);
      }
      const header = this.decode(block, at, { longName, longLink, pax: mergeRecords(this.globals, pax) });
      const payload = header.type === 'file' ? header.size : 0;
      // Hardlinks, symlinks, devices carry no data, but a size field on them is still skipped.
      this.bodyLeft = header.type === 'file' ? payload : size;
      this.paddingLeft = padding(this.bodyLeft);
      if (header.type !== 'file') header.size = 0;
      return header;
    }
  }

  /** Hands the current entry's data to `sink` in pieces (views into the stream's chunks; use them at once). */
  async readBody(sink: (data: Buffer) => void): Promise<void> {
    while (this.bodyLeft > 0) {
      if (this.pos >= this.chunk.length && !(await this.fill())) throw new UnsupportedError('layer: tar archive is truncated (a file body ends early)');
      const n = Math.min(this.bodyLeft, this.chunk.length - this.pos);
      sink(this.chunk.subarray(this.pos, this.pos + n));
      this.pos += n;
      this.offset += n;
      this.bodyLeft -= n;
    }
  }

  private decode(block: Buffer, at: number, ext: { longName?: string; longLink?: string; pax?: Map<string, Buffer> }): TarHeader {
    const flag = String.fromCharCode(block[156] as number);
    const magic = block.toString('latin1', 257, 263);
    let name = cString(block.subarray(0, 100));
    // POSIX ustar splits long names into prefix/name; old GNU uses the prefix field for other things.
    if (magic === 'ustar\0') {
      const prefix = cString(block.subarray(345, 500));
      if (prefix) name = `${prefix}/${name}`;
    }
    let type = TYPES[flag];
    if (!type) throw new UnsupportedError(`layer: entry "${ext.pax?.get('path')?.toString('utf8') ?? ext.longName ?? name}" has unsupported tar type '${printable(flag)}'`);
    const text = (key: string) => ext.pax?.get(key)?.toString('utf8');
    const num = (key: string) => {
      const value = text(key);
      if (value === undefined) return undefined;
      const parsed = Number(value);
      if (!Number.isFinite(parsed)) throw new UnsupportedError(`layer: bad PAX ${key} "${value}" at byte ${at}`);
      return parsed;
    };
    name = text('path') ?? ext.longName ?? name;
    // Pre-POSIX archives mark directories only by the trailing slash.
    if (type === 'file' && flag !== '7' && name.endsWith('/')) type = 'directory';
    let xattrs = NO_XATTRS;
    if (ext.pax) {
      const found = new Map<string, Buffer>();
      for (const [key, value] of ext.pax) if (key.startsWith(XATTR_PREFIX)) found.set(key.slice(XATTR_PREFIX.length), value);
      xattrs = found;
    }
    const atime = num('atime');
    return {
      name,
      type,
      mode: readNumber(block, FIELDS.mode, at) & 0o7777,
      uid: num('uid') ?? readNumber(block, FIELDS.uid, at),
      gid: num('gid') ?? readNumber(block, FIELDS.gid, at),
      size: num('size') ?? readNumber(block, FIELDS.size, at),
      mtime: num('mtime') ?? readNumber(block, FIELDS.mtime, at),
      ...(atime !== undefined ? { atime } : {}),
      linkname: text('linkpath') ?? ext.longLink ?? cString(block.subarray(157, 257)),
      devmajor: type === 'char' || type === 'block' ? readNumber(block, FIELDS.devmajor, at) : 0,
      devminor: type === 'char' || type === 'block' ? readNumber(block, FIELDS.devminor, at) : 0,
      xattrs,
    };
  }

  /** A metadata body (PAX, long name): read whole, so bounded. */
  private async readMeta(size: number, at: number): Promise<Buffer> {
    if (size > 16 << 20) throw new UnsupportedError(`layer: extended header of ${size} bytes at byte ${at} (more than 16 MiB)`);
    const view = await this.read(size);
    if (!view) throw new UnsupportedError('layer: tar archive is truncated (inside an extended header)');
    // A copy before skipping on: the skip may move to the next chunk, and this one be reused.
    const body = Buffer.from(view);
    await this.skip(padding(size));
    return body;
  }

  /** Exactly `n` bytes (a view when they lie in one chunk), or undefined at a clean end of stream. */
  private async read(n: number): Promise<Buffer | undefined> {
    if (n === 0) return Buffer.alloc(0);
    if (this.chunk.length - this.pos >= n) {
      const view = this.chunk.subarray(this.pos, this.pos + n);
      this.pos += n;
      this.offset += n;
      return view;
    }
    const parts: Buffer[] = [];
    let need = n;
    while (need > 0) {
      if (this.pos >= this.chunk.length && !(await this.fill())) {
        if (need === n) return undefined;
        throw new UnsupportedError('layer: tar archive is truncated');
      }
      const take = Math.min(need, this.chunk.length - this.pos);
      // A copy: a chunk is the source's only until its next chunk is asked for.
      parts.push(Buffer.from(this.chunk.subarray(this.pos, this.pos + take)));
      this.pos += take;
      this.offset += take;
      need -= take;
    }
    return Buffer.concat(parts);
  }

  private async skip(n: number): Promise<void> {
    let left = n;
    while (left > 0) {
      if (this.pos >= this.chunk.length && !(await this.fill())) throw new UnsupportedError('layer: tar archive is truncated');
      const take = Math.min(left, this.chunk.length - this.pos);
      this.pos += take;
      this.offset += take;
      left -= take;
    }
  }

  private async fill(): Promise<boolean> {
    for (;;) {
      const result = await this.source.next();
      if (result.done) return false;
      if (result.value.length === 0) continue;
      this.chunk = result.value;
      this.pos = 0;
      return true;
    }
  }
}

function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

function isZero(block: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (block[i] !== 0) return false;
  return true;
}

function checksumOk(block: Buffer): boolean {
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const byte = i >= 148 && i < 156 ? 32 : (block[i] as number);
    unsigned += byte;
    signed += byte > 127 ? byte - 256 : byte;
  }
  const stored = parseInt(cString(block.subarray(148, 156)).trim() || 'x', 8);
  return stored === unsigned || stored === signed;
}

/** A numeric field of the header block: where it is, and its name for error messages. */
interface NumberField {
  name: string;
  offset: number;
  length: number;
}

const FIELDS = {
  mode: { name: 'mode', offset: 100, length: 8 },
  uid: { name: 'uid', offset: 108, length: 8 },
  gid: { name: 'gid', offset: 116, length: 8 },
  size: { name: 'size', offset: 124, length: 12 },
  mtime: { name: 'mtime', offset: 136, length: 12 },
  devmajor: { name: 'devmajor', offset: 329, length: 8 },
  devminor: { name: 'devminor', offset: 337, length: 8 },
} satisfies Record<string, NumberField>;

/** An octal field (NUL or space terminated), or GNU base-256 when the high bit is set; `at` is the block's offset. */
function readNumber(block: Buffer, { name: what, offset, length }: NumberField, at: number): number {
  const field = block.subarray(offset, offset + length);
  const first = field[0] as number;
  if (first & 0x80) {
    const negative = first === 0xff;
    let value = negative ? -1 : first & 0x7f;
    for (let i = 1; i < length; i++) value = value * 256 + (negative ? (field[i] as number) - 255 : (field[i] as number));
    if (!Number.isSafeInteger(value)) throw new UnsupportedError(`layer: ${what} field out of range at byte ${at}`);
    return value;
  }
  const text = field.toString('latin1').replace(/[\0 ].*$/s, '').trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new UnsupportedError(`layer: bad ${what} field "${printable(text)}" in the tar header at byte ${at}`);
  return parseInt(text, 8);
}

/** PAX records `LEN KEY=VALUE\n`; values kept as bytes (xattr values are binary). */
function parsePax(body: Buffer, at: number): Map<string, Buffer> {
  const records = new Map<string, Buffer>();
  let pos = 0;
  while (pos < body.length) {
    if (body[pos] === 0) break;
    const space = body.indexOf(0x20, pos);
    const length = space < 0 ? NaN : Number(body.toString('latin1', pos, space));
    if (!Number.isInteger(length) || length <= space - pos + 1 || pos + length > body.length || body[pos + length - 1] !== 0x0a) {
      throw new UnsupportedError(`layer: malformed PAX extended header at byte ${at}`);
    }
    const record = body.subarray(space + 1, pos + length - 1);
    const eq = record.indexOf(0x3d);
    if (eq <= 0) throw new UnsupportedError(`layer: malformed PAX record at byte ${at}`);
    records.set(record.toString('utf8', 0, eq), Buffer.from(record.subarray(eq + 1)));
    pos += length;
  }
  return records;
}

function mergeRecords(globals: Map<string, Buffer>, local: Map<string, Buffer> | undefined): Map<string, Buffer> | undefined {
  if (globals.size === 0) return local;
  const merged = new Map(globals);
  for (const [k, v] of local ?? []) merged.set(k, v);
  return merged;
}

function cString(buf: Buffer): string {
  const end = buf.indexOf(0);
  return buf.toString('utf8', 0, end < 0 ? buf.length : end);
}

function printable(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
