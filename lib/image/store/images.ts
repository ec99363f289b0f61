/**
 * The store's images as `podman images / tag / rmi` show and change them: an image is a name in
 * index.json; its id is its config's digest (podman's IMAGE ID), shown short. An image is found
 * by its name (also the short forms img-fetch normalises: busybox → docker.io/library/busybox:latest),
 * its manifest or config digest, or a unique prefix of either. Removing a name leaves the blobs
 * to `img-store gc`, as `podman rmi` + `podman image prune` would.
 */
import { UsageError, NotFoundError } from '../../core/errors.js';
import { formatBytes } from '../../core/progress.js';
import { formatReference, parseReference } from '../reference.js';
import { REF_NAME_ANNOTATION, type Descriptor, type ImageManifest } from '../model.js';
import type { OciLayout } from './oci-layout.js';

export interface ImageRow {
  name: string;
  /** The config's digest (podman's image id). */
  id: string;
  /** The manifest's digest. */
  digest: string;
  /** The config's `created`, when it has one. */
  created?: string;
  /** Bytes the image's blobs take in the store (manifest, config, layers as stored). */
  size: number;
}

export interface FoundImage {
  /** The index entry to use (the last with that name or digest). */
  entry: Descriptor;
  /** Found by digest or id prefix, not by a name. */
  byId: boolean;
}

const name = (entry: Descriptor) => entry.annotations?.[REF_NAME_ANNOTATION];

/** The image `wanted` names: a name first, else a digest or a unique id prefix (4 hex digits at least). */
export async function findImage(layout: OciLayout, wanted: string): Promise<FoundImage> {
  const index = await layout.readIndex();
  const normalized = normalizedName(wanted);
  let found = index.manifests.filter((m) => name(m) === wanted || (normalized !== undefined && name(m) === normalized));
  const byId = found.length === 0;
  const hex = /^(?:sha256:)?([a-f0-9]{4,64})$/.exec(wanted)?.[1];
  if (byId && hex) {
    const configs = await Promise.all(index.manifests.map((m) => configDigest(layout, m)));
    found = index.manifests.filter((m, i) => m.digest.slice(7).startsWith(hex) || (configs[i] as string).slice(7).startsWith(hex));
    if (new Set(found.map((m) => m.digest)).size > 1) throw new UsageError(`${wanted}: more than one image in ${layout.root} has an id that starts so (${found.map(name).join(', ')}); give more of it`);
  }
  const entry = found[found.length - 1];
  if (!entry) throw new NotFoundError(`${layout.root}: no image named or with the id ${JSON.stringify(wanted)}`, { hint: 'img-store ls lists them' });
  return { entry, byId };
}

/** One row per name, sorted by name. */
export async function listImages(layout: OciLayout): Promise<ImageRow[]> {
  const index = await layout.readIndex();
  const rows = await Promise.all(index.manifests.filter((m) => name(m) !== undefined).map((m) => describe(layout, m)));
  return rows.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

async function describe(layout: OciLayout, entry: Descriptor): Promise<ImageRow> {
  const row: ImageRow = { name: name(entry) as string, id: '', digest: entry.digest, size: entry.size };
  const manifest = await layout.readJson<ImageManifest>(entry).catch(() => undefined);
  if (!manifest?.config) return row;
  row.id = manifest.config.digest;
  row.size += manifest.config.size + (manifest.layers ?? []).reduce((sum, layer) => sum + layer.size, 0);
  const config = await layout.readJson<{ created?: unknown }>(manifest.config).catch(() => undefined);
  if (typeof config?.created === 'string') row.created = config.created;
  return row;
}

/** A new name for an image (podman tag): a name without a registry gets `localhost/`, one without a tag `:latest`. */
export async function tagImage(layout: OciLayout, source: string, newName: string): Promise<string> {
  const target = storeName(newName);
  const { entry } = await findImage(layout, source);
  const { annotations: _annotations, ...descriptor } = entry;
  await layout.tag(target, descriptor);
  return target;
}

export interface Removal {
  /** Names taken out of index.json. */
  untagged: string[];
  /** Images (by manifest digest) that no name keeps any more: gc frees their blobs. */
  deleted: string[];
}

/**
 * Removes names (podman rmi): a name goes alone; an id removes the image's names, but when
 * several names share the image only with `force` (as podman refuses). All or nothing: every
 * argument is resolved before index.json is written once.
 */
export interface RemoveOptions {
  force: boolean;
  /** The containers using the store's images (runtime/image-users.ts): an image one uses is kept unless `force`, as podman rmi does. */
  users?: () => Promise<Array<{ digest: string; container: string }>>;
}

export async function removeImages(layout: OciLayout, wanted: string[], options: RemoveOptions): Promise<Removal> {
  return layout.withIndexLock(async () => {
    const index = await layout.readIndex();
    const doomed = new Set<string>();
    for (const text of wanted) {
      const { entry, byId } = await findImage(layout, text);
      const names = index.manifests.filter((m) => m.digest === entry.digest).map(name).filter((n): n is string => n !== undefined);
      if (byId && names.length > 1 && !options.force) {
        throw new UsageError(`image ${text} has ${names.length} names (${names.join(', ')}): remove them by name, or give --force to remove them all`);
      }
      for (const n of byId ? names : [name(entry) as string]) doomed.add(n);
    }
    const kept = index.manifests.filter((m) => !doomed.has(name(m) ?? ''));
    const deleted = [...new Set(index.manifests.filter((m) => doomed.has(name(m) ?? '')).map((m) => m.digest))].filter((d) => !kept.some((m) => m.digest === d));
    if (!options.force) await refuseUsed(deleted, index.manifests, options.users);
    await layout.writeIndex({ ...index, manifests: kept });
    return { untagged: [...doomed], deleted };
  });
}

/** An image about to lose its last name while a container uses it: one line naming the container. */
async function refuseUsed(deleted: string[], entries: Descriptor[], users: RemoveOptions['users']): Promise<void> {
  if (deleted.length === 0 || !users) return;
  const user = (await users()).find((u) => deleted.includes(u.digest));
  if (!user) return;
  const names = entries.filter((m) => m.digest === user.digest).map(name).filter((n): n is string => n !== undefined);
  throw new UsageError(`image ${names.join(', ') || user.digest} is in use by ${user.container}: remove the container first, or give --force to remove the name anyway`);
}

/** The name a store gives: the reference normalised, `localhost/` for a name without a registry (podman's rule for local names). */
export function storeName(text: string): string {
  const firstComponent = text.split('/')[0] as string;
  const hasRegistry = text.includes('/') && (firstComponent.includes('.') || firstComponent.includes(':') || firstComponent === 'localhost');
  const reference = parseReference(hasRegistry ? text : `localhost/${text}`);
  if (reference.digest) throw new UsageError(`${text}: a name takes a tag, not a digest`);
  return formatReference(reference);
}

function normalizedName(text: string): string | undefined {
  try {
    return formatReference(parseReference(text));
  } catch {
    return undefined;
  }
}

async function configDigest(layout: OciLayout, entry: Descriptor): Promise<string> {
  const manifest = await layout.readJson<ImageManifest>(entry).catch(() => undefined);
  return manifest?.config?.digest ?? '';
}

/** The rows as `podman images` lays them out: NAME, ID (12 digits), CREATED (UTC, to the second), SIZE. */
export function formatImageTable(rows: ImageRow[]): string {
  const cells = [['NAME', 'ID', 'CREATED', 'SIZE'], ...rows.map((r) => [r.name, r.id.slice(7, 19), r.created ? r.created.replace(/\.\d+/, '').replace(/(\+00:00)$/, 'Z') : '-', formatBytes(r.size)])];
  const widths = [0, 1, 2].map((i) => Math.max(...cells.map((c) => (c[i] as string).length)));
  return cells.map((c) => c.map((cell, i) => (i < 3 ? cell.padEnd(widths[i] as number) : cell)).join('  ')).join('\n') + '\n';
}
