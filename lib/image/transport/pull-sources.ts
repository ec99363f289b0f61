/**
 * What registries.conf makes of a reference, as containers/image decides it (sysregistriesv2,
 * shortnames): the [[registry]] table with the longest matching prefix, its mirrors (in order,
 * filtered by pull-from-mirror / mirror-by-digest-only) then its location, each with the
 * reference rewritten (location + what follows the prefix) and its own insecure flag; and for
 * a short name like `busybox`, the candidates from [aliases] or unqualified-search-registries.
 * Pure functions of the configuration.
 */
import { UsageError } from '../../core/errors.js';
import { formatReference, parseReference, type ImageReference } from '../reference.js';
import type { Endpoint, RegistriesConf, RegistryEntry } from './registries-conf.js';

export interface PullSource {
  /** The reference as this endpoint serves it. */
  reference: ImageReference;
  /** Plain HTTP or an unverified certificate is allowed (registries.conf `insecure = true`). */
  insecure: boolean;
  role: 'mirror' | 'location';
  /** The table that chose it; undefined when no table matched (the reference as it is). */
  entry?: RegistryEntry;
  /** Why registries.conf refuses this endpoint (`blocked = true`), if it does. */
  blocked?: string;
}

/**
 * How much of `ref` (HOST[:PORT]/PATH[:TAG][@DIGEST]) the prefix matches, or -1: the prefix and
 * then the end or one of `:` `/` `@`. A wildcard `*.example.com` matches any subdomains of the
 * host part. (Like containers/image, `example.com` also matches `example.com:5000`.)
 */
export function matchPrefix(ref: string, prefix: string): number {
  if (prefix.startsWith('*.')) {
    const suffix = prefix.slice(1);
    const at = ref.indexOf(suffix);
    if (at < 0 || ref.slice(0, at).includes('/')) return -1;
    const end = at + suffix.length;
    return end === ref.length || ':/@'.includes(ref[end] as string) ? end : -1;
  }
  if (!ref.startsWith(prefix)) return -1;
  return ref.length === prefix.length || ':/@'.includes(ref[prefix.length] as string) ? prefix.length : -1;
}

/** The table with the longest prefix that matches `ref` (a name, with or without tag or digest). */
export function findRegistry(conf: RegistriesConf, ref: string): RegistryEntry | undefined {
  let best: RegistryEntry | undefined;
  for (const entry of conf.registries) {
    if (matchPrefix(ref, entry.prefix) >= 0 && entry.prefix.length > (best?.prefix.length ?? 0)) best = entry;
  }
  return best;
}

function repositoryName(ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}`;
}

/** The endpoints to try for `ref`, in order: the mirrors, then the location. */
export function pullSources(conf: RegistriesConf, ref: ImageReference): PullSource[] {
  const entry = findRegistry(conf, repositoryName(ref));
  if (!entry) return [withBlocked(conf, { reference: ref, insecure: false, role: 'location' })];
  const digested = ref.digest !== undefined;
  const mirrors = entry.mirrors.filter((mirror) => {
    if (entry.mirrorByDigestOnly) return digested;
    if (mirror.pullFromMirror === 'digest-only') return digested;
    if (mirror.pullFromMirror === 'tag-only') return !digested;
    return true;
  });
  return [
    ...mirrors.map((mirror) => withBlocked(conf, { reference: rewrite(ref, entry, mirror), insecure: mirror.insecure, role: 'mirror', entry })),
    withBlocked(conf, { reference: rewrite(ref, entry, entry), insecure: entry.insecure, role: 'location', entry }),
  ];
}

/** `location` + what follows the prefix; an empty location (a wildcard table) keeps the reference. */
function rewrite(ref: ImageReference, entry: RegistryEntry, endpoint: Endpoint): ImageReference {
  if (endpoint.location === '') return ref;
  const text = formatReference(ref);
  const rewritten = `${endpoint.location}${text.slice(matchPrefix(text, entry.prefix))}`;
  try {
    return parseReference(rewritten);
  } catch (err) {
    throw new UsageError(`${entry.origin}: prefix "${entry.prefix}" → location "${endpoint.location}" turns ${text} into ${rewritten}, not a valid reference`, { cause: err });
  }
}

/** containers/image checks `blocked` for the endpoint's own name: a mirror outside the blocked prefix still serves. */
function withBlocked(conf: RegistriesConf, source: PullSource): PullSource {
  const entry = findRegistry(conf, repositoryName(source.reference));
  if (!entry?.blocked) return source;
  return { ...source, blocked: `${formatReference(source.reference)}: registry "${entry.prefix}" is blocked in ${entry.origin}` };
}

/** A name with no registry host in front (`busybox`, `library/busybox:1.36`): registries.conf decides where it is. */
export function isShortName(text: string): boolean {
  const name = text.replace(/@.*$/, '');
  const slash = name.indexOf('/');
  if (slash < 0) return true;
  const first = name.slice(0, slash);
  return !(first.includes('.') || first.includes(':') || first === 'localhost');
}

export interface ShortNameResolution {
  /** The references to try, in order. */
  candidates: ImageReference[];
  /** How they were chosen, for --verbose (podman's wording). */
  description: string;
}

/**
 * The candidates for a short name: its alias, else each unqualified-search registry in front of
 * it. With short-name-mode = "enforcing" more than one candidate is an error (no prompt is
 * offered). An empty search list that a file sets is an error, as in podman; with none set at
 * all (no file says), Docker Hub, as docker reads a bare name (podman refuses that too).
 */
export function resolveShortName(conf: RegistriesConf, text: string): ShortNameResolution {
  const user = parseReference(text);
  const name = text.replace(/@.*$/, '').replace(/:[^/]*$/, '');
  const alias = conf.aliases.get(name);
  if (alias) {
    const target = parseReference(alias.value);
    return { candidates: [{ ...target, tag: user.tag, digest: user.digest }], description: `resolved "${name}" as an alias (${alias.origin})` };
  }
  if (conf.searchRegistries.length === 0 && conf.searchOrigin !== undefined) {
    // An empty list set on purpose means "no searching" (a registry squatting a name on Docker Hub cannot be pulled by accident): podman refuses it too.
    throw new UsageError(`short name "${name}" has no alias and unqualified-search-registries is empty in ${conf.searchOrigin}; give the full name (e.g. docker.io/${user.repository})`);
  }
  if (conf.searchRegistries.length === 0) {
    return { candidates: [user], description: `"${name}" is on Docker Hub: no unqualified-search-registries are configured${conf.files.length ? ` in ${conf.files.join(', ')}` : ''}` };
  }
  const candidates = conf.searchRegistries.map((registry) => parseReference(`${registry}/${text}`));
  const origin = conf.searchOrigin ?? 'registries.conf';
  if (candidates.length > 1 && conf.shortNameMode === 'enforcing') {
    throw new UsageError(`short name "${name}" is ambiguous with short-name-mode = "enforcing" (${origin}): it could be ${candidates.map(formatReference).join(' or ')}; give the full name`);
  }
  return { candidates, description: `resolving "${name}" using unqualified-search registries (${origin})` };
}
