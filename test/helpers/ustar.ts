/**
 * A minimal ustar writer, in process, for tests that build hundreds of small layers (a
 * property test): no python start per layer. Names up to 100 bytes, no xattrs; the
 * python-written layers of tar-writer.ts stay the tests' independent writer.
 */
export interface UstarEntry {
  name: string;
  type: 'file' | 'dir' | 'symlink' | 'hardlink';
  content?: string;
  linkname?: string;
  mode?: number;
}

const TYPE_FLAG = { file: '0', dir: '5', symlink: '2', hardlink: '1' } as const;

export function ustar(entries: UstarEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const entry of entries) {
    const body = Buffer.from(entry.type === 'file' ? (entry.content ?? '') : '');
    blocks.push(header(entry, body.length), body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

function header(entry: UstarEntry, size: number): Buffer {
  const block = Buffer.alloc(512);
  const put = (text: string, offset: number, length: number) => {
    const bytes = Buffer.from(text);
    if (bytes.length > length) throw new Error(`ustar: "${text}" does not fit ${length} bytes`);
    bytes.copy(block, offset);
  };
  const octal = (value: number, offset: number, length: number) => put(`${value.toString(8).padStart(length - 1, '0')}\0`, offset, length);
  put(entry.name, 0, 100);
  octal(entry.mode ?? (entry.type === 'dir' ? 0o755 : 0o644), 100, 8);
  octal(0, 108, 8);
  octal(0, 116, 8);
  octal(size, 124, 12);
  octal(1700000000, 136, 12);
  put(TYPE_FLAG[entry.type], 156, 1);
  put(entry.linkname ?? '', 157, 100);
  put('ustar\0', 257, 6);
  put('00', 263, 2);
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  put(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8);
  return block;
}
