/**
 * Image references as docker and podman read them (`busybox` is docker.io/library/busybox:latest),
 * and image sources as skopeo names them (docker://, oci:, docker-archive:). Pure functions.
 */
import { basename } from 'node:path';
import { checkDigest } from '../core/digest.js';
import { ReferenceError } from '../core/errors.js';

export const DEFAULT_REGISTRY = 'docker.io';
const DEFAULT_TAG = 'latest';

export interface ImageReference {
  registry: string;
  repository: string;
  tag?: string;
  digest?: string;
}

// From the distribution reference grammar.
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DOMAIN = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*(?::[0-9]+)?$|^\[[0-9a-fA-F:]+\](?::[0-9]+)?$/;

export function parseReference(text: string): ImageReference {
  if (text === '') throw new ReferenceError('empty image reference');
  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    checkPinningDigest(digest, text);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const lastColon = rest.lastIndexOf(':');
  if (lastColon > lastSlash) {
    tag = rest.slice(lastColon + 1);
    rest = rest.slice(0, lastColon);
    if (!TAG.test(tag)) throw new ReferenceError(`invalid tag "${tag}" in reference "${text}"`);
  }
  let registry = DEFAULT_REGISTRY;
  let repository = rest;
  const firstSlash = rest.indexOf('/');
  if (firstSlash > 0) {
    const first = rest.slice(0, firstSlash);
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first.startsWith('[')) {
      if (!DOMAIN.test(first)) throw new ReferenceError(`invalid registry host "${first}" in reference "${text}"`);
      registry = first;
      repository = rest.slice(firstSlash + 1);
    }
  }
  if (registry === 'index.docker.io' || registry === 'registry-1.docker.io') registry = DEFAULT_REGISTRY;
  if (registry === DEFAULT_REGISTRY && !repository.includes('/')) repository = `library/${repository}`;
  for (const component of repository.split('/')) {
    if (!PATH_COMPONENT.test(component)) {
      throw new ReferenceError(`invalid repository name "${repository}" in reference "${text}" (lower-case letters, digits and . _ - only)`);
    }
  }
  if (!tag && !digest) tag = DEFAULT_TAG;
  return { registry, repository, tag, digest };
}

/** A digest that pins a reference: the spec's grammar, and sha256 (what the store keeps manifests by). */
function checkPinningDigest(digest: string, text: string): void {
  try {
    checkDigest(digest, `reference "${text}"`);
  } catch (err) {
    throw new ReferenceError(`invalid digest "${digest}" in reference "${text}" (want sha256: and 64 hex digits)`, { cause: err });
  }
  if (!digest.startsWith('sha256:')) throw new ReferenceError(`reference "${text}": only a sha256 digest can pin an image here (the store keeps manifests by sha256)`);
}

/** A tag as the distribution spec writes it (it goes into a URL path as it is). */
export function isTag(text: string): boolean {
  return TAG.test(text);
}

/** A repository name as the distribution spec writes it: path components separated by slashes. */
export function isRepositoryName(text: string): boolean {
  return text.length <= 255 && text.split('/').every((component) => PATH_COMPONENT.test(component));
}

/** The full name: registry/repository[:tag][@digest]. */
export function formatReference(ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}

/** What to ask the registry's manifest endpoint for: the digest when pinned, else the tag. */
export function manifestReference(ref: ImageReference): string {
  return ref.digest ?? ref.tag ?? DEFAULT_TAG;
}

/** The host that serves the registry API (Docker Hub's is not docker.io). */
export function registryEndpointHost(registry: string): string {
  return registry === DEFAULT_REGISTRY ? 'registry-1.docker.io' : registry;
}

/** The transports img-fetch reads from, named as skopeo names them. */
export type ImageSource =
  | { transport: 'docker'; reference: ImageReference }
  | { transport: 'oci'; path: string; name?: string }
  | { transport: 'docker-archive'; path: string; name?: string }
  | { transport: 'tarball'; path: string };

/** skopeo's other transports: named so that a user gets a clear answer, not a bad-reference error. */
const OTHER_TRANSPORTS = new Set(['dir', 'docker-daemon', 'oci-archive', 'containers-storage', 'ostree', 'sif']);

export function parseSource(text: string): ImageSource {
  if (text.startsWith('docker://')) return { transport: 'docker', reference: parseReference(text.slice('docker://'.length)) };
  for (const transport of ['oci', 'docker-archive'] as const) {
    const prefix = `${transport}:`;
    if (!text.startsWith(prefix)) continue;
    const { path, name } = splitPathAndName(text.slice(prefix.length));
    if (path === '') throw new ReferenceError(`"${text}": missing the path after ${prefix}`);
    return { transport, path, name };
  }
  if (text.startsWith('tarball:')) {
    const path = text.slice('tarball:'.length);
    if (path === '') throw new ReferenceError(`"${text}": missing the path after tarball:`);
    return { transport: 'tarball', path };
  }
  const transport = /^([a-z-]+):/.exec(text)?.[1];
  if (transport && OTHER_TRANSPORTS.has(transport)) {
    throw new ReferenceError(`the ${transport}: transport is not supported here (use docker://, oci:, docker-archive: or tarball:)`);
  }
  // A bare reference is a registry image, as in `podman pull busybox`.
  return { transport: 'docker', reference: parseReference(text) };
}

/** `PATH:NAME` → path and name; the path ends at the first colon, as in skopeo's oci: transport. */
function splitPathAndName(rest: string): { path: string; name?: string } {
  const colon = rest.indexOf(':');
  if (colon < 0) return { path: rest };
  const name = rest.slice(colon + 1);
  return { path: rest.slice(0, colon), name: name === '' ? undefined : name };
}

export function formatSource(source: ImageSource): string {
  if (source.transport === 'docker') return `docker://${formatReference(source.reference)}`;
  if (source.transport === 'tarball') return `tarball:${source.path}`;
  return `${source.transport}:${source.path}${source.name ? `:${source.name}` : ''}`;
}

/**
 * The name an image from an OCI layout gets in the shared store. A bare tag (`latest`, `v1`) is
 * only unique inside its layout, so it is qualified the way podman names local images:
 * `localhost/<layout dir>:<tag>`. A name with a repository in it is kept as it is.
 */
export function storeNameForLayoutImage(layoutPath: string, name: string | undefined): string {
  const repository = basename(layoutPath).toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '') || 'layout';
  if (name === undefined) return `localhost/${repository}:latest`;
  return /^[\w][\w.-]{0,127}$/.test(name) ? `localhost/${repository}:${name}` : name;
}
