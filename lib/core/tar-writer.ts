/**
 * A tar WRITER (the reading side is tarstream.ts): POSIX ustar headers, with a PAX extended
 * header when a field does not fit (long names and link targets, non-ASCII names, large sizes
 * or ids) and for xattrs (`SCHILY.xattr.NAME`, the value's bytes as they are, as GNU tar and
 * Go's archive/tar write them). The header is a function of the entry alone: uname and gname
 * are empty and the PAX header's own name is fixed, so the same entries give the same bytes.
 */

export type TarEntryType = 'file' | 'hardlink' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

export interface TarEntry {
  /** Relative, without a leading `./`; a directory's ends with `/`. */
  name: string;
  type: TarEntryType;
  /** Permission bits with setuid, setgid and sticky (mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  /** Bytes of content that follow (files only). */
  size: number;
  /** Seconds since the epoch. */
  mtime: number;
  /** A symlink's target, or a hardlink's first name in the archive. */
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  xattrs?: Map<string, Buffer>;
}

const BLOCK = 512;
const TYPE_FLAG: Record<TarEntryType, string> = { file: '0', hardlink: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6' };

/** The two zero blocks that end an archive. */
export const TAR_END = Buffer.alloc(2 * BLOCK);

/** Zero bytes that pad `size` bytes of content to a whole block. */
export function tarPadding(size: number): Buffer {
  return Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);
}

/** The header block(s) for one entry: a PAX header first when one is needed. */
export function tarHeader(entry: TarEntry): Buffer {
  const pax = paxRecords(entry);
  const header = ustarBlock(entry, { name: fitName(entry.name), typeflag: TYPE_FLAG[entry.type], size: entry.size, linkname: entry.linkname ?? '' });
  if (pax.length === 0) return header;
  const body = Buffer.concat(pax);
  const paxName = `PaxHeaders.0/${Buffer.from(entry.name.replace(/\/$/, '').split('/').pop() ?? '').subarray(0, 80).toString('latin1')}`;
  const paxHeader = ustarBlock({ ...entry, uid: 0, gid: 0, mode: 0o644 }, { name: Buffer.from(paxName, 'latin1'), typeflag: 'x', size: body.length, linkname: '' });
  return Buffer.concat([paxHeader, body, tarPadding(body.length), header]);
}

const MAX_OCTAL_8 = 0o7777777;
const MAX_OCTAL_12 = 0o77777777777;

function paxRecords(entry: TarEntry): Buffer[] {
  const records: Buffer[] = [];
  const name = Buffer.from(entry.name);
  if (name.length > 100 || !isAscii(name)) records.push(paxRecord('path', name));
  const link = Buffer.from(entry.linkname ?? '');
  if (link.length > 100 || !isAscii(link)) records.push(paxRecord('linkpath', link));
  if (entry.size > MAX_OCTAL_12) records.push(paxRecord('size', Buffer.from(String(entry.size))));
  if (entry.uid > MAX_OCTAL_8) records.push(paxRecord('uid', Buffer.from(String(entry.uid))));
  if (entry.gid > MAX_OCTAL_8) records.push(paxRecord('gid', Buffer.from(String(entry.gid))));
  for (const [key, value] of [...(entry.xattrs ?? [])].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) records.push(paxRecord(`SCHILY.xattr.${key}`, value));
  return records;
}

/** `LEN KEY=VALUE\n`, where LEN counts the whole record, its own digits too. */
function paxRecord(key: string, value: Buffer): Buffer {
  const rest = Buffer.byteLength(key) + value.length + 3;
  let length = rest + String(rest).length;
  if (String(length).length !== String(rest).length) length = rest + String(length).length;
  return Buffer.concat([Buffer.from(`${length} ${key}=`), value, Buffer.from('\n')]);
}

function isAscii(bytes: Buffer): boolean {
  return bytes.every((b) => b >= 0x20 && b < 0x7f);
}

/** The ustar name field: the name itself, or (too long, so PAX carries it) its first 100 bytes. */
function fitName(name: string): Buffer {
  return Buffer.from(name).subarray(0, 100);
}

interface BlockFields {
  name: Buffer;
  typeflag: string;
  size: number;
  linkname: string;
}

function ustarBlock(entry: TarEntry, fields: BlockFields): Buffer {
  const block = Buffer.alloc(BLOCK);
  fields.name.copy(block, 0, 0, 100);
  octal(block, { offset: 100, width: 8, value: entry.mode & 0o7777 });
  octal(block, { offset: 108, width: 8, value: Math.min(entry.uid, MAX_OCTAL_8) });
  octal(block, { offset: 116, width: 8, value: Math.min(entry.gid, MAX_OCTAL_8) });
  octal(block, { offset: 124, width: 12, value: Math.min(fields.size, MAX_OCTAL_12) });
  octal(block, { offset: 136, width: 12, value: Math.max(0, Math.min(entry.mtime, MAX_OCTAL_12)) });
  block.write(fields.typeflag, 156, 'latin1');
  Buffer.from(fields.linkname).copy(block, 157, 0, 100);
  block.write('ustar\u000000', 257, 'latin1');
  if (entry.type === 'char' || entry.type === 'block') {
    octal(block, { offset: 329, width: 8, value: entry.devmajor ?? 0 });
    octal(block, { offset: 337, width: 8, value: entry.devminor ?? 0 });
  }
  block.write('        ', 148, 'latin1');
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 'latin1');
  return block;
}

/** A zero-padded octal number and its NUL, filling the field. */
function octal(block: Buffer, field: { offset: number; width: number; value: number }): void {
  block.write(`${field.value.toString(8).padStart(field.width - 1, '0')}\u0000`, field.offset, 'latin1');
}
