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
import { BLOCK, checksumOk, cString, cStringAt, FIELDS, isUstar, printable, readNumber } from './tar-fields.js';

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

  /**
   * The next entry's header, or undefined at the end of the archive: at once (no promise) when
   * it is a plain header block in the chunk at hand, as nearly every entry of a layer of small
   * files is (issue 18: a promise per entry is a cost of 100,000 of them).
   */
  next(): TarHeader | undefined | Promise<TarHeader | undefined> {
    if (this.ended) return undefined;
    try {
      const header = this.plainHeaderInChunk();
      if (header) return header;
    } catch (err) {
      return Promise.reject(err);
    }
    return this.readNext();
  }

  /**
   * The next header when it is a plain header block (no extended headers before it, no global
   * PAX records) wholly in this chunk, valid and decoded; else undefined with nothing consumed:
   * the general path reads it again and says what is wrong with it.
   */
  private plainHeaderInChunk(): TarHeader | undefined {
    const start = this.pos + this.bodyLeft + this.paddingLeft;
    if (this.globals.size > 0 || start + BLOCK > this.chunk.length) return undefined;
    const block = this.chunk.subarray(start, start + BLOCK);
    if (TYPES[String.fromCharCode(block[156] as number)] === undefined || isZero(block) || !checksumOk(block)) return undefined;
    const at = this.offset + (start - this.pos);
    const header = this.decode(block, at, {});
    this.pos = start + BLOCK;
    this.offset = at + BLOCK;
    this.begin(header, readNumber(block, FIELDS.size, at));
    return header;
  }

  /** The next header, reading on into later chunks as needed. */
  private async readNext(): Promise<TarHeader | undefined> {
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
      this.begin(header, size);
      return header;
    }
  }

  /** The entry `header` starts: its body (`size`, the header block's size field) comes next. */
  private begin(header: TarHeader, size: number): void {
    // Hardlinks, symlinks, devices carry no data, but a size field on them is still skipped.
    this.bodyLeft = header.type === 'file' ? header.size : size;
    this.paddingLeft = padding(this.bodyLeft);
    if (header.type !== 'file') header.size = 0;
  }

  /**
   * Hands the current entry's data to `sink` in pieces (views into the stream's chunks; use
   * them at once). Done at once (no promise) when the rest of the body is in the chunk at hand.
   */
  readBody(sink: (data: Buffer) => void): Promise<void> | undefined {
    const n = Math.min(this.bodyLeft, this.chunk.length - this.pos);
    if (n > 0) this.pass(n, sink);
    return this.bodyLeft > 0 ? this.readBodyOn(sink) : undefined;
  }

  private async readBodyOn(sink: (data: Buffer) => void): Promise<void> {
    while (this.bodyLeft > 0) {
      if (this.pos >= this.chunk.length && !(await this.fill())) throw new UnsupportedError('layer: tar archive is truncated (a file body ends early)');
      this.pass(Math.min(this.bodyLeft, this.chunk.length - this.pos), sink);
    }
  }

  /** The next `n` bytes of the body (all in this chunk) to `sink`. */
  private pass(n: number, sink: (data: Buffer) => void): void {
    sink(this.chunk.subarray(this.pos, this.pos + n));
    this.pos += n;
    this.offset += n;
    this.bodyLeft -= n;
  }

  private decode(block: Buffer, at: number, ext: { longName?: string; longLink?: string; pax?: Map<string, Buffer> }): TarHeader {
    const flag = String.fromCharCode(block[156] as number);
    let name = cStringAt(block, 0, 100);
    // POSIX ustar splits long names into prefix/name; old GNU uses the prefix field for other things.
    if (isUstar(block)) {
      const prefix = cStringAt(block, 345, 500);
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
    const header: TarHeader = {
      name,
      type,
      mode: readNumber(block, FIELDS.mode, at) & 0o7777,
      uid: num('uid') ?? readNumber(block, FIELDS.uid, at),
      gid: num('gid') ?? readNumber(block, FIELDS.gid, at),
      size: num('size') ?? readNumber(block, FIELDS.size, at),
      mtime: num('mtime') ?? readNumber(block, FIELDS.mtime, at),
      linkname: text('linkpath') ?? ext.longLink ?? cStringAt(block, 157, 257),
      devmajor: type === 'char' || type === 'block' ? readNumber(block, FIELDS.devmajor, at) : 0,
      devminor: type === 'char' || type === 'block' ? readNumber(block, FIELDS.devminor, at) : 0,
      xattrs,
    };
    if (atime !== undefined) header.atime = atime;
    return header;
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

