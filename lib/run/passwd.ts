/**
 * USER[:GROUP] → uid, gid and supplementary groups, from the container's own /etc/passwd and
 * /etc/group (image-spec conversion.md, "Config.User"). The files are read as the container
 * would see them: a symlink in the rootfs resolves inside the rootfs, never to the host's
 * files (the same scoping as Go's filepath-securejoin, which runc and umoci use).
 */
import { readFileSync } from 'node:fs';
import { NotFoundError, UsageError } from '../core/errors.js';
import { resolveInRoot } from '../core/root-resolver.js';

export interface ResolvedUser {
  uid: number;
  gid: number;
  /** Supplementary groups (the primary one first, then /etc/group's); only for a user given by name without a group. */
  additionalGids: number[];
}

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

/** Reads a file of the container's, or returns undefined when it has none. */
function readContainerFile(root: string, path: string): string | undefined {
  const hostPath = resolveInRoot(root, path);
  if (hostPath === undefined) return undefined;
  try {
    return readFileSync(hostPath, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** The colon-separated records of a passwd-style file that have at least `minFields` fields; comment lines skipped. */
function* records(text: string, minFields: number): Generator<string[]> {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const fields = line.split(':');
    if (fields.length >= minFields) yield fields;
  }
}

/** Parses /etc/passwd: name:password:uid:gid:gecos:home:shell; lines that do not parse are skipped, as glibc does. */
export function parsePasswd(text: string): PasswdEntry[] {
  const entries: PasswdEntry[] = [];
  for (const fields of records(text, 4)) {
    const uid = parseId(fields[2] as string);
    const gid = parseId(fields[3] as string);
    if (uid === undefined || gid === undefined) continue;
    entries.push({ name: fields[0] as string, uid, gid, home: fields[5] ?? '' });
  }
  return entries;
}

/** Parses /etc/group: name:password:gid:member,member. */
export function parseGroup(text: string): GroupEntry[] {
  const entries: GroupEntry[] = [];
  for (const fields of records(text, 3)) {
    const gid = parseId(fields[2] as string);
    if (gid === undefined) continue;
    entries.push({ name: fields[0] as string, gid, members: (fields[3] ?? '').split(',').map((m) => m.trim()).filter((m) => m !== '') });
  }
  return entries;
}

function parseId(text: string): number | undefined {
  if (!/^\d+$/.test(text)) return undefined;
  const id = Number(text);
  return id <= 0xffffffff ? id : undefined;
}

/**
 * Resolves USER[:GROUP] (names or numeric ids) against the rootfs. Numeric ids are taken
 * verbatim; a numeric user found in /etc/passwd gets its primary group when no group is
 * given (as docker and podman do). A name that is not in the files is an error.
 */
export function resolveUser(root: string, spec: string): ResolvedUser {
  const colon = spec.indexOf(':');
  const userPart = colon === -1 ? spec : spec.slice(0, colon);
  const groupPart = colon === -1 ? undefined : spec.slice(colon + 1);
  if (userPart === '' || groupPart === '') throw new UsageError(`user ${JSON.stringify(spec)}: expected USER[:GROUP]`);

  const userId = parseId(userPart);
  let passwd: PasswdEntry[] | undefined;
  const passwdEntries = (): PasswdEntry[] => (passwd ??= parsePasswd(readContainerFile(root, '/etc/passwd') ?? ''));
  let groups: GroupEntry[] | undefined;
  const groupEntries = (): GroupEntry[] => (groups ??= parseGroup(readContainerFile(root, '/etc/group') ?? ''));

  let uid: number;
  let gid = 0;
  let name: string | undefined;
  if (userId !== undefined) {
    uid = userId;
    const entry = groupPart === undefined ? passwdEntries().find((e) => e.uid === userId) : undefined;
    if (entry) gid = entry.gid;
  } else {
    const entry = passwdEntries().find((e) => e.name === userPart);
    if (!entry) throw new NotFoundError(`user ${JSON.stringify(userPart)}: no such user in the rootfs's /etc/passwd`, { hint: 'give a numeric uid, or add the user to the image' });
    uid = entry.uid;
    gid = entry.gid;
    name = entry.name;
  }

  if (groupPart !== undefined) {
    const groupId = parseId(groupPart);
    if (groupId !== undefined) gid = groupId;
    else {
      const group = groupEntries().find((g) => g.name === groupPart);
      if (!group) throw new NotFoundError(`group ${JSON.stringify(groupPart)}: no such group in the rootfs's /etc/group`, { hint: 'give a numeric gid, or add the group to the image' });
      gid = group.gid;
    }
  }

  // conversion.md: supplementary groups only for a user named without a group; as initgroups(3)
  // (and so login, su, docker and podman) the primary group comes first, then those listing the user.
  const additionalGids: number[] = [];
  if (name !== undefined && groupPart === undefined) {
    additionalGids.push(gid);
    for (const group of groupEntries()) {
      if (group.members.includes(name) && !additionalGids.includes(group.gid)) additionalGids.push(group.gid);
    }
  }
  return { uid, gid, additionalGids };
}

/** HOME for a uid, as podman sets it: the home of the rootfs's first /etc/passwd entry with that uid, else /. */
export function homeOf(root: string, uid: number): string {
  const entry = parsePasswd(readContainerFile(root, '/etc/passwd') ?? '').find((e) => e.uid === uid);
  return entry?.home || '/';
}
