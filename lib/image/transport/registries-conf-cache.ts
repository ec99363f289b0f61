/**
 * The checked result of a registries.conf file, kept under the cache directory by the sha256
 * of what decides it (the parser's build, the file's name, drop-in or not, and its text), so
 * that a command does not load the TOML parser and parse the same files on every start (~7 ms
 * of img-fetch's ~50; /etc/containers/registries.conf.d/shortnames.conf alone is 900 lines).
 * The text is read every time: an edited file is another key, parsed and checked again. A
 * file with a mistake is never cached (its error is raised on every run), and the warnings of
 * a cached file are said again, as its parse would. A cache that cannot be read or written is
 * no error: the file is then parsed, as without a cache. Only a directory and entries of our
 * own user that nobody else can write are believed (a cache in a shared place could otherwise
 * send pulls to another registry); entries not rewritten for 30 days are removed on a miss.
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, type Stats } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomicSync } from '../../core/atomic-write.js';
import type { ConfFile } from './registries-conf.js';

export interface CacheOptions {
  /** Where the entries are (one JSON file per key); none: no cache. */
  dir?: string;
  /** The module of the parser and its checks (import.meta.url): an entry made by another build of it is not used. */
  parserModule: string;
  dropIn: boolean;
  warn: (message: string) => void;
}

interface Entry {
  key: string;
  conf: Omit<ConfFile, 'aliases'> & { aliases: Array<[string, string]> };
  warnings: string[];
}

/** The parse of `text` (file `file`) as `parse` makes it, from the cache when it has it. */
export function cachedParse(text: string, file: string, options: CacheOptions, parse: (warn: (message: string) => void) => ConfFile): ConfFile {
  const key = createHash('sha256').update(JSON.stringify([moduleIdentity(options.parserModule), file, options.dropIn, text])).digest('hex');
  const path = options.dir ? join(options.dir, `${key}.json`) : undefined;
  const hit = path ? readEntry(path, key) : undefined;
  if (hit) {
    for (const warning of hit.warnings) options.warn(warning);
    return { ...hit.conf, aliases: new Map(hit.conf.aliases) };
  }
  const warnings: string[] = [];
  const conf = parse((message) => {
    warnings.push(message);
    options.warn(message);
  });
  if (options.dir && path) writeEntry(options.dir, path, { key, conf: { ...conf, aliases: [...conf.aliases] }, warnings });
  return conf;
}

/** Ours and writable by us alone: what another user could have put or changed is not believed. */
function ownedPrivately(info: Stats): boolean {
  return info.uid === process.geteuid?.() && (info.mode & 0o022) === 0;
}

function readEntry(path: string, key: string): Entry | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    if (!ownedPrivately(fstatSync(fd)) || !ownedPrivately(statSync(dirname(path)))) return undefined;
    const entry = JSON.parse(readFileSync(fd, 'utf8')) as Entry;
    // A file cut short or written by something else is no entry: the text is parsed again.
    return entry?.key === key && Array.isArray(entry.warnings) && Array.isArray(entry.conf?.registries) && Array.isArray(entry.conf.aliases) ? entry : undefined;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Written whole to a temp file and renamed into place: a concurrent reader sees all of an entry or none. */
function writeEntry(dir: string, path: string, entry: Entry): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    removeOld(dir);
    writeFileAtomicSync(path, JSON.stringify(entry), 0o600);
  } catch {
    // No cache this time: the file was parsed, as without one.
  }
}

const MAX_AGE_MS = 30 * 24 * 3600 * 1000;

/** Entries (and temp files of writers that died) not written for MAX_AGE_MS: made by another build, or of a file that changed. */
function removeOld(dir: string, now = Date.now()): void {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const info = statSync(path, { throwIfNoEntry: false });
    if (info?.isFile() && now - info.mtimeMs > MAX_AGE_MS) rmSync(path, { force: true });
  }
}

const identities = new Map<string, string>();
/** A module's build (its file's size and time); one that cannot be told matches no entry. */
function moduleIdentity(moduleUrl: string): string {
  let identity = identities.get(moduleUrl);
  if (identity === undefined) {
    const info = statSync(fileURLToPath(moduleUrl), { throwIfNoEntry: false });
    identity = info ? `${moduleUrl}:${info.size}:${info.mtimeMs}` : `${moduleUrl}:${randomBytes(8).toString('hex')}`;
    identities.set(moduleUrl, identity);
  }
  return identity;
}
