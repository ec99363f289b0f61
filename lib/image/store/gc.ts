/**
 * Garbage collection of the store (`img-store gc`, like `podman image prune`): what nothing
 * names goes. The store knows its blobs and names; what else uses the store (containers and
 * mounts, the cached trees) is known by the folders that make them, so they take part as
 * StoreUsers the caller passes in: each can hold off new uses of its kind while the gc runs
 * (the mount lock), pin images and paths (a container's image, an overlay's lower dirs), and
 * collect its own leftovers once the live set is known.
 *
 * Safe while other commands use the store: everything happens under the index.json lock,
 * which every writer of names takes, and a pull or commit moves its blobs into place and names
 * them in one turn of that lock (OciLayout.commitAndTag), so no blob is ever seen placed but
 * unnamed; a blob a running transaction reuses is hard-linked into its staging directory
 * (BlobTransaction.claim), and a live transaction's staging directory is never swept.
 */
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Descriptor } from '../model.js';
import type { OciLayout } from './oci-layout.js';
import { sweepStaging } from './transaction.js';
import { BlobSources } from './blob-sources.js';

/** What a user of the store keeps alive: images by manifest digest, and paths under the store (absolute, real). */
export interface StorePins {
  manifests: string[];
  paths: string[];
}

/** What the gc keeps: the manifests and blobs reachable from index.json and the pins, the layers' diff_ids, the pinned paths. */
export interface LiveSet {
  manifests: Set<string>;
  blobs: Set<string>;
  diffIds: Set<string>;
  paths: string[];
}

export interface StoreUser {
  /** Runs `fn` while no new use of this kind can begin (or at once, when uses are recorded). */
  hold<T>(fn: () => Promise<T>): Promise<T>;
  pins(): Promise<StorePins>;
  /** Removes this user's leftovers that the live set does not keep; returns what went (paths under the store). */
  collect(live: LiveSet): Promise<string[]>;
}

export interface GcReport {
  /** Blobs removed, by digest. */
  blobs: string[];
  /** Bytes the removed blobs took. */
  freedBytes: number;
  /** Staging directories of dead pulls and commits. */
  staging: string[];
  /** What the users collected (trees, container dirs), as paths under the store. */
  removed: string[];
}

const BLOB_NAME = /^[a-f0-9]{64}$/;

export async function collectGarbage(layout: OciLayout, users: StoreUser[]): Promise<GcReport> {
  const body = () => layout.withIndexLock(() => collectLocked(layout, users));
  const held = users.reduceRight<() => Promise<GcReport>>((inner, user) => () => user.hold(inner), body);
  return held();
}

async function collectLocked(layout: OciLayout, users: StoreUser[]): Promise<GcReport> {
  const staging = await sweepStaging(layout.root);
  const pins = await Promise.all(users.map((user) => user.pins()));
  const index = await layout.readIndex();
  const pinned = pins.flatMap((p) => p.manifests).map((digest) => ({ digest }) as Descriptor);
  const live = await reachable(layout, index.manifests.concat(pinned).filter(isDescriptor));
  live.paths = pins.flatMap((p) => p.paths);
  const { removed: blobs, bytes } = await removeUnreachableBlobs(layout, live.blobs);
  await new BlobSources(layout.root).sweep(live.blobs);
  const removed: string[] = [];
  for (const user of users) removed.push(...(await user.collect(live)));
  return { blobs, freedBytes: bytes, staging, removed };
}

/**
 * The closure of the roots: manifests (and the manifests of an index), their configs and
 * layers, and the configs' diff_ids. A root whose blob is missing or unreadable keeps only its
 * own digest: a broken image is left as it is, not made worse.
 */
export async function reachable(layout: OciLayout, roots: Descriptor[]): Promise<LiveSet> {
  const live: LiveSet = { manifests: new Set(), blobs: new Set(), diffIds: new Set(), paths: [] };
  const pending = [...roots];
  for (let next = pending.pop(); next; next = pending.pop()) {
    if (live.blobs.has(next.digest)) continue;
    live.blobs.add(next.digest);
    const parsed = await layout.readJson<{ manifests?: Descriptor[]; config?: Descriptor; layers?: Descriptor[] }>(next).catch(() => undefined);
    if (!parsed) continue;
    if (Array.isArray(parsed.manifests)) pending.push(...parsed.manifests.filter(isDescriptor));
    if (!parsed.config || !isDescriptor(parsed.config)) continue;
    live.manifests.add(next.digest);
    live.blobs.add(parsed.config.digest);
    for (const layer of (parsed.layers ?? []).filter(isDescriptor)) live.blobs.add(layer.digest);
    const config = await layout.readJson<{ rootfs?: { diff_ids?: unknown } }>(parsed.config).catch(() => undefined);
    const diffIds = config?.rootfs?.diff_ids;
    if (Array.isArray(diffIds)) for (const id of diffIds) if (typeof id === 'string') live.diffIds.add(id);
  }
  return live;
}

function isDescriptor(value: unknown): value is Descriptor {
  return typeof (value as Descriptor)?.digest === 'string' && /^sha256:[a-f0-9]{64}$/.test((value as Descriptor).digest);
}

async function removeUnreachableBlobs(layout: OciLayout, keep: Set<string>): Promise<{ removed: string[]; bytes: number }> {
  const dir = join(layout.root, 'blobs', 'sha256');
  const removed: string[] = [];
  let bytes = 0;
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const digest = `sha256:${name}`;
    if (!BLOB_NAME.test(name) || keep.has(digest)) continue;
    const info = await stat(join(dir, name)).catch(() => undefined);
    if (!info?.isFile()) continue;
    await rm(join(dir, name), { force: true });
    removed.push(digest);
    bytes += info.size;
  }
  return { removed, bytes };
}
