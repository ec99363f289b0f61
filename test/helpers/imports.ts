/**
 * Reads the imports of the project's TypeScript sources, and checks them against the
 * architecture: which folder of lib/ may import which (lib/README.md). Every form counts:
 * `import`/`export … from`, `import type`, side-effect imports, dynamic `import()` and
 * `createRequire(…)('pkg')`, so a lazy import cannot hide a dependency.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';

export interface Import {
  /** The importing file, relative to the repository (lib/image/fetch.ts). */
  from: string;
  /** A project file relative to the repository (lib/core/errors.ts), or `package:NAME`. */
  to: string;
  dynamic: boolean;
}

/** The folders of lib/, and the folders each may import besides itself. */
export const ALLOWED: Record<string, readonly string[]> = {
  core: [],
  image: ['core'],
  layer: ['core', 'image'],
  mount: ['core', 'image'],
  run: ['core', 'image', 'layer', 'mount'],
  runtime: ['core', 'image', 'layer', 'mount', 'run'],
  cli: ['core', 'image', 'layer', 'mount', 'run', 'runtime'],
};

/** Packages only one place may load: the module (or folder/) that owns the concern. */
export const PACKAGE_OWNERS: Record<string, string> = {
  ajv: 'lib/core/schema.ts',
  yargs: 'lib/cli/',
};

const PATTERNS: Array<{ re: RegExp; dynamic: boolean }> = [
  { re: /^\s*(?:import|export)\s[^;]*?\sfrom\s+['"]([^'"]+)['"]/gm, dynamic: false },
  { re: /^\s*import\s+['"]([^'"]+)['"]/gm, dynamic: false },
  { re: /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g, dynamic: true },
  { re: /\)\(\s*['"]([^'"]+)['"]\s*\)/g, dynamic: true },
];

/** The imports of one source text (comments are not removed: an import in a comment is still a statement of intent, and there are none). */
export function importsOf(file: string, source: string): Import[] {
  const found: Import[] = [];
  for (const { re, dynamic } of PATTERNS) {
    for (const match of source.matchAll(re)) {
      const specifier = match[1] as string;
      const to = specifier.startsWith('.')
        ? normalize(join(dirname(file), specifier)).replace(/\.js$/, '.ts')
        : `package:${specifier.replace(/^node:/, 'node:').split('/').slice(0, specifier.startsWith('@') ? 2 : 1).join('/')}`;
      found.push({ from: file, to, dynamic });
    }
  }
  return found;
}

/** lib/image/store/cas.ts → image; anything outside lib/ → undefined. */
export function folderOf(file: string): string | undefined {
  const parts = file.split('/');
  return parts[0] === 'lib' && parts.length > 2 ? parts[1] : undefined;
}

/** Every rule an import breaks, as one line each. */
export function violations(imports: Import[]): string[] {
  const found: string[] = [];
  for (const { from, to, dynamic } of imports) {
    const how = dynamic ? 'imports (dynamically)' : 'imports';
    if (to.startsWith('package:')) {
      const owner = PACKAGE_OWNERS[to.slice('package:'.length)];
      if (owner && from.startsWith('lib/') && !(owner.endsWith('/') ? from.startsWith(owner) : from === owner)) found.push(`${from} ${how} ${to}: only ${owner} may`);
      continue;
    }
    const source = folderOf(from);
    if (!from.startsWith('lib/')) continue;
    if (source === undefined) { found.push(`${from}: every module of lib/ is in a folder`); continue; }
    if (to.startsWith('tools/')) { found.push(`${from} ${how} ${to}: lib never imports a command`); continue; }
    const target = folderOf(to);
    if (target === undefined || target === source) continue;
    const allowed = ALLOWED[source];
    if (!allowed) found.push(`${from}: lib/${source} is not a folder of the architecture (lib/README.md)`);
    else if (!allowed.includes(target)) found.push(`${from} ${how} ${to}: lib/${source} may import only ${[source, ...allowed].join(', ')}`);
  }
  return found;
}

/** The .ts files under `dir` (relative to `repo`), recursively. */
export function sourceFiles(repo: string, dir: string): string[] {
  const out: string[] = [];
  const walk = (path: string) => {
    for (const name of readdirSync(path)) {
      const full = join(path, name);
      if (statSync(full).isDirectory()) walk(full);
      else if (name.endsWith('.ts')) out.push(relative(repo, full));
    }
  };
  walk(join(repo, dir));
  return out.sort();
}

export function importsOfFiles(repo: string, files: string[]): Import[] {
  return files.flatMap((file) => importsOf(file, readFileSync(join(repo, file), 'utf8')));
}

/** The project files a module loads when it starts: static, non-type imports, followed through the compiled JavaScript (type-only imports are gone there). */
export function loadPath(dist: string, entry: string): Set<string> {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const source = readFileSync(join(dist, file), 'utf8');
    for (const { to, dynamic } of importsOf(file, source)) {
      if (dynamic) continue;
      if (to.startsWith('package:')) seen.add(to);
      else visit(to.replace(/\.ts$/, '.js'));
    }
  };
  visit(entry);
  return seen;
}
