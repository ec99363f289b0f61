/**
 * Programs of the host's that the toolkit runs (bwrap, setpriv, unshare, mount, ...): found on
 * PATH, or a HostError naming the Debian package that has them. One search for all of them.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { HostError } from './errors.js';

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** The Debian package of each program the toolkit runs, for the hint when one is missing. */
export const DEBIAN_PACKAGES: Record<string, string> = {
  bwrap: 'bubblewrap',
  setpriv: 'util-linux',
  prlimit: 'util-linux',
  unshare: 'util-linux',
  nsenter: 'util-linux',
  catatonit: 'catatonit',
  newuidmap: 'uidmap',
  newgidmap: 'uidmap',
  'fuse-overlayfs': 'fuse-overlayfs',
  python3: 'python3',
  rm: 'coreutils',
  flock: 'util-linux',
};

/** Where `name` is on PATH, or undefined. */
export function programPath(name: string): string | undefined {
  for (const dir of (process.env.PATH || DEFAULT_PATH).split(':')) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

/** Where `name` is on PATH, or a HostError naming the Debian package that has it. */
export function findProgram(name: string): string {
  const path = programPath(name);
  if (path === undefined) throw new HostError(`${name} not found`, { hint: `apt-get install ${DEBIAN_PACKAGES[name] ?? name}` });
  return path;
}

/**
 * The python3 that runs the helpers (mknod/xattr calls, the rootless ownership fix): Debian's
 * /usr/bin/python3 when it is there (scripts/install-deps.sh installs it), else the one on
 * PATH. The helpers use only the os module, and a python3 earlier on PATH may be a pyenv shim,
 * which spends ~40 ms in bash before python even starts, on every unpack.
 */
export function systemPython(): string {
  return existsSync('/usr/bin/python3') ? '/usr/bin/python3' : findProgram('python3');
}

/**
 * Runs a program to completion and resolves with its stdout; rejects with a HostError whose
 * message is the line its stderr ends with (mount, python and the util-linux tools put their
 * reason there; mount's dmesg(1) hint line is dropped).
 */
export function runProgram(argv: string[], options: { cwd?: string; input?: string } = {}): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const [program, ...args] = argv as [string, ...string[]];
    const child = execFile(program, args, { cwd: options.cwd, maxBuffer: 64 << 20 }, (error, stdout, stderr) => {
      if (!error) return resolvePromise(stdout);
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return reject(new HostError(`${program} not found`, { hint: `apt-get install ${DEBIAN_PACKAGES[program] ?? program}` }));
      const lines = String(stderr).split('\n').filter((l) => l.trim() !== '' && !/dmesg\(1\) may have more/.test(l));
      reject(new HostError((lines.pop() ?? `${program} exited ${error.code}`).trim()));
    });
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}
