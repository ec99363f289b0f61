/**
 * What ovl-mount mounted, recorded in the target's state dir (`mount.json`): the section it
 * printed, and the mount's id and device as the mount table showed them right after. Only a
 * mount that matches its record is ovl-mount's own to unmount; a tmpfs, a bind mount or a
 * hand-made overlay at the same place is not.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { OverlayMount } from './model.js';
import { mountAt, optionsMatch, overlayDriverOf, type MountInfoEntry } from './mountinfo.js';

export interface MountRecord {
  section: OverlayMount;
  /** The mount's id and device; absent for an overlay mounted only inside a container (mountedIn: container). */
  mountId?: number;
  device?: string;
}

function recordPath(stateDir: string): string {
  return join(stateDir, 'mount.json');
}

/** Records a mount just made (its entry read back from the mount table). */
export async function writeMountRecord(stateDir: string, section: OverlayMount): Promise<void> {
  const entry = section.mountedIn === 'container' ? undefined : mountAt(section.target);
  const record: MountRecord = entry ? { section, mountId: entry.id, device: entry.device } : { section };
  await writeFile(recordPath(stateDir), `${JSON.stringify(record)}\n`);
}

export function readMountRecord(stateDir: string): MountRecord | undefined {
  try {
    const record = JSON.parse(readFileSync(recordPath(stateDir), 'utf8')) as MountRecord;
    return typeof record?.section?.target === 'string' ? record : undefined;
  } catch {
    return undefined;
  }
}

export async function removeStateDir(stateDir: string): Promise<void> {
  await rm(stateDir, { recursive: true, force: true });
}

/** Whether the mount table entry is the mount the record describes (mount ids are reused, so its dirs are compared too). */
export function recordMatches(record: MountRecord, entry: MountInfoEntry): boolean {
  const section = record.section;
  if (record.mountId !== entry.id || record.device !== entry.device || section.target !== entry.mountPoint) return false;
  if (overlayDriverOf(entry) !== section.driver) return false;
  return section.driver !== 'overlay' || optionsMatch(section.options ?? '', entry);
}

/** The records under the state root whose mounts are still there. */
export function liveRecords(stateRoot: string, entries: MountInfoEntry[]): MountRecord[] {
  let names: string[];
  try {
    names = readdirSync(stateRoot);
  } catch {
    return [];
  }
  return names.map((name) => readMountRecord(join(stateRoot, name))).filter((record): record is MountRecord => {
    if (!record) return false;
    const entry = mountAt(record.section.target, entries);
    return entry !== undefined && recordMatches(record, entry);
  });
}
