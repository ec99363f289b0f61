/**
 * Every xattr of a tree, read by ONE `getfattr -R` run (node cannot read xattrs, and a process
 * per file would be the hot loop the project forbids): relative path → name → value bytes.
 */
import { relative } from 'node:path';
import { HostError } from '../core/errors.js';
import { runProgram } from '../core/host.js';

export type TreeXattrs = Map<string, Map<string, Buffer>>;

export async function readTreeXattrs(root: string): Promise<TreeXattrs> {
  const output = await runProgram(['getfattr', '-R', '-P', '-h', '--absolute-names', '-d', '-m', '-', '-e', 'hex', root]).catch((err: Error) => {
    if (/not found/.test(err.message)) throw new HostError('getfattr is not installed (apt-get install attr)');
    throw err;
  });
  return parseGetfattr(output, root);
}

/** getfattr's dump: `# file: PATH` (octal escapes), then `name=0xHEX` (or a bare name: an empty value). */
export function parseGetfattr(output: string, root: string): TreeXattrs {
  const result: TreeXattrs = new Map();
  let current: Map<string, Buffer> | undefined;
  for (const line of output.split('\n')) {
    if (line.startsWith('# file: ')) {
      current = new Map();
      result.set(relative(root, unescapePath(line.slice(8))), current);
    } else if (current && line !== '') {
      const eq = line.indexOf('=');
      const name = eq < 0 ? line : line.slice(0, eq);
      const value = eq < 0 ? '' : line.slice(eq + 1);
      current.set(name, value.startsWith('0x') ? Buffer.from(value.slice(2), 'hex') : Buffer.from(value.replace(/^"|"$/g, '')));
    }
  }
  return result;
}

/** getfattr writes a name's bytes outside printable ASCII as `\NNN`. */
function unescapePath(text: string): string {
  const bytes = Buffer.from(text.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8))), 'latin1');
  return bytes.toString('utf8');
}
