/**
 * Rootless containers (seeds 000, 002 and 003): an unprivileged user becomes root in a new
 * user namespace. With a subordinate id range (/etc/subuid, /etc/subgid; useradd gives every
 * new user one) the image's other ids map too, as podman maps them: container 0 is the caller,
 * container 1..N are the range, written by the setuid newuidmap/newgidmap (util-linux unshare
 * --map-users runs them). Without a range only the caller's own id maps, to root, and the
 * image's other owners show as the overflow id (65534).
 *
 * The image's ownership lives where img-unpack's rootless mode keeps it, the
 * user.rootlesscontainers xattr (umoci's protobuf); `applyRecordedOwnership` gives the files
 * those owners for real by chowning them from inside the user namespace, where chown(1000)
 * lands on the range's host id. Files owned that way belong to the range, not to the user:
 * removing them again is done from inside the namespace too (`removeRangeOwnedTree`).
 */
import { lstatSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { HostError } from './errors.js';
import { findProgram, programPath, runProgram, systemPython } from './host.js';

/** One line of a uid_map or gid_map, in runtime-spec's spelling (linux.uidMappings). */
export interface IdMapping {
  containerID: number;
  hostID: number;
  size: number;
}

export interface SubordinateRange {
  start: number;
  count: number;
}

/** The ranges /etc/subuid (or /etc/subgid) gives a user, by name or by number, in file order. */
export function subordinateRanges(text: string, user: { name: string; id: number }): SubordinateRange[] {
  const ranges: SubordinateRange[] = [];
  for (const line of text.split('\n')) {
    const [owner, start, count] = line.trim().split(':');
    if (owner === undefined || start === undefined || count === undefined || line.trim().startsWith('#')) continue;
    if (owner !== user.name && owner !== String(user.id)) continue;
    const range = { start: Number(start), count: Number(count) };
    if (Number.isInteger(range.start) && Number.isInteger(range.count) && range.count > 0) ranges.push(range);
  }
  return ranges;
}

export interface UserNamespaceMap {
  uidMappings: IdMapping[];
  gidMappings: IdMapping[];
  /** Whether ids beyond the caller's own are mapped (a subordinate range was found for both). */
  ranged: boolean;
  /** Why only one id is mapped, to be shown as a warning. */
  warning?: string;
}

/** Maps the caller to 0 and each range after it (1..N), podman's rootless layout. */
function mappingsFor(ownId: number, ranges: SubordinateRange[]): IdMapping[] {
  const mappings: IdMapping[] = [{ containerID: 0, hostID: ownId, size: 1 }];
  let next = 1;
  for (const range of ranges) {
    mappings.push({ containerID: next, hostID: range.start, size: range.count });
    next += range.count;
  }
  return mappings;
}

/**
 * The mappings for a rootless container of the calling user: the subordinate ranges when
 * both files give some (and newuidmap/newgidmap exist to write them), else the caller alone
 * with a warning that says why.
 */
export function rootlessMappings(files = { subuid: '/etc/subuid', subgid: '/etc/subgid' }): UserNamespaceMap {
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  let name: string;
  try {
    name = userInfo().username;
  } catch {
    name = String(uid);
  }
  const read = (file: string) => {
    try {
      return readFileSync(file, 'utf8');
    } catch {
      return '';
    }
  };
  const uidRanges = subordinateRanges(read(files.subuid), { name, id: uid });
  const gidRanges = subordinateRanges(read(files.subgid), { name, id: gid === uid ? uid : gid });
  const single = (warning: string): UserNamespaceMap => ({ uidMappings: mappingsFor(uid, []), gidMappings: mappingsFor(gid, []), ranged: false, warning });
  if (uidRanges.length === 0 || gidRanges.length === 0) {
    const missing = uidRanges.length === 0 ? files.subuid : files.subgid;
    return single(`no range for ${name} in ${missing}: only your own id is mapped (to root), so every file shows as root's and the image's other users cannot be used (an administrator can add one: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${name})`);
  }
  if (programPath('newuidmap') === undefined || programPath('newgidmap') === undefined) return single('newuidmap/newgidmap not found: only your own id is mapped (apt-get install uidmap)');
  return { uidMappings: mappingsFor(uid, uidRanges), gidMappings: mappingsFor(gid, gidRanges), ranged: true };
}


/**
 * Whether this kernel lets the caller make a user namespace; a HostError saying which knob
 * forbids it. Checked before anything is started, so the error is ours and not a bare EPERM.
 */
export function checkUserNamespaces(read: (file: string) => string | undefined = readSysctl): void {
  const max = read('/proc/sys/user/max_user_namespaces');
  if (max !== undefined && Number(max) === 0) {
    throw new HostError('user namespaces are disabled on this host (/proc/sys/user/max_user_namespaces is 0)', { hint: 'a rootless container needs one: sysctl -w user.max_user_namespaces=15000, or run as root' });
  }
  if (read('/proc/sys/kernel/unprivileged_userns_clone') === '0') {
    throw new HostError('unprivileged user namespaces are disabled (/proc/sys/kernel/unprivileged_userns_clone is 0)', { hint: 'sysctl -w kernel.unprivileged_userns_clone=1, or run as root' });
  }
  if (read('/proc/sys/kernel/apparmor_restrict_unprivileged_userns') === '1') {
    throw new HostError('AppArmor restricts unprivileged user namespaces (/proc/sys/kernel/apparmor_restrict_unprivileged_userns is 1)', { hint: 'sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or run as root' });
  }
}

function readSysctl(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return undefined;
  }
}

export interface UnshareCommand {
  /** `unshare --user ... --` (the command follows). */
  argv: string[];
  /**
   * Whether setgroups(2) works inside: not when the kernel made us write "deny" to
   * /proc/self/setgroups (an unprivileged single-id gid map); newgidmap leaves it allowed.
   */
  setgroups: boolean;
}

/**
 * util-linux unshare making a user namespace with the given mappings: our own id as a one-id mapping is written by
 * unshare itself (--map-user/--map-group), the rest by newuidmap/newgidmap (--map-users,
 * --map-groups). As real root every mapping is written directly. `mount`: a new mount
 * namespace too, private, so what is mounted there never reaches the host.
 */
export function unshareCommand(uidMappings: IdMapping[], gidMappings: IdMapping[], options: { mount: boolean }): UnshareCommand {
  const unshare = findProgram('unshare');
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  const args = [unshare, '--user'];
  const split = (mappings: IdMapping[], own: number) => {
    const self = uid !== 0 ? mappings.find((m) => m.hostID === own && m.size === 1) : undefined;
    return { self, others: mappings.filter((m) => m !== self) };
  };
  const uids = split(uidMappings, uid);
  const gids = split(gidMappings, gid);
  if (uids.self) args.push(`--map-user=${uids.self.containerID}`);
  if (gids.self) args.push(`--map-group=${gids.self.containerID}`);
  for (const m of uids.others) args.push(`--map-users=${m.hostID},${m.containerID},${m.size}`);
  for (const m of gids.others) args.push(`--map-groups=${m.hostID},${m.containerID},${m.size}`);
  if (options.mount) args.push('--mount', '--propagation', 'private');
  args.push('--');
  // unshare writes gid_map itself when run by root, and then denies setgroups(2) in the
  // namespace (/proc/PID/setgroups = deny); only newgidmap, for a user's subgid range, leaves it allowed.
  return { argv: args, setgroups: uid !== 0 && gids.others.length > 0 };
}



/**
 * Walks each tree and gives every file the owner its user.rootlesscontainers xattr records
 * (umoci's rootlesscontainers.proto: field 1 uid, field 2 gid, 2^32-1 or absent = 0), then
 * puts back the mode chown cleared (setuid, setgid). Runs inside the user namespace, where
 * those ids are the container's. Prints, as JSON, how many files were changed and the ids
 * the namespace does not map (those files keep their owner).
 */
const OWNERSHIP_SCRIPT = String.raw`
import errno, json, os, stat, sys
NAME = "user.rootlesscontainers"
NOOP = 0xffffffff
def decode(raw):
    ids, i = {1: 0, 2: 0}, 0
    while i < len(raw):
        key, i = raw[i], i + 1
        value, shift = 0, 0
        while True:
            b, i = raw[i], i + 1
            value |= (b & 0x7f) << shift
            shift += 7
            if not b & 0x80:
                break
        if key >> 3 in ids:
            ids[key >> 3] = 0 if value == NOOP else value
    return ids[1], ids[2]
changed, unmapped = 0, set()
def apply(path):
    global changed
    try:
        raw = os.getxattr(path, NAME, follow_symlinks=False)
    except OSError as e:
        if e.errno not in (errno.ENODATA, errno.EPERM, errno.ENOTSUP):
            raise
        raw = b""
    uid, gid = decode(raw)
    st = os.lstat(path)
    if (st.st_uid, st.st_gid) == (uid, gid):
        return
    try:
        os.lchown(path, uid, gid)
    except OSError as e:
        if e.errno != errno.EINVAL:
            raise
        unmapped.add("%d:%d" % (uid, gid))
        return
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(path, stat.S_IMODE(st.st_mode))
    changed += 1
for root in sys.argv[1:]:
    apply(root)
    for parent, dirs, files in os.walk(root):
        for name in dirs + files:
            apply(os.path.join(parent, name))
print(json.dumps({"changed": changed, "unmapped": sorted(unmapped)}))
`;

export interface OwnershipResult {
  /** Trees that were walked (the rest were done before, for the same mappings). */
  applied: string[];
  changed: number;
  /** container uid:gid pairs the mappings do not cover (those files kept their owner). */
  unmapped: string[];
}

/**
 * Gives the files in each tree the image's owners (recorded by a rootless img-unpack) for
 * the given mappings, once: a marker under `markerDir` (keyed by the tree's path, holding its
 * inode and the mappings) says a tree is done, so the next container on the same layers
 * starts at once; a tree unpacked again (a new inode) or new mappings are done again.
 * One python3 process in the user namespace for all the trees (python's os module has the
 * xattr calls node lacks). Nothing to do without a range: only id 0 would be mapped.
 */
export async function applyRecordedOwnership(trees: string[], map: UserNamespaceMap, markerDir: string): Promise<OwnershipResult> {
  const result: OwnershipResult = { applied: [], changed: 0, unmapped: [] };
  if (!map.ranged || trees.length === 0) return result;
  const key = JSON.stringify([map.uidMappings, map.gidMappings]);
  const marker = (tree: string) => ownershipMarker(markerDir, tree);
  const stamp = (tree: string) => `${lstatSync(tree).ino} ${key}`;
  const pending: string[] = [];
  for (const tree of trees) {
    const done = await readFile(marker(tree), 'utf8').catch(() => '');
    if (done !== stamp(tree)) pending.push(tree);
  }
  if (pending.length === 0) return result;
  const { argv } = unshareCommand(map.uidMappings, map.gidMappings, { mount: false });
  let output: string;
  try {
    output = await runProgram([...argv, systemPython(), '-c', OWNERSHIP_SCRIPT, ...pending]);
  } catch (err) {
    throw new HostError(`cannot give the image's owners to its files in a user namespace: ${(err as Error).message}`);
  }
  const parsed = JSON.parse(output.trim().split('\n').pop() ?? '{}') as { changed: number; unmapped: string[] };
  await mkdir(markerDir, { recursive: true });
  for (const tree of pending) await writeFile(marker(tree), stamp(tree));
  return { applied: pending, changed: parsed.changed, unmapped: parsed.unmapped };
}

/** The marker that says `tree` has its owners (removed with the tree: a new tree may get the old one's inode). */
export function ownershipMarker(markerDir: string, tree: string): string {
  return join(markerDir, createHash('sha256').update(tree).digest('hex').slice(0, 32));
}

/**
 * rm -rf that also removes files a container gave to the subordinate range (or that the
 * range's ids made): the user cannot unlink those in a sticky or range-owned dir, so what a
 * plain removal leaves is removed again from inside a user namespace with the same mappings.
 */
export async function removeRangeOwnedTree(path: string, map: () => UserNamespaceMap = rootlessMappings): Promise<void> {
  try {
    await rm(path, { recursive: true, force: true });
    return;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if ((process.getuid?.() ?? 0) === 0 || (code !== 'EACCES' && code !== 'EPERM')) throw err;
  }
  const { uidMappings, gidMappings } = map();
  const { argv } = unshareCommand(uidMappings, gidMappings, { mount: false });
  await runProgram([...argv, findProgram('rm'), '-rf', '--', path]).catch((err: Error) => {
    throw new HostError(`cannot remove ${path}: ${err.message}`);
  });
}
