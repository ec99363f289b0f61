/**
 * Overlay mounts (seeds 000 and 001): read-only LOWER dirs + a writable UPPER (+ WORK, its
 * scratch space on the same filesystem) merged at a TARGET. Mounted with util-linux `mount`
 * (node has no mount(2)) or fuse-overlayfs, one process per mount; read back from
 * /proc/self/mountinfo; and diffed the way the kernel records changes in UPPER: new files,
 * copied-up files, whiteouts (0/0 character devices) and opaque directories (an xattr).
 */
import { createHash } from 'node:crypto';
import { accessSync, constants, existsSync, readFileSync, statSync, statfsSync } from 'node:fs';
import { lstat, mkdir, readdir, readlink, rm, stat, symlink } from 'node:fs/promises';
import { release } from 'node:os';
import { join, relative, resolve } from 'node:path';
import type { OverlayMount } from './model.js';
import { HostError, NotFoundError, UsageError } from '../core/errors.js';
import { checkUserNamespaces, unshareCommand, type UserNamespaceMap } from '../core/userns.js';
import { programPath, runProgram } from '../core/host.js';

export type OverlayDriver = 'overlay' | 'fuse-overlayfs';
export type DriverChoice = 'auto' | 'kernel' | 'fuse';

export interface OverlayRequest {
  /** Lower dirs, top first (as in lowerdir=). */
  lower: string[];
  /** Absent for a read-only merge. */
  upper?: string;
  work?: string;
  target: string;
  driver?: DriverChoice;
  /** Where short names for long lower paths are kept while mounted (see `stateDirFor`). */
  stateRoot: string;
  /**
   * Not root: the user namespace the container will run in. The kernel's overlay can then only
   * be mounted inside it (with userxattr), so it is tried there and left for the runtime to
   * mount (`mountedIn: container`); fuse-overlayfs mounts on the host when /dev/fuse is ours.
   */
  userNamespace?: UserNamespaceMap;
}

/** The mount data of mount(2) is one page; the kernel refuses longer option strings. */
const MOUNT_DATA_LIMIT = 4095;
const OVERLAYFS_MAGIC = 0x794c7630;
const FUSE_MAGIC = 0x65735546;

/** Per-target scratch dir: the short-name links and the empty lower of a one-layer read-only merge. */
export function stateDirFor(stateRoot: string, target: string): string {
  return join(stateRoot, createHash('sha256').update(resolve(target)).digest('hex').slice(0, 16));
}

/** Checks the request and mounts it; returns the `mount` section that describes it. */
export async function mountOverlay(request: OverlayRequest): Promise<OverlayMount> {
  const target = resolve(request.target);
  const lower = request.lower.map((l) => resolve(l));
  if (lower.length === 0) throw new UsageError('no lower dirs: give --lower, or pipe an img-unpack document');
  for (const dir of lower) await requireDirectory(dir, 'lower dir');
  const upper = request.upper === undefined ? undefined : resolve(request.upper);
  const work = request.work === undefined ? undefined : resolve(request.work);
  if ((upper === undefined) !== (work === undefined)) throw new UsageError('--upper and --work go together (or neither, with --read-only)');
  if (upper !== undefined && work !== undefined) {
    await mkdir(upper, { recursive: true });
    await mkdir(work, { recursive: true });
    const [u, w] = await Promise.all([stat(upper), stat(work)]);
    if (u.dev !== w.dev) throw new UsageError(`upper ${upper} and work ${work} are on different filesystems (overlay needs them on one)`);
    const upperFs = statfsSync(upper).type;
    if (upperFs === OVERLAYFS_MAGIC || upperFs === FUSE_MAGIC) {
      throw new HostError(`upper ${upper} is on an ${upperFs === FUSE_MAGIC ? 'FUSE' : 'overlay'} filesystem, which cannot hold an overlay's upper dir`, { hint: 'put --upper and --work on a disk filesystem or tmpfs' });
    }
  }
  await mkdir(target, { recursive: true });
  if (await isMountPoint(target)) throw new UsageError(`${target} is a mount point already (ovl-mount --unmount ${target} first)`);

  const choice = request.driver ?? 'auto';
  const stateDir = stateDirFor(request.stateRoot, target);
  if (request.userNamespace) return mountRootless(lower, upper, work, target, stateDir, choice, request.userNamespace);
  const kernelUsable = choice === 'fuse' ? false : await kernelHasOverlay();
  const errors: string[] = [];
  if (choice !== 'fuse') {
    if (!kernelUsable) errors.push('the kernel has no overlay filesystem (modprobe overlay)');
    else {
      try {
        const options = await mountKernel(lower, upper, work, target, stateDir);
        return section('overlay', lower, upper, work, target, options);
      } catch (err) {
        if (choice === 'kernel' || !(err instanceof OverlayMountError)) throw err;
        errors.push(err.message);
      }
    }
    if (choice === 'kernel') throw new HostError(`overlay not supported: ${errors.join('; ')}`);
  }
  if (programPath('fuse-overlayfs') === undefined) {
    errors.push('fuse-overlayfs is not installed (apt-get install fuse-overlayfs)');
    throw new HostError(`cannot mount an overlay at ${target}: ${errors.join('; ')}`);
  }
  try {
    const options = await mountFuse(lower, upper, work, target, stateDir);
    return section('fuse-overlayfs', lower, upper, work, target, options);
  } catch (err) {
    if (err instanceof OverlayMountError) errors.push(err.message);
    else throw err;
    throw new HostError(`cannot mount an overlay at ${target}: ${errors.join('; ')}`);
  }
}

/**
 * Without root. The kernel's overlay (Linux 5.11+: `userxattr`, the user.overlay.* xattrs a
 * rootless img-unpack writes) mounts only inside a user namespace that owns the mount
 * namespace, so it cannot be left mounted on the host: it is mounted once there now, in the
 * container's mappings, to prove it works (the same options, dirs and ownership the runtime
 * will use; the namespace and the mount end with the probe), and recorded as
 * `mountedIn: container` for ns-enter (or runc, from oci-spec's config) to mount as the root.
 * fuse-overlayfs is the other way (seed 000's form), mounted on the host, when the user may
 * open /dev/fuse. auto tries the kernel first: no daemon, no copy through user space.
 */
async function mountRootless(lower: string[], upper: string | undefined, work: string | undefined, target: string, stateDir: string, choice: DriverChoice, map: UserNamespaceMap): Promise<OverlayMount> {
  const errors: string[] = [];
  if (choice !== 'fuse') {
    try {
      checkUserNamespaces();
      if (!(await kernelHasOverlay())) throw new OverlayMountError('the kernel has no overlay filesystem');
      const { options, cwd } = await overlayOptions(lower, upper, work, stateDir);
      const flags = `${upper === undefined ? 'ro,' : ''}userxattr,${options}`;
      const { argv } = unshareCommand(map.uidMappings, map.gidMappings, { mount: true });
      await runProgram([...argv, 'mount', '-t', 'overlay', 'overlay', '-o', flags, target], { cwd }).catch((err: Error) => {
        throw new OverlayMountError(`mount -t overlay -o userxattr in a user namespace failed: ${err.message}${kernelBefore(5, 11) ? ` (userxattr needs Linux 5.11+, this is ${release()})` : ''}`);
      });
      const result = section('overlay', lower, upper, work, target, flags);
      result.mountedIn = 'container';
      if (cwd !== undefined) result.optionsDir = cwd;
      return result;
    } catch (err) {
      if (!(err instanceof HostError)) throw err;
      if (choice === 'kernel') throw err instanceof OverlayMountError ? new HostError(`overlay not supported without root: ${err.message}`) : err;
      errors.push(`kernel overlay in a user namespace: ${err.message}`);
    }
  }
  const fuse = fuseUnavailable();
  if (fuse) {
    errors.push(`fuse-overlayfs: ${fuse}`);
    throw new HostError(`cannot mount an overlay without root at ${target}: ${errors.join('; ')}`, { hint: 'run ovl-mount as root, or use img-unpack without --layers and ns-enter on the flat rootfs' });
  }
  try {
    const options = await mountFuse(lower, upper, work, target, stateDir);
    return section('fuse-overlayfs', lower, upper, work, target, options);
  } catch (err) {
    if (!(err instanceof OverlayMountError)) throw err;
    errors.push(err.message);
    throw new HostError(`cannot mount an overlay without root at ${target}: ${errors.join('; ')}`);
  }
}

function kernelBefore(major: number, minor: number): boolean {
  const [a = 0, b = 0] = release().split('.').map((n) => parseInt(n, 10));
  return a < major || (a === major && b < minor);
}

/** Why fuse-overlayfs cannot be used by this user, or undefined when it can. */
function fuseUnavailable(): string | undefined {
  if (programPath('fuse-overlayfs') === undefined) return 'not installed (apt-get install fuse-overlayfs)';
  try {
    accessSync('/dev/fuse', constants.R_OK | constants.W_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return '/dev/fuse does not exist (modprobe fuse)';
    const mode = (statSync('/dev/fuse').mode & 0o777).toString(8).padStart(4, '0');
    return `/dev/fuse is mode ${mode}, not open to you (an administrator can chmod 0666 /dev/fuse, its usual mode)`;
  }
  return undefined;
}

function section(driver: OverlayDriver, lower: string[], upper: string | undefined, work: string | undefined, target: string, options: string): OverlayMount {
  const result: OverlayMount = { target, lower, driver, options };
  if (upper !== undefined) result.upper = upper;
  if (work !== undefined) result.work = work;
  return result;
}

/** A mount(8) or fuse-overlayfs failure, with the tool's own one-line reason. */
class OverlayMountError extends HostError {}

/**
 * The option string for the kernel. Paths are absolute when they fit in a page and need no
 * escaping; otherwise each lower dir gets a short numbered symlink in the state dir and the
 * mount runs there with relative names (containers/storage's answer to the page limit:
 * 128 lowers cost ~500 bytes however long their paths are).
 */
async function overlayOptions(lower: string[], upper: string | undefined, work: string | undefined, stateDir: string): Promise<{ options: string; cwd?: string }> {
  const lowers = [...lower];
  if (upper === undefined && lowers.length === 1) {
    // The kernel wants two lowers for a merge without an upper; an empty one changes nothing.
    const empty = join(stateDir, 'empty');
    await mkdir(empty, { recursive: true });
    lowers.push(empty);
  }
  const tail = upper !== undefined && work !== undefined ? `,upperdir=${upper},workdir=${work}` : '';
  const direct = `lowerdir=${lowers.join(':')}${tail}`;
  const needsEscape = [...lowers, upper ?? '', work ?? ''].some((p) => /[,:\\]/.test(p));
  if (direct.length <= MOUNT_DATA_LIMIT && !needsEscape) return { options: direct };
  const links = join(stateDir, 'l');
  await rm(links, { recursive: true, force: true });
  await mkdir(links, { recursive: true });
  const names = await Promise.all(lowers.map(async (dir, i) => {
    const name = i.toString(36);
    await symlink(dir, join(links, name));
    return name;
  }));
  let shortTail = '';
  if (upper !== undefined && work !== undefined) {
    await symlink(upper, join(links, 'U'));
    await symlink(work, join(links, 'W'));
    shortTail = ',upperdir=U,workdir=W';
  }
  const options = `lowerdir=${names.join(':')}${shortTail}`;
  if (options.length > MOUNT_DATA_LIMIT) throw new UsageError(`${lowers.length} lower dirs do not fit in one page of mount options even with short names`);
  return { options, cwd: links };
}

async function mountKernel(lower: string[], upper: string | undefined, work: string | undefined, target: string, stateDir: string): Promise<string> {
  const { options, cwd } = await overlayOptions(lower, upper, work, stateDir);
  const flags = upper === undefined ? `ro,${options}` : options;
  try {
    await runProgram(['mount', '-t', 'overlay', 'overlay', '-o', flags, target], { cwd });
  } catch (err) {
    throw new OverlayMountError(`mount -t overlay failed: ${await kernelReason((err as Error).message, upper)}`);
  }
  return flags;
}

async function mountFuse(lower: string[], upper: string | undefined, work: string | undefined, target: string, stateDir: string): Promise<string> {
  const { options, cwd } = await overlayOptions(lower, upper, work, stateDir);
  const flags = upper === undefined ? `ro,${options}` : options;
  await runProgram(['fuse-overlayfs', '-o', flags, target], { cwd }).catch((err: Error) => {
    throw new OverlayMountError(`fuse-overlayfs failed: ${err.message}`);
  });
  return flags;
}

/** mount(8) says "wrong fs type, bad option..." for every refusal; the kernel log says why. */
async function kernelReason(message: string, upper: string | undefined): Promise<string> {
  const log = await runProgram(['dmesg', '--notime']).catch(() => '');
  const reason = log.split('\n').filter((l) => /overlayfs: /.test(l)).pop();
  if (reason) return reason.replace(/^.*overlayfs: /, 'overlayfs: ');
  if (upper !== undefined) return `${message} (the upper's filesystem may lack what overlay needs: xattrs, d_type, tmpfile)`;
  return message;
}

/** Unmounts TARGET (kernel overlay or fuse-overlayfs) and forgets its short names. */
export async function unmountOverlay(target: string, stateRoot: string): Promise<void> {
  const path = resolve(target);
  if (!(await isMountPoint(path))) throw new NotFoundError(`${path} is not mounted`);
  await runProgram(['umount', path]).catch((err: Error) => {
    if (/busy/i.test(err.message)) throw new HostError(`${path}: target is busy`, { hint: `a process still uses it: see fuser -vm ${path}` });
    throw new HostError(`umount ${path} failed: ${err.message}`);
  });
  await rm(stateDirFor(stateRoot, path), { recursive: true, force: true });
}

export interface MountInfoEntry {
  mountPoint: string;
  fsType: string;
  source: string;
  options: Record<string, string>;
}

/** Reads /proc/self/mountinfo (fields: id parent dev root mountpoint options ... - fstype source superoptions). */
export function readMountInfo(): MountInfoEntry[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l !== '').map((line) => {
    const fields = line.split(' ');
    const dash = fields.indexOf('-');
    const superOptions: Record<string, string> = {};
    for (const option of splitOptions(fields[dash + 3] ?? '')) {
      const eq = option.indexOf('=');
      superOptions[eq === -1 ? option : option.slice(0, eq)] = eq === -1 ? '' : unescapeMountInfo(option.slice(eq + 1));
    }
    return { mountPoint: unescapeMountInfo(fields[4] as string), fsType: fields[dash + 1] as string, source: unescapeMountInfo(fields[dash + 2] as string), options: superOptions };
  });
}

/** Options are comma-separated, but overlay escapes commas inside paths with a backslash. */
function splitOptions(text: string): string[] {
  return text.split(/(?<!\\),/);
}

function unescapeMountInfo(text: string): string {
  return text.replace(/\\([0-7]{3})/g, (_m, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

export async function isMountPoint(path: string): Promise<boolean> {
  const resolved = resolve(path);
  return readMountInfo().some((m) => m.mountPoint === resolved);
}

/**
 * What is mounted at TARGET, as a `mount` section, read back from the mount table (and the
 * short-name links, when the lower dirs were given by those).
 */
export async function describeMountedOverlay(target: string, stateRoot: string): Promise<OverlayMount> {
  const path = resolve(target);
  const entry = readMountInfo().reverse().find((m) => m.mountPoint === path);
  if (!entry) throw new NotFoundError(`${path} is not mounted`);
  const driver: OverlayDriver | undefined = entry.fsType === 'overlay' ? 'overlay' : entry.fsType === 'fuse.fuse-overlayfs' ? 'fuse-overlayfs' : undefined;
  if (!driver) throw new UsageError(`${path} is a ${entry.fsType} mount, not an overlay`);
  const links = join(stateDirFor(stateRoot, path), 'l');
  const real = async (p: string): Promise<string> => (p.startsWith('/') ? p : readlink(join(links, p)).catch(() => {
    throw new NotFoundError(`${path}: the mount names its dirs relatively (${p}) and their short-name links are gone; pipe the ovl-mount document instead`);
  }));
  if (driver === 'fuse-overlayfs') throw new UsageError(`${path}: fuse-overlayfs does not show its dirs in the mount table; pipe the ovl-mount document instead`);
  const lowerNames = (entry.options.lowerdir ?? '').split(/(?<!\\):/).filter((l) => l !== '').map((l) => l.replace(/\\(.)/g, '$1'));
  const lower = await Promise.all(lowerNames.map(real));
  const emptyLower = join(stateDirFor(stateRoot, path), 'empty');
  const result: OverlayMount = { target: path, lower: lower.filter((l) => l !== emptyLower), driver };
  if (entry.options.upperdir) result.upper = await real(entry.options.upperdir);
  if (entry.options.workdir) result.work = await real(entry.options.workdir);
  return result;
}

export type ChangeKind = 'added' | 'modified' | 'deleted' | 'opaque';

export interface Change {
  kind: ChangeKind;
  /** The path inside the merged tree, absolute. */
  path: string;
}

const CHANGE_LETTER: Record<ChangeKind, string> = { added: 'A', modified: 'C', deleted: 'D', opaque: 'O' };

/** `A /new`, `C /changed`, `D /removed`, `O /dir` (opaque: the lower dirs' contents are hidden), like `podman diff`. */
export function formatChange(change: Change): string {
  return `${CHANGE_LETTER[change.kind]} ${change.path}`;
}

/**
 * What a container changed: walks UPPER and classifies each entry against the lower dirs.
 * A 0/0 character device (or an old-style `.wh.NAME` file) is a deletion; a directory with
 * the opaque xattr (or `.wh..wh..opq`) hides its lower contents; a file present in a lower
 * dir was copied up (modified); anything else was added. Directories that only hold changes
 * are not reported unless their owner or mode changed.
 */
export async function diffOverlay(upper: string, lower: string[]): Promise<Change[]> {
  await requireDirectory(upper, 'upper dir');
  const opaqueDirs = await opaqueDirectories(upper);
  const changes: Change[] = [];
  const walk = async (relativeDir: string, lowerVisible: boolean): Promise<void> => {
    const entries = (await readdir(join(upper, relativeDir))).sort();
    for (const name of entries) {
      const rel = join(relativeDir, name);
      const abs = join(upper, rel);
      const info = await lstat(abs);
      if (name === '.wh..wh..opq') continue;
      if (name.startsWith('.wh.')) {
        changes.push({ kind: 'deleted', path: `/${join(relativeDir, name.slice(4))}` });
        continue;
      }
      if (info.isCharacterDevice() && info.rdev === 0) {
        changes.push({ kind: 'deleted', path: `/${rel}` });
        continue;
      }
      const below = lowerVisible ? await findInLowers(lower, rel) : undefined;
      if (info.isDirectory()) {
        const opaque = opaqueDirs.has(rel) || existsSync(join(abs, '.wh..wh..opq'));
        if (opaque && below) changes.push({ kind: 'opaque', path: `/${rel}` });
        else if (!below) changes.push({ kind: 'added', path: `/${rel}` });
        else if (below.isDirectory() && (below.mode !== info.mode || below.uid !== info.uid || below.gid !== info.gid)) changes.push({ kind: 'modified', path: `/${rel}` });
        else if (!below.isDirectory()) changes.push({ kind: 'modified', path: `/${rel}` });
        await walk(rel, lowerVisible && !!below && below.isDirectory() && !opaque);
        continue;
      }
      changes.push({ kind: below ? 'modified' : 'added', path: `/${rel}` });
    }
  };
  await walk('', true);
  return changes;
}

async function findInLowers(lower: string[], rel: string) {
  for (const dir of lower) {
    try {
      return await lstat(join(dir, rel));
    } catch {
      // not in this layer
    }
  }
  return undefined;
}

/**
 * Directories of UPPER marked opaque: trusted.overlay.opaque (root), user.overlay.opaque
 * (userxattr, rootless) or fuse-overlayfs's own. Node cannot read xattrs, so one getfattr
 * call lists them for the whole tree.
 */
async function opaqueDirectories(upper: string): Promise<Set<string>> {
  const output = await runProgram(['getfattr', '-R', '-h', '--absolute-names', '-d', '-m', '^(trusted|user)\\.(overlay|fuseoverlayfs)\\.opaque$', upper]).catch((err: Error) => {
    if (/ENOENT|not found/.test(err.message)) throw new HostError('getfattr is not installed (apt-get install attr)');
    throw err;
  });
  const result = new Set<string>();
  let current: string | undefined;
  for (const line of output.split('\n')) {
    if (line.startsWith('# file: ')) current = unescapeGetfattr(line.slice(8));
    else if (current !== undefined && /opaque="y"/.test(line)) result.add(relative(upper, current));
  }
  return result;
}

function unescapeGetfattr(text: string): string {
  return text.replace(/\\([0-7]{3})/g, (_m, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

async function requireDirectory(path: string, what: string): Promise<void> {
  let info;
  try {
    info = await stat(path);
  } catch {
    throw new NotFoundError(`${what} ${path} does not exist`);
  }
  if (!info.isDirectory()) throw new UsageError(`${what} ${path} is not a directory`);
}

/** Listed in /proc/filesystems, or loadable: the module loads on first use (modprobe overlay). */
async function kernelHasOverlay(): Promise<boolean> {
  const listed = () => /\toverlay$/m.test(readFileSync('/proc/filesystems', 'utf8'));
  if (listed()) return true;
  await runProgram(['modprobe', '-q', 'overlay']).catch(() => undefined);
  return listed();
}


