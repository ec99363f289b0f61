/**
 * A sandbox for containment tests: a directory holding a root to unpack into and, beside
 * it, host content a hostile layer would like to reach. `snapshot()` describes everything
 * in the sandbox outside the roots (names, types, modes, owners, contents, link targets,
 * mtimes), so "nothing outside the root changed" is one deepEqual of two snapshots.
 */
import { lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';

/** Host files a breach would change: names a random layer also uses (a, b, victim). */
export function populateOutside(outside: string): void {
  mkdirSync(`${outside}/a/b`, { recursive: true });
  mkdirSync(`${outside}/dir`);
  for (const name of ['victim', 'a/victim', 'a/b/victim', 'dir/victim', 'b', 'a/c']) writeFileSync(`${outside}/${name}`, `host ${name}\n`);
  symlinkSync('victim', `${outside}/link`);
}

/** One line per path under `dir`, skipping the `exclude`d ones (absolute paths) and what is below them. */
export function snapshot(dir: string, exclude: (path: string) => boolean): string[] {
  const lines: string[] = [];
  const visit = (path: string, rel: string) => {
    if (exclude(path)) return;
    const stats = lstatSync(path);
    const kind = stats.isDirectory() ? 'dir' : stats.isSymbolicLink() ? 'symlink' : stats.isFile() ? 'file' : 'other';
    const detail = kind === 'file' ? readFileSync(path, 'utf8') : kind === 'symlink' ? readlinkSync(path) : '';
    lines.push(`${rel} ${kind} ${(stats.mode & 0o7777).toString(8)} ${stats.uid}:${stats.gid} ${stats.mtimeMs} ${JSON.stringify(detail)}`);
    if (kind === 'dir') for (const name of readdirSync(path).sort()) visit(`${path}/${name}`, `${rel}/${name}`);
  };
  visit(dir, '');
  return lines;
}
