/**
 * A reader of ELF64 little-endian program headers: the dynamic loader a program asks for
 * (PT_INTERP) and the shared libraries it needs (DT_NEEDED), transitively, so a host program
 * can be bound into a container with what it loads.
 */
import { closeSync, existsSync, openSync, readSync, realpathSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { HostError } from '../core/errors.js';

export interface SharedObjects {
  interpreter?: string;
  /** By soname (what DT_NEEDED asks for) and the file it resolves to. */
  libraries: Array<{ name: string; path: string }>;
}

const elfCache = new Map<string, SharedObjects>();

/** The dynamic loader and every shared library (transitively) an ELF64 little-endian program needs. */
export function sharedObjects(program: string): SharedObjects {
  const cached = elfCache.get(program);
  if (cached) return cached;
  const first = readElf(program);
  const searchDirs = [...new Set([first.interpreter ? dirname(realpathSync(first.interpreter)) : undefined, '/lib/x86_64-linux-gnu', '/usr/lib/x86_64-linux-gnu', '/lib/aarch64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/lib64', '/usr/lib64', '/lib', '/usr/lib'].filter((d): d is string => !!d))];
  const libraries = new Map<string, string>();
  const pending = [...first.needed];
  while (pending.length > 0) {
    const name = pending.shift() as string;
    if (libraries.has(name)) continue;
    const dir = searchDirs.find((d) => existsSync(join(d, name)));
    if (!dir) throw new HostError(`setpriv needs ${name}, which is not in ${searchDirs.join(', ')}`);
    const path = realpathSync(join(dir, name));
    libraries.set(name, path);
    pending.push(...readElf(path).needed);
  }
  const result = { interpreter: first.interpreter ? realpathSync(first.interpreter) : undefined, libraries: [...libraries.entries()].map(([name, path]) => ({ name, path })) };
  elfCache.set(program, result);
  return result;
}

function readElf(path: string): { interpreter?: string; needed: string[] } {
  const fd = openSync(path, 'r');
  try {
    const size = statSync(path).size;
    const header = Buffer.alloc(64);
    readSync(fd, header, 0, 64, 0);
    if (header.readUInt32BE(0) !== 0x7f454c46 || header[4] !== 2 || header[5] !== 1) throw new HostError(`${path}: not a 64-bit little-endian ELF file`);
    const phoff = Number(header.readBigUInt64LE(0x20));
    const phentsize = header.readUInt16LE(0x36);
    const phnum = header.readUInt16LE(0x38);
    const table = Buffer.alloc(phentsize * phnum);
    readSync(fd, table, 0, table.length, phoff);
    const loads: Array<{ vaddr: number; offset: number; filesz: number }> = [];
    let interpreter: string | undefined;
    let dynamic: { offset: number; size: number } | undefined;
    for (let i = 0; i < phnum; i++) {
      const at = i * phentsize;
      const type = table.readUInt32LE(at);
      const offset = Number(table.readBigUInt64LE(at + 8));
      const vaddr = Number(table.readBigUInt64LE(at + 16));
      const filesz = Number(table.readBigUInt64LE(at + 32));
      if (type === 1) loads.push({ vaddr, offset, filesz });
      if (type === 2) dynamic = { offset, size: filesz };
      if (type === 3) {
        const buf = Buffer.alloc(filesz);
        readSync(fd, buf, 0, filesz, offset);
        interpreter = buf.toString('utf8').replace(/\0.*$/s, '');
      }
    }
    if (!dynamic) return { interpreter, needed: [] };
    const dyn = Buffer.alloc(dynamic.size);
    readSync(fd, dyn, 0, dyn.length, dynamic.offset);
    const neededOffsets: number[] = [];
    let strtab = 0;
    for (let at = 0; at + 16 <= dyn.length; at += 16) {
      const tag = Number(dyn.readBigInt64LE(at));
      const value = Number(dyn.readBigUInt64LE(at + 8));
      if (tag === 0) break;
      if (tag === 1) neededOffsets.push(value);
      if (tag === 5) strtab = value;
    }
    const segment = loads.find((l) => strtab >= l.vaddr && strtab < l.vaddr + l.filesz);
    if (!segment) return { interpreter, needed: [] };
    const strtabOffset = strtab - segment.vaddr + segment.offset;
    const needed = neededOffsets.map((o) => {
      const buf = Buffer.alloc(256);
      readSync(fd, buf, 0, Math.min(256, size - strtabOffset - o), strtabOffset + o);
      return buf.toString('utf8', 0, buf.indexOf(0));
    });
    return { interpreter, needed };
  } finally {
    closeSync(fd);
  }
}
