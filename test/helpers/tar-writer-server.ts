/**
 * test/helpers/tar-writer.ts's python3 tarfile writer as one long-lived process, for property
 * tests that write hundreds of archives (one python3 start each would take most of the run).
 * Requests are JSON lines; each answer is a 4-byte length and the archive.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { WRITER, type EntrySpec, type TarFormat } from './tar-writer.js';

const SERVER = String.raw`
import io, struct, sys
writer = compile(sys.argv[1], "writer", "exec")
stdin, stdout = sys.stdin, sys.stdout.buffer
for line in stdin:
    out = io.BytesIO()
    class Out: buffer = out
    sys.stdin, sys.stdout = io.StringIO(line), Out
    exec(writer, {})
    stdout.write(struct.pack(">I", len(out.getvalue())) + out.getvalue())
    stdout.flush()
`;

export class TarWriterServer {
  private readonly child: ChildProcessWithoutNullStreams;
  private buffered = Buffer.alloc(0);
  private waiting: Array<(archive: Buffer) => void> = [];
  private stderr = '';

  constructor() {
    this.child = spawn('python3', ['-c', SERVER, WRITER], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stderr.on('data', (c: Buffer) => (this.stderr += c.toString()));
    this.child.stdout.on('data', (c: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, c]);
      while (this.buffered.length >= 4 && this.buffered.length >= 4 + this.buffered.readUInt32BE(0)) {
        const length = this.buffered.readUInt32BE(0);
        const archive = this.buffered.subarray(4, 4 + length);
        this.buffered = this.buffered.subarray(4 + length);
        this.waiting.shift()?.(Buffer.from(archive));
      }
    });
  }

  /** An uncompressed layer tar, as writeTar() writes it. */
  write(entries: EntrySpec[], format: TarFormat = 'pax'): Promise<Buffer> {
    const spec = { format, entries: entries.map((e) => ({ ...e, xattrs: e.xattrs ? Object.fromEntries(Object.entries(e.xattrs).map(([k, v]) => [k, v.toString('hex')])) : undefined })) };
    return new Promise((resolve, reject) => {
      if (this.child.exitCode !== null) return reject(new Error(`the tar writer exited: ${this.stderr}`));
      this.waiting.push(resolve);
      this.child.stdin.write(`${JSON.stringify(spec)}\n`);
    });
  }

  close(): void {
    this.child.stdin.end();
    this.child.kill();
  }
}
