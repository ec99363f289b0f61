/**
 * Random access into an uncompressed tar file: an index of member names to byte ranges,
 * read from the headers alone, so a `docker save` archive's layers are copied straight out of
 * it without unpacking the archive first.
 */
import { open } from 'node:fs/promises';
import { posix } from 'node:path';
import { UnsupportedError } from '../../core/errors.js';

export interface TarMember {
  offset: number;
  size: number;
}

const BLOCK = 512;

export async function indexTar(path: string): Promise<Map<string, TarMember>> {
  const members = new Map<string, TarMember>();
  const handle = await open(path, 'r');
  try {
    const fileSize = (await handle.stat()).size;
    const header = Buffer.alloc(BLOCK);
    let position = 0;
    let longName: string | undefined;
    while (position + BLOCK <= fileSize) {
      await handle.read(header, 0, BLOCK, position);
      if (header.every((b) => b === 0)) break;
      if (!checksumOk(header)) throw new UnsupportedError(`${path}: not a tar archive (bad header checksum at byte ${position})`);
      const size = parseOctal(header.subarray(124, 136));
      const type = String.fromCharCode(header[156] as number);
      const dataStart = position + BLOCK;
      if (type === 'x' || type === 'L') {
        const body = Buffer.alloc(size);
        await handle.read(body, 0, size, dataStart);
        longName = type === 'L' ? cString(body) : paxPath(body) ?? longName;
      } else {
        const prefix = cString(header.subarray(345, 500));
        const name = longName ?? (prefix ? `${prefix}/${cString(header.subarray(0, 100))}` : cString(header.subarray(0, 100)));
        longName = undefined;
        if (type === '0' || type === '\0' || type === '7') members.set(normalize(name), { offset: dataStart, size });
      }
      position = dataStart + Math.ceil(size / BLOCK) * BLOCK;
    }
  } finally {
    await handle.close();
  }
  return members;
}

function normalize(name: string): string {
  return posix.normalize(name).replace(/^(\.\/)+/, '').replace(/^\/+/, '');
}

export function memberName(name: string): string {
  return normalize(name);
}

function cString(buf: Buffer): string {
  const end = buf.indexOf(0);
  return buf.subarray(0, end < 0 ? buf.length : end).toString('utf8');
}

function parseOctal(buf: Buffer): number {
  // GNU base-256 for sizes of 8 GiB and more.
  if ((buf[0] as number) & 0x80) {
    let value = 0;
    for (let i = 1; i < buf.length; i++) value = value * 256 + (buf[i] as number);
    return value;
  }
  const text = cString(buf).trim();
  return text === '' ? 0 : parseInt(text, 8);
}

function checksumOk(header: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : (header[i] as number);
  return parseOctal(header.subarray(148, 156)) === sum;
}

function paxPath(body: Buffer): string | undefined {
  let pos = 0;
  let path: string | undefined;
  while (pos < body.length) {
    const space = body.indexOf(0x20, pos);
    if (space < 0) break;
    const length = parseInt(body.subarray(pos, space).toString('ascii'), 10);
    if (!Number.isFinite(length) || length <= 0) break;
    const record = body.subarray(space + 1, pos + length - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (record.slice(0, eq) === 'path') path = record.slice(eq + 1);
    pos += length;
  }
  return path;
}
