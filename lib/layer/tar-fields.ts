/**
 * The fields of a tar header block, read from its bytes: the checksum, the numbers (octal or
 * GNU base-256) and the NUL-terminated strings. The common forms are read byte by byte, with
 * no strings made (issue 18: a layer of 100,000 small files is 100,000 header blocks); any
 * other form is read by the general rules, which also say what is wrong with it.
 */
import { UnsupportedError } from '../core/errors.js';

export const BLOCK = 512;

export function checksumOk(block: Buffer): boolean {
  // The checksum field itself counts as eight spaces.
  let unsigned = 8 * 32;
  for (let i = 0; i < 148; i++) unsigned += block[i] as number;
  for (let i = 156; i < BLOCK; i++) unsigned += block[i] as number;
  const stored = octalPrefix(block, 148, 156, true) ?? parseInt(cString(block.subarray(148, 156)).trim() || 'x', 8);
  if (stored === unsigned) return true;
  // Some old tars summed signed bytes: 256 less for each byte over 127.
  let high = 0;
  for (let i = 0; i < BLOCK; i++) if ((i < 148 || i >= 156) && (block[i] as number) > 127) high++;
  return high > 0 && stored === unsigned - 256 * high;
}

/**
 * The value of octal digits at `start` (after leading spaces, if `skipSpaces`) ended by a NUL,
 * a space or the field's end, read from the bytes; undefined for anything else (the slower,
 * general reading decides).
 */
function octalPrefix(block: Buffer, start: number, end: number, skipSpaces: boolean): number | undefined {
  let i = start;
  while (skipSpaces && i < end && block[i] === 0x20) i++;
  let value = 0;
  const first = i;
  for (; i < end; i++) {
    const byte = block[i] as number;
    if (byte < 0x30 || byte > 0x37) break;
    value = value * 8 + (byte - 0x30);
  }
  if (i === first) return undefined;
  return i === end || block[i] === 0 || block[i] === 0x20 ? value : undefined;
}

/** A numeric field of the header block: where it is, and its name for error messages. */
export interface NumberField {
  name: string;
  offset: number;
  length: number;
}

export const FIELDS = {
  mode: { name: 'mode', offset: 100, length: 8 },
  uid: { name: 'uid', offset: 108, length: 8 },
  gid: { name: 'gid', offset: 116, length: 8 },
  size: { name: 'size', offset: 124, length: 12 },
  mtime: { name: 'mtime', offset: 136, length: 12 },
  devmajor: { name: 'devmajor', offset: 329, length: 8 },
  devminor: { name: 'devminor', offset: 337, length: 8 },
} satisfies Record<string, NumberField>;

/** An octal field (NUL or space terminated), or GNU base-256 when the high bit is set; `at` is the block's offset. */
export function readNumber(block: Buffer, { name: what, offset, length }: NumberField, at: number): number {
  const field = block.subarray(offset, offset + length);
  const first = field[0] as number;
  if (first & 0x80) {
    const negative = first === 0xff;
    let value = negative ? -1 : first & 0x7f;
    for (let i = 1; i < length; i++) value = value * 256 + (negative ? (field[i] as number) - 255 : (field[i] as number));
    if (!Number.isSafeInteger(value)) throw new UnsupportedError(`layer: ${what} field out of range at byte ${at}`);
    return value;
  }
  // Nearly every field: octal digits ended by a NUL or a space, or nothing before one (0).
  if (first === 0 || first === 0x20) return 0;
  const fast = octalPrefix(block, offset, offset + length, false);
  if (fast !== undefined) return fast;
  const text = field.toString('latin1').replace(/[\0 ].*$/s, '').trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new UnsupportedError(`layer: bad ${what} field "${printable(text)}" in the tar header at byte ${at}`);
  return parseInt(text, 8);
}

/** The NUL-terminated string in `block` from `start`, at most to `end`. */
export function cStringAt(block: Buffer, start: number, end: number): string {
  let nul = start;
  while (nul < end && block[nul] !== 0) nul++;
  return nul === start ? '' : block.toString('utf8', start, nul);
}

/** The POSIX ustar magic, "ustar\0", at 257 (old GNU archives have "ustar  \0"). */
export function isUstar(block: Buffer): boolean {
  return block[257] === 0x75 && block[258] === 0x73 && block[259] === 0x74 && block[260] === 0x61 && block[261] === 0x72 && block[262] === 0;
}

export function cString(buf: Buffer): string {
  const end = buf.indexOf(0);
  return buf.toString('utf8', 0, end < 0 ? buf.length : end);
}

export function printable(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
