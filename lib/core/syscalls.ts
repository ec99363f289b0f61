/**
 * The file system calls node does not have: mknod(2) (device nodes, FIFOs, overlayfs
 * whiteouts) and the xattr calls (lsetxattr, lremovexattr for security.capability,
 * trusted.overlay.opaque, user.rootlesscontainers).
 *
 * They are served by ONE python3 coprocess per unpack (started only when a layer needs one
 * of them), fed requests in order over a pipe — never a process per file. Why a coprocess
 * rather than a list run at the end of each layer (`setfattr --restore`, a batch of mknods):
 * a later entry of the same layer may remove the path or replace a parent directory with a
 * symlink, and a batch run afterwards would then act on the wrong file, or through the
 * symlink outside the root. Served in order, each call acts on the path the applier has just
 * resolved and checked, exactly as an in-process syscall would. Python's os module makes the
 * calls themselves (os.mknod, os.setxattr/removexattr with follow_symlinks=False).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { HostError } from './errors.js';
import { systemPython } from './host.js';

const SERVER = String.raw`
import base64, errno, json, os, sys
out = sys.stdout
for line in sys.stdin:
    req = json.loads(line)
    try:
        op, path = req["op"], req["path"]
        if op == "mknod":
            os.mknod(path, req["mode"], os.makedev(req["major"], req["minor"]))
        elif op == "setxattr":
            os.setxattr(path, req["name"], base64.b64decode(req["value"]), follow_symlinks=False)
        elif op == "removexattr":
            try:
                os.removexattr(path, req["name"], follow_symlinks=False)
            except OSError as e:
                if e.errno != errno.ENODATA:
                    raise
        else:
            raise OSError(errno.EINVAL, "unknown op " + op)
        out.write("{}\n")
    except OSError as e:
        out.write(json.dumps({"code": errno.errorcode.get(e.errno, "EIO"), "errno": e.errno, "message": e.strerror}) + "\n")
    out.flush()
`;

export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;
export const S_IFIFO = 0o010000;

type Request = { op: 'mknod'; path: string; mode: number; major: number; minor: number } | { op: 'setxattr'; path: string; name: string; value: string } | { op: 'removexattr'; path: string; name: string };

export class Syscalls {
  private child: ChildProcessWithoutNullStreams | undefined;
  private waiting: Array<{ request: Request; resolve: () => void; reject: (err: Error) => void }> = [];
  private buffered = '';
  private failure: Error | undefined;

  mknod(path: string, mode: number, major = 0, minor = 0): Promise<void> {
    return this.call({ op: 'mknod', path, mode, major, minor });
  }

  setxattr(path: string, name: string, value: Buffer): Promise<void> {
    return this.call({ op: 'setxattr', path, name, value: value.toString('base64') });
  }

  removexattr(path: string, name: string): Promise<void> {
    return this.call({ op: 'removexattr', path, name });
  }

  /** Ends the coprocess; safe to call when none was started. */
  async close(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child) return;
    child.stdin.end();
    if (child.exitCode === null && child.signalCode === null) await new Promise((resolve) => child.once('close', resolve));
  }

  private call(request: Request): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    const child = this.start();
    return new Promise((resolve, reject) => {
      this.waiting.push({ request, resolve, reject });
      child.stdin.write(`${JSON.stringify(request)}\n`);
    });
  }

  private start(): ChildProcessWithoutNullStreams {
    if (this.child) return this.child;
    // -I -S: isolated and without site packages, so it starts in a few milliseconds.
    const child = spawn(systemPython(), ['-I', '-S', '-c', SERVER], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (text: string) => this.receive(text));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.stdin.on('error', () => undefined);
    child.on('error', (err) => this.fail(new HostError(`cannot start python3 for mknod/xattr calls: ${(err as NodeJS.ErrnoException).code ?? err.message}`, { hint: 'apt-get install python3' })));
    child.on('close', (code) => {
      if (this.waiting.length) this.fail(new HostError(`the python3 helper for mknod/xattr calls exited (${code}): ${stderr.trim().split('\n').pop() ?? ''}`));
    });
    this.child = child;
    return child;
  }

  private receive(text: string): void {
    this.buffered += text;
    for (let newline = this.buffered.indexOf('\n'); newline >= 0; newline = this.buffered.indexOf('\n')) {
      const line = this.buffered.slice(0, newline);
      this.buffered = this.buffered.slice(newline + 1);
      const pending = this.waiting.shift();
      if (!pending) continue;
      const reply = JSON.parse(line) as { code?: string; errno?: number; message?: string };
      if (!reply.code) {
        pending.resolve();
        continue;
      }
      const err = new Error(`${reply.code}: ${reply.message ?? ''}, ${pending.request.op} '${pending.request.path}'`) as NodeJS.ErrnoException;
      err.code = reply.code;
      err.errno = reply.errno;
      err.syscall = pending.request.op;
      err.path = pending.request.path;
      pending.reject(err);
    }
  }

  private fail(err: Error): void {
    this.failure = err;
    for (const pending of this.waiting.splice(0)) pending.reject(err);
  }
}
