/**
 * registries.conf as containers-registries.conf(5) and containers-registries.conf.d(5) define
 * it, read the way containers/image (skopeo, podman) reads it: the main file, then the *.conf
 * drop-ins in name order, later files replacing [[registry]] tables of the same prefix, the
 * search list and the short-name mode, and adding aliases. TOML is parsed by smol-toml (TOML
 * 1.0, no dependencies, positions in its errors); the checks after parsing are containers/image's.
 * A mistake is one line: the file, the line and what is wrong. An unknown key is warned about
 * once and ignored, as containers/image ignores it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { UsageError } from '../../core/errors.js';
import { cacheHome } from '../../core/paths.js';
import { cachedParse } from './registries-conf-cache.js';

export type PullFromMirror = 'all' | 'digest-only' | 'tag-only';
export type ShortNameMode = 'enforcing' | 'permissive' | 'disabled';

export interface Endpoint {
  /** HOST[:PORT][/NAMESPACE...]; empty only for a wildcard prefix (the reference is used as it is). */
  location: string;
  insecure: boolean;
  pullFromMirror?: PullFromMirror;
}

export interface RegistryEntry extends Endpoint {
  prefix: string;
  blocked: boolean;
  mirrorByDigestOnly: boolean;
  mirrors: Endpoint[];
  /** The file that defined it. */
  origin: string;
}

export interface RegistriesConf {
  /** Sorted by prefix, one table per prefix (the first of a file, the last file's). */
  registries: RegistryEntry[];
  searchRegistries: string[];
  /** The file that set the search list. */
  searchOrigin?: string;
  shortNameMode?: ShortNameMode;
  /** Short name → fully qualified name (no tag), with the file it came from. */
  aliases: Map<string, { value: string; origin: string }>;
  /** The files read, in order. */
  files: string[];
}

export interface LoadOptions {
  /** --registries-conf, else $CONTAINERS_REGISTRIES_CONF / $REGISTRIES_CONFIG_PATH. */
  path?: string;
  env: NodeJS.ProcessEnv;
  warn?: (message: string) => void;
  /** Where checked files are kept (registries-conf-cache.ts); default $XDG_CACHE_HOME/container-parts/registries-conf, null: none. */
  cacheDir?: string | null;
}

/** Where the configuration is read from, as containers/image decides it. */
export function registriesConfPaths(options: { path?: string; env: NodeJS.ProcessEnv; userFileExists: boolean }): { file: string; explicit: boolean; dropInDirs: string[] } {
  const env = options.env;
  const home = env.HOME || homedir();
  const userDir = join(home, '.config', 'containers', 'registries.conf.d');
  const explicit = options.path ?? env.CONTAINERS_REGISTRIES_CONF ?? env.REGISTRIES_CONFIG_PATH;
  const override = env.CONTAINERS_REGISTRIES_CONF_D?.split(':').filter((dir) => dir !== '');
  if (explicit !== undefined && explicit !== '') return { file: explicit, explicit: true, dropInDirs: override ?? ['/etc/containers/registries.conf.d', userDir] };
  // A per-user registries.conf replaces the system's, and only the per-user drop-ins go with it.
  if (options.userFileExists) return { file: join(home, '.config', 'containers', 'registries.conf'), explicit: false, dropInDirs: override ?? [userDir] };
  return { file: '/etc/containers/registries.conf', explicit: false, dropInDirs: override ?? ['/etc/containers/registries.conf.d', userDir] };
}

/**
 * The configuration a command uses. Read synchronously (a few small files, at start-up, before
 * anything else can run); each file's checked settings come from the cache when its text is
 * the same as when it was cached.
 */
export async function loadRegistriesConf(options: LoadOptions): Promise<RegistriesConf> {
  const home = options.env.HOME || homedir();
  const userFileExists = readText(join(home, '.config', 'containers', 'registries.conf')) !== undefined;
  const paths = registriesConfPaths({ path: options.path, env: options.env, userFileExists });
  const conf: RegistriesConf = { registries: [], searchRegistries: [], aliases: new Map(), files: [] };
  const main = readText(paths.file);
  if (main === undefined && paths.explicit) throw new UsageError(`${paths.file}: no such registries.conf`);
  const warned = new Set<string>();
  const warn = (message: string) => {
    if (!warned.has(message)) options.warn?.(message);
    warned.add(message);
  };
  const cacheDir = options.cacheDir === null ? undefined : (options.cacheDir ?? join(cacheHome(options.env), 'container-parts', 'registries-conf'));
  const read = (text: string, file: string, dropIn: boolean) =>
    mergeInto(conf, cachedParse(text, file, { dir: cacheDir, parserModule: import.meta.url, dropIn, warn }, (w) => parseRegistriesConf(text, file, { dropIn, warn: w })));
  if (main !== undefined) read(main, paths.file, false);
  for (const file of dropInFiles(paths.dropInDirs)) {
    const text = readText(file);
    if (text !== undefined) read(text, file, true);
  }
  return conf;
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** The *.conf files of each directory in name order (no subdirectories), directory by directory. */
function dropInFiles(dirs: string[]): string[] {
  const files: string[] = [];
  for (const dir of dirs) {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    files.push(...entries.filter((e) => !e.isDirectory() && e.name.endsWith('.conf')).map((e) => join(dir, e.name)).sort());
  }
  return files;
}

/** One file's settings; `undefined` fields were not set in it. */
export interface ConfFile {
  file: string;
  registries: RegistryEntry[];
  searchRegistries?: string[];
  shortNameMode?: ShortNameMode;
  aliases: Map<string, string>;
}

function mergeInto(conf: RegistriesConf, file: ConfFile): void {
  conf.files.push(file.file);
  const byPrefix = new Map(conf.registries.map((r) => [r.prefix, r]));
  for (const entry of file.registries) byPrefix.set(entry.prefix, entry);
  conf.registries = [...byPrefix.values()].sort((a, b) => (a.prefix < b.prefix ? -1 : a.prefix > b.prefix ? 1 : 0));
  if (file.searchRegistries) {
    conf.searchRegistries = file.searchRegistries;
    conf.searchOrigin = file.file;
  }
  if (file.shortNameMode) conf.shortNameMode = file.shortNameMode;
  for (const [name, value] of file.aliases) {
    // An empty value erases the alias an earlier file set.
    if (value === '') conf.aliases.delete(name);
    else conf.aliases.set(name, { value, origin: file.file });
  }
}

const TOP_KEYS = new Set(['unqualified-search-registries', 'short-name-mode', 'credential-helpers', 'additional-layer-store-auth-helper', 'registry', 'aliases', 'registries']);
const REGISTRY_KEYS = new Set(['prefix', 'location', 'insecure', 'blocked', 'mirror-by-digest-only', 'mirror', 'pull-from-mirror']);
const MIRROR_KEYS = new Set(['location', 'insecure', 'pull-from-mirror']);
const V1_KEYS = new Set(['search', 'insecure', 'block']);

/** Parses and checks one file. Throws a UsageError `FILE:LINE: what is wrong`. */
export function parseRegistriesConf(text: string, file: string, options: { dropIn: boolean; warn: (message: string) => void }): ConfFile {
  // Loaded on first use: a command that reads no registries.conf does not pay for the parser.
  const toml = createRequire(import.meta.url)('smol-toml') as typeof import('smol-toml');
  let doc: Record<string, unknown>;
  try {
    doc = toml.parse(text) as Record<string, unknown>;
  } catch (err) {
    if (err instanceof toml.TomlError) throw new UsageError(`${file}:${err.line}: ${err.message.split('\n')[0]?.replace(/^Invalid TOML document: /, '')}`);
    throw err;
  }
  const check = new Checker(text, file, options.warn);
  check.unknownKeys(doc, TOP_KEYS, '');
  const v1 = doc.registries !== undefined ? convertV1(check, doc.registries) : undefined;
  const v2Set = ['registry', 'unqualified-search-registries', 'short-name-mode', 'aliases'].some((k) => doc[k] !== undefined);
  if (v1 && options.dropIn) check.fail('registries', 'a drop-in must be in the v2 format ([[registry]] tables), not [registries.search/insecure/block]');
  if (v1 && v2Set) check.fail('registries', 'mixes the v1 format ([registries.search/insecure/block]) with v2 settings; use one');
  const registries = v1?.registries ?? check.array(doc.registry, 'registry').map((raw, i) => registryEntry(check, raw, `registry[${i}]`));
  checkConflicts(check, registries);
  const searchRegistries = v1 ? v1.search : doc['unqualified-search-registries'] === undefined ? undefined : searchList(check, doc['unqualified-search-registries']);
  const mode = check.optionalString(doc['short-name-mode'], 'short-name-mode');
  if (mode !== undefined && mode !== 'enforcing' && mode !== 'permissive' && mode !== 'disabled') check.fail('short-name-mode', `short-name-mode "${mode}" is not enforcing, permissive or disabled`);
  return { file, registries: firstPerPrefix(registries), searchRegistries, shortNameMode: mode as ShortNameMode | undefined, aliases: aliasTable(check, doc.aliases) };
}

/** Errors and warnings that name the file and the line a setting is on. */
class Checker {
  private readonly lines: Map<string, number>;

  constructor(text: string, readonly file: string, private readonly warnTo: (message: string) => void) {
    this.lines = keyLines(text);
  }

  fail(path: string, message: string): never {
    throw new UsageError(`${this.file}${this.lineSuffix(path)}: ${message}`);
  }

  warn(path: string, message: string): void {
    this.warnTo(`${this.file}${this.lineSuffix(path)}: ${message}`);
  }

  /** The line of the setting at `path`, else of the nearest table around it. */
  private lineSuffix(path: string): string {
    for (let p = path; ; ) {
      const line = this.lines.get(p);
      if (line !== undefined) return `:${line}`;
      const outer = p.replace(/(\.[^.[\]]+|\[\d+\])$/, '');
      if (outer === p || outer === '') return '';
      p = outer;
    }
  }

  unknownKeys(table: Record<string, unknown>, known: Set<string>, path: string): void {
    for (const key of Object.keys(table)) if (!known.has(key)) this.warn(`${path}${path ? '.' : ''}${key}`, `unknown key "${key}" (ignored)`);
  }

  table(value: unknown, path: string): Record<string, unknown> {
    if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Date) this.fail(path, `${lastKey(path)} must be a table`);
    return value as Record<string, unknown>;
  }

  array(value: unknown, path: string): unknown[] {
    if (value === undefined) return [];
    if (!Array.isArray(value)) this.fail(path, `${lastKey(path)} must be an array${path.endsWith('mirror') || path === 'registry' ? ` ([[${path.replace(/\[\d+\]/g, '')}]] tables)` : ''}`);
    return value;
  }

  optionalString(value: unknown, path: string): string | undefined {
    if (value !== undefined && typeof value !== 'string') this.fail(path, `${lastKey(path)} must be a string, not ${describeValue(value)}`);
    return value;
  }

  bool(value: unknown, path: string): boolean {
    if (value !== undefined && typeof value !== 'boolean') this.fail(path, `${lastKey(path)} must be true or false, not ${describeValue(value)}`);
    return value ?? false;
  }

  strings(value: unknown, path: string): string[] {
    const list = this.array(value, path);
    list.forEach((item, i) => this.optionalString(item, `${path}[${i}]`));
    return list as string[];
  }
}

function lastKey(path: string): string {
  return path.replace(/\[\d+\]$/, '').split('.').pop() as string;
}

function describeValue(value: unknown): string {
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object' && value !== null) return 'a table';
  return JSON.stringify(value);
}

/**
 * The line of each key and table header, by its path (`registry[0].mirror[1].location`,
 * `aliases.busybox`): TOML values carry no positions, so the lines are found again in the text.
 */
export function keyLines(text: string): Map<string, number> {
  const lines = new Map<string, number>();
  const counts = new Map<string, number>();
  let table = '';
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    const header = /^(\[\[?)\s*([^\]]+?)\s*\]\]?/.exec(line);
    if (header) {
      const name = (header[2] as string).replace(/\s*\.\s*/g, '.').replace(/"/g, '');
      table = header[1] === '[[' ? arrayTablePath(name, counts) : name;
      // `[registries.search]` also opens `registries`: a setting there is found at its first line.
      table.split('.').forEach((_, j, parts) => {
        const outer = parts.slice(0, j + 1).join('.');
        if (!lines.has(outer)) lines.set(outer, i + 1);
      });
      return;
    }
    const key = /^("(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_.-]+)\s*=/.exec(line);
    if (!key) return;
    const path = `${table}${table ? '.' : ''}${(key[1] as string).replace(/^["']|["']$/g, '')}`;
    if (!lines.has(path)) lines.set(path, i + 1);
  });
  return lines;
}

/** `registry.mirror` → `registry[2].mirror[0]`: the index of each array of tables, as far as it goes. */
function arrayTablePath(name: string, counts: Map<string, number>): string {
  const parts = name.split('.');
  let path = '';
  parts.forEach((part, i) => {
    const base = `${path}${path ? '.' : ''}${part}`;
    if (i === parts.length - 1) {
      const n = counts.get(base) ?? 0;
      counts.set(base, n + 1);
      path = `${base}[${n}]`;
    } else {
      path = `${base}[${Math.max(0, (counts.get(base) ?? 1) - 1)}]`;
    }
  });
  return path;
}

/** containers/image's parseLocation: no trailing slashes, no URL scheme. */
function location(check: Checker, value: unknown, path: string): string {
  const text = (check.optionalString(value, path) ?? '').replace(/\/+$/, '');
  if (/^https?:\/\//.test(text)) check.fail(path, `${lastKey(path)} "${value as string}": give HOST[:PORT][/NAMESPACE], without http:// or https:// (insecure = true allows plain HTTP)`);
  return text;
}

function registryEntry(check: Checker, raw: unknown, path: string): RegistryEntry {
  const table = check.table(raw, path);
  check.unknownKeys(table, REGISTRY_KEYS, path);
  const loc = location(check, table.location, `${path}.location`);
  let prefix = location(check, table.prefix, `${path}.prefix`);
  if (prefix === '' && loc === '') check.fail(path, 'a [[registry]] needs a location or a prefix');
  if (prefix === '') prefix = loc;
  const wildcard = prefix.startsWith('*.');
  if (wildcard && /[/@:]/.test(prefix)) check.fail(`${path}.prefix`, `wildcard prefix "${prefix}" must be *.DOMAIN alone (no port, namespace, tag or digest)`);
  if (!wildcard && loc === '') check.fail(path, `location is unset and prefix "${prefix}" is not a wildcard (*.example.com)`);
  if (table['pull-from-mirror'] !== undefined) check.fail(`${path}.pull-from-mirror`, `pull-from-mirror belongs in a [[registry.mirror]] table, not in the registry "${prefix}"`);
  const mirrorByDigestOnly = check.bool(table['mirror-by-digest-only'], `${path}.mirror-by-digest-only`);
  const mirrors = check.array(table.mirror, `${path}.mirror`).map((m, j) => mirrorEntry(check, m, `${path}.mirror[${j}]`, mirrorByDigestOnly));
  return { prefix, location: loc, insecure: check.bool(table.insecure, `${path}.insecure`), blocked: check.bool(table.blocked, `${path}.blocked`), mirrorByDigestOnly, mirrors, origin: check.file };
}

function mirrorEntry(check: Checker, raw: unknown, path: string, registryDigestOnly: boolean): Endpoint {
  const table = check.table(raw, path);
  check.unknownKeys(table, MIRROR_KEYS, path);
  const loc = location(check, table.location, `${path}.location`);
  if (loc === '') check.fail(path, 'a [[registry.mirror]] needs a location');
  const mode = check.optionalString(table['pull-from-mirror'], `${path}.pull-from-mirror`);
  if (mode !== undefined && mode !== '' && mode !== 'all' && mode !== 'digest-only' && mode !== 'tag-only') check.fail(`${path}.pull-from-mirror`, `pull-from-mirror "${mode}" is not all, digest-only or tag-only`);
  if (mode && registryDigestOnly) check.fail(`${path}.pull-from-mirror`, 'pull-from-mirror cannot be set when the registry has mirror-by-digest-only');
  return { location: loc, insecure: check.bool(table.insecure, `${path}.insecure`), ...(mode ? { pullFromMirror: mode as PullFromMirror } : {}) };
}

/** One registry named twice must not be both secure and insecure, or blocked and not. */
function checkConflicts(check: Checker, registries: RegistryEntry[]): void {
  registries.forEach((entry, i) => {
    const key = entry.location || entry.prefix;
    const other = registries.find((o) => (o.location || o.prefix) === key && (o.insecure !== entry.insecure || o.blocked !== entry.blocked));
    if (other) check.fail(`registry[${i}]`, `registry "${key}" is defined more than once with conflicting ${other.insecure !== entry.insecure ? 'insecure' : 'blocked'} settings`);
  });
}

/** The first table of each prefix wins within a file (containers/image ignores the later ones). */
function firstPerPrefix(registries: RegistryEntry[]): RegistryEntry[] {
  return registries.filter((entry, i) => registries.findIndex((o) => o.prefix === entry.prefix) === i);
}

const DOMAIN = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?$|^\[[0-9a-fA-F:]+\](?::[0-9]+)?$/;

function searchList(check: Checker, value: unknown): string[] {
  return check.strings(value, 'unqualified-search-registries').map((raw, i) => {
    const registry = location(check, raw, `unqualified-search-registries[${i}]`);
    if (!DOMAIN.test(registry)) check.fail('unqualified-search-registries', `"${raw}" in unqualified-search-registries is not HOST[:PORT]`);
    return registry;
  });
}

const SHORT_NAME = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;

/** [aliases]: short name (no registry, tag or digest) → fully qualified name (no tag or digest), or "" to erase. */
function aliasTable(check: Checker, value: unknown): Map<string, string> {
  const aliases = new Map<string, string>();
  if (value === undefined) return aliases;
  for (const [name, target] of Object.entries(check.table(value, 'aliases'))) {
    const path = `aliases.${name}`;
    const text = check.optionalString(target, path) as string;
    const first = name.split('/')[0] as string;
    if (!SHORT_NAME.test(name) || (name.includes('/') && (/[.:]/.test(first) || first === 'localhost'))) check.fail(path, `alias "${name}" must be a short name (no registry, tag or digest)`);
    const host = text.split('/')[0] as string;
    if (text !== '' && (!text.includes('/') || !(/[.:]/.test(host) || host === 'localhost'))) check.fail(path, `alias "${name}" = "${text}" must name a registry and a repository`);
    if (text !== '' && (text.includes('@') || /:[^/]*$/.test(text.slice(host.length)))) check.fail(path, `alias "${name}" = "${text}" must not have a tag or digest`);
    aliases.set(name, text);
  }
  return aliases;
}

/** The v1 format: [registries.search], [registries.insecure], [registries.block], each `registries = [...]`. */
function convertV1(check: Checker, value: unknown): { registries: RegistryEntry[]; search: string[] } | undefined {
  const v1 = check.table(value, 'registries');
  check.unknownKeys(v1, V1_KEYS, 'registries');
  const list = (kind: string) => (v1[kind] === undefined ? [] : check.strings(check.table(v1[kind], `registries.${kind}`).registries, `registries.${kind}.registries`));
  const entries = new Map<string, RegistryEntry>();
  const entry = (raw: string, path: string) => {
    const loc = location(check, raw, path);
    if (!entries.has(loc)) entries.set(loc, { prefix: loc, location: loc, insecure: false, blocked: false, mirrorByDigestOnly: false, mirrors: [], origin: check.file });
    return entries.get(loc) as RegistryEntry;
  };
  list('block').forEach((r) => (entry(r, 'registries.block').blocked = true));
  list('insecure').forEach((r) => (entry(r, 'registries.insecure').insecure = true));
  const search = list('search');
  if (entries.size === 0 && search.length === 0) return undefined;
  return { registries: [...entries.values()], search };
}
