/**
 * The state dir of oci-runtime (runc's --root): one dir per container, `ROOT/ID/`, claimed by
 * mkdir(2) (atomic: two creates of one id never both win), holding `state.json` (always
 * written whole: lib/core/atomic-write.ts), the config as it was at create time (later edits
 * of the bundle's do not affect the container, as runtime.md asks) and the supervisor's
 * control socket. A record's `pid` is trusted only while that pid still has the start time
 * recorded with it, so a container whose process is gone is `stopped` even after the pid was
 * reused; a create that died half-way (its creator gone) is swept by the next claim.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ClobberError, NotFoundError, UsageError } from '../core/errors.js';
import { currentHolder, holderLiveness, isStale, processStartTime, type HolderRecord } from '../core/holder.js';
import { runStateDir } from '../run/run-record.js';
import { OCI_VERSION } from '../run/spec.js';

export type Status = 'creating' | 'created' | 'running' | 'stopped';

/** What state.json holds: the OCI state's fields and what the runtime itself needs. */
export interface ContainerRecord {
  id: string;
  /** As recorded; the status a reader sees is worked out by `currentStatus`. */
  status: Status;
  /** The container's first process, as seen from the host (0 until it exists). */
  pid: number;
  /** Its start time (field 22 of /proc/PID/stat): a pid with another start time is not it. */
  pidStartTime: string;
  bundle: string;
  rootfs: string;
  /** ISO 8601, when create began. */
  created: string;
  annotations?: Record<string, string>;
  /** Who makes and holds the container: the create command, then its supervisor. */
  holder: HolderRecord;
  /** process.args, for listings. */
  command: string[];
  /** The image the container was made from, when known (ns-enter's piped document). */
  image?: string;
  /** Who made it: a bundle run by oci-runtime, or a detached ns-enter. */
  origin: 'oci-runtime' | 'ns-enter';
  exitCode?: number;
  /** ns-enter --rm: remove the state (and the container's dirs) when it ends. */
  removeWhenStopped?: boolean;
}

/** The OCI state (runtime.md), in runc's field order. */
export interface OciState {
  ociVersion: string;
  id: string;
  pid: number;
  status: Status;
  bundle: string;
  rootfs: string;
  created: string;
  annotations?: Record<string, string>;
  owner: string;
}

/** The ids runc takes: they are dir names here, and cgroup names. */
const ID = /^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$/;

/** --root: given, else /run/container-parts as root and $XDG_RUNTIME_DIR/container-parts rootless (ns-enter's run records live there too). */
export function stateRoot(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return flag ?? runStateDir(env);
}

export function containerDir(root: string, id: string): string {
  checkId(id);
  return join(root, id);
}

export function checkId(id: string): void {
  if (!ID.test(id)) throw new UsageError(`container id ${JSON.stringify(id)} is not valid: use letters, digits, _ + . - (up to 128, not starting with . - _ +)`);
}

/** The config create copied into the container's dir: later edits of the bundle's do not reach the container. */
export function configCopy(dir: string): string {
  return join(dir, 'config.json');
}

export function recordFile(dir: string): string {
  return join(dir, 'state.json');
}

/**
 * Claims `id`: makes ROOT/ID and writes its first record (status creating, held by us). An id
 * that exists is refused, unless what is there is the leftover of a create that died before it
 * finished (its holder is gone, or it never wrote a record and is older than any create takes).
 */
export async function claimId(root: string, record: Omit<ContainerRecord, 'holder' | 'status'>): Promise<string> {
  const dir = containerDir(root, record.id);
  mkdirSync(root, { recursive: true, mode: 0o711 });
  for (let attempt = 0; ; attempt++) {
    try {
      mkdirSync(dir, { mode: 0o711 });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (attempt > 0 || !isLeftover(dir)) throw new ClobberError(`container with id ${record.id} already exists`, { hint: `delete it first (oci-runtime delete ${record.id}) or choose another id` });
      rmSync(dir, { recursive: true, force: true });
    }
  }
  await writeRecord(dir, { ...record, status: 'creating', holder: currentHolder() });
  return dir;
}

/** A dir a create left when it died before the container existed. */
function isLeftover(dir: string): boolean {
  const record = tryReadRecord(dir);
  if (!record) return isStale(statSync(dir, { throwIfNoEntry: false })?.mtimeMs ?? 0);
  return record.status === 'creating' && holderLiveness(record.holder) === 'dead';
}

/** Written whole; the writer is loaded when first used (it loads node:crypto), as state, start, kill and delete only read. */
export async function writeRecord(dir: string, record: ContainerRecord): Promise<void> {
  const { writeFileAtomic } = await import('../core/atomic-write.js');
  return writeFileAtomic(recordFile(dir), JSON.stringify(record));
}

function tryReadRecord(dir: string): ContainerRecord | undefined {
  try {
    return JSON.parse(readFileSync(recordFile(dir), 'utf8')) as ContainerRecord;
  } catch {
    return undefined;
  }
}

/** The record of `id`; a NotFoundError when there is no such container. */
export function readRecord(root: string, id: string): ContainerRecord {
  const record = tryReadRecord(containerDir(root, id));
  if (!record) throw new NotFoundError(`container ${id} does not exist`, { hint: `oci-runtime --root ${root} list shows the containers there` });
  return record;
}

/** The record of `id`, or undefined when there is none (gone, or not yet written). */
export function findRecord(root: string, id: string): ContainerRecord | undefined {
  return tryReadRecord(containerDir(root, id));
}

/** Whether the container's first process is the one recorded (not gone, not a reused pid). */
export function processAlive(record: Pick<ContainerRecord, 'pid' | 'pidStartTime'>): boolean {
  return record.pid > 0 && record.pidStartTime !== '' && processStartTime(record.pid) === record.pidStartTime;
}

/** The status a reader sees: created and running only while the process lives; a create whose holder died is stopped. */
export function currentStatus(record: ContainerRecord): Status {
  if (record.status === 'creating') return holderLiveness(record.holder) === 'dead' ? 'stopped' : 'creating';
  if (record.status === 'stopped') return 'stopped';
  return processAlive(record) ? record.status : 'stopped';
}

export function ociState(record: ContainerRecord): OciState {
  const status = currentStatus(record);
  return {
    ociVersion: OCI_VERSION,
    id: record.id,
    pid: status === 'stopped' || status === 'creating' ? 0 : record.pid,
    status,
    bundle: record.bundle,
    rootfs: record.rootfs,
    created: record.created,
    ...(record.annotations && Object.keys(record.annotations).length > 0 ? { annotations: record.annotations } : {}),
    owner: '',
  };
}

/** Every container under `root`, by id; dirs without a readable record (a create under way) are left out. */
export function listRecords(root: string): ContainerRecord[] {
  let entries: string[];
  try {
    entries = readdirSync(root);
  } catch {
    return [];
  }
  return entries.filter((e) => ID.test(e)).map((e) => tryReadRecord(join(root, e))).filter((r): r is ContainerRecord => r !== undefined).sort((a, b) => a.id.localeCompare(b.id));
}

export function removeContainerDir(root: string, id: string): void {
  rmSync(containerDir(root, id), { recursive: true, force: true });
}
