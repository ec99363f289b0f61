/**
 * Overlay mounts (seeds 000 and 001): read-only LOWER dirs + a writable UPPER (+ WORK, its
 * scratch space on the same filesystem) merged at a TARGET, with the kernel's overlay or
 * fuse-overlayfs (as root), or for a user namespace (rootless); unmounted again only when the
 * mount is the one ovl-mount recorded and no process holds it. Callers that check and then
 * mount (ovl-mount's commands) hold withMountLock around both.
 */
import { mkdir, readlink, realpath } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { OverlayMountError, sectionFor, type OverlayDriver, type OverlayLayout, type OverlayMount, type OverlayRequest } from './model.js';
import { prepareUpperAndWork, refuseMountedTarget, refuseUpperInUse, requireDirectory } from './checks.js';
import { mountFuse } from './fuse.js';
import { findHolder } from './holders.js';
import { kernelHasOverlay, mountKernel } from './kernel.js';
import { mountAt, lowerNamesOf, overlayDriverOf, type MountInfoEntry } from './mountinfo.js';
import { readMountRecord, recordMatches, removeStateDir, writeMountRecord } from './record.js';
import { mountRootless } from './rootless.js';
import { emptyLowerOf, linksDirOf, stateDirFor } from './short-names.js';
import { HostError, NotFoundError, UsageError } from '../core/errors.js';
import { programPath, runProgram } from '../core/host.js';

/** Checks the request and mounts it; returns the `mount` section that describes it, recorded in its state dir. */
export async function mountOverlay(request: OverlayRequest): Promise<OverlayMount> {
  const layout = await checkedLayout(request);
  await mkdir(layout.stateDir, { recursive: true });
  const choice = request.driver ?? 'auto';
  let section: OverlayMount | undefined;
  try {
    section = request.userNamespace ? await mountRootless(layout, { driver: choice, map: request.userNamespace }) : await mountAsRoot(layout, choice);
    await writeMountRecord(layout.stateDir, section);
    return section;
  } catch (err) {
    // Not recorded (a full disk), it could never be unmounted by ovl-mount: no mount is left behind.
    if (section?.mountedIn === 'host') await runProgram(['umount', layout.target]).catch(() => undefined);
    await removeStateDir(layout.stateDir);
    throw err;
  }
}

/**
 * The request's dirs, checked and made, by their real paths: the mount table names real paths,
 * so a target or upper dir reached through a symlink is still found mounted or in use.
 */
async function checkedLayout(request: OverlayRequest): Promise<OverlayLayout> {
  if (request.lower.length === 0) throw new UsageError('no lower dirs: give --lower, or pipe an img-unpack document');
  const lower: string[] = [];
  for (const dir of request.lower) {
    await requireDirectory(resolve(dir), 'lower dir');
    lower.push(await realpath(dir));
  }
  if ((request.upper === undefined) !== (request.work === undefined)) throw new UsageError('--upper and --work go together (or neither, with --read-only)');
  let upper: string | undefined;
  let work: string | undefined;
  if (request.upper !== undefined && request.work !== undefined) {
    await prepareUpperAndWork(resolve(request.upper), resolve(request.work));
    [upper, work] = await Promise.all([realpath(request.upper), realpath(request.work)]);
  }
  await mkdir(resolve(request.target), { recursive: true });
  const target = await realpath(request.target);
  refuseMountedTarget(target);
  const layout: OverlayLayout = { lower, upper, work, target, stateDir: stateDirFor(request.stateRoot, target) };
  refuseUpperInUse(layout, request.stateRoot);
  return layout;
}

/** The kernel's overlay, else (auto, or --driver fuse) fuse-overlayfs; one line with each reason when neither mounts. */
async function mountAsRoot(layout: OverlayLayout, choice: OverlayRequest['driver']): Promise<OverlayMount> {
  const errors: string[] = [];
  if (choice !== 'fuse') {
    if (!(await kernelHasOverlay())) errors.push('the kernel has no overlay filesystem (modprobe overlay)');
    else {
      try {
        return sectionFor('overlay', layout, await mountKernel(layout));
      } catch (err) {
        if (choice === 'kernel' || !(err instanceof OverlayMountError)) throw err;
        errors.push(err.message);
      }
    }
    if (choice === 'kernel') throw new HostError(`overlay not supported: ${errors.join('; ')}`);
  }
  if (programPath('fuse-overlayfs') === undefined) {
    errors.push('fuse-overlayfs is not installed (apt-get install fuse-overlayfs)');
    throw new HostError(`cannot mount an overlay at ${layout.target}: ${errors.join('; ')}`);
  }
  try {
    return sectionFor('fuse-overlayfs', layout, await mountFuse(layout));
  } catch (err) {
    if (!(err instanceof OverlayMountError)) throw err;
    errors.push(err.message);
    throw new HostError(`cannot mount an overlay at ${layout.target}: ${errors.join('; ')}`);
  }
}

/**
 * Unmounts TARGET (kernel overlay or fuse-overlayfs) and forgets its short names and record.
 * Refused, with one line, for a mount ovl-mount did not make (a tmpfs, a bind mount, a
 * hand-made overlay) and for one a process still holds, here or in a container's namespace.
 */
export async function unmountOverlay(target: string, stateRoot: string): Promise<void> {
  const path = await realpath(target).catch(() => resolve(target));
  const entry = mountAt(path);
  if (!entry) throw new NotFoundError(`${path} is not mounted`);
  const stateDir = stateDirFor(stateRoot, path);
  const record = readMountRecord(stateDir);
  if (!record || !recordMatches(record, entry)) {
    throw new UsageError(`${path}: the ${entry.fsType} mount there is not one ovl-mount made${record ? ' (its record is of an earlier mount)' : ''}: not unmounted`, { hint: `ovl-mount unmounts only its own overlays; use umount ${path} if you mean it` });
  }
  const holder = findHolder(entry);
  if (holder) throw busy(path, `process ${holder.pid} (${holder.command}) has ${holder.how}`);
  await runProgram(['umount', path]).catch((err: Error) => {
    if (/busy/i.test(err.message)) throw busy(path, 'a mount inside it, or a process that entered it just now');
    throw new HostError(`umount ${path} failed: ${err.message}`);
  });
  await removeStateDir(stateDir);
}

function busy(path: string, who: string): HostError {
  return new HostError(`${path}: target is busy`, { hint: `a process still uses it: see fuser -vm ${path}; ${who}` });
}

/**
 * What is mounted at TARGET, as a `mount` section, read back from the mount table (and the
 * short-name links, when the lower dirs were given by those).
 */
export async function describeMountedOverlay(target: string, stateRoot: string): Promise<OverlayMount> {
  const path = await realpath(target).catch(() => resolve(target));
  const entry = mountAt(path);
  if (!entry) throw new NotFoundError(`${path} is not mounted`);
  const driver: OverlayDriver | undefined = overlayDriverOf(entry);
  if (!driver) throw new UsageError(`${path} is a ${entry.fsType} mount, not an overlay`);
  if (driver === 'fuse-overlayfs') throw new UsageError(`${path}: fuse-overlayfs does not show its dirs in the mount table; pipe the ovl-mount document instead`);
  return sectionFromEntry(entry, stateDirFor(stateRoot, path));
}

async function sectionFromEntry(entry: MountInfoEntry, stateDir: string): Promise<OverlayMount> {
  const links = linksDirOf(stateDir);
  const real = async (p: string): Promise<string> => (p.startsWith('/') ? p : readlink(join(links, p)).catch(() => {
    throw new NotFoundError(`${entry.mountPoint}: the mount names its dirs relatively (${p}) and their short-name links are gone; pipe the ovl-mount document instead`);
  }));
  const lower = await Promise.all(lowerNamesOf(entry.options.lowerdir ?? '').map(real));
  const emptyLower = emptyLowerOf(stateDir);
  const result: OverlayMount = { target: entry.mountPoint, lower: lower.filter((l) => l !== emptyLower), driver: 'overlay' };
  if (entry.options.upperdir) result.upper = await real(entry.options.upperdir);
  if (entry.options.workdir) result.work = await real(entry.options.workdir);
  return result;
}
