/**
 * Where the toolkit keeps things by default. Per-user (XDG), so the same commands work for
 * root and for a rootless user without touching a root-only path.
 */
import { readdirSync, realpathSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export function dataHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env.XDG_DATA_HOME && env.XDG_DATA_HOME.startsWith('/')) return env.XDG_DATA_HOME;
  return join(env.HOME || homedir(), '.local', 'share');
}

/** $XDG_CACHE_HOME, else ~/.cache: what can be made again (compiled seccomp filters). */
export function cacheHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env.XDG_CACHE_HOME && env.XDG_CACHE_HOME.startsWith('/')) return env.XDG_CACHE_HOME;
  return join(env.HOME || homedir(), '.cache');
}

/** The shared OCI image layout: $CONTAINER_PARTS_STORE, else $XDG_DATA_HOME/container-parts/store. */
export function defaultStorePath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.CONTAINER_PARTS_STORE) return resolve(env.CONTAINER_PARTS_STORE);
  return join(dataHome(env), 'container-parts', 'store');
}

export function resolveStorePath(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return flag ? resolve(flag) : defaultStorePath(env);
}

/**
 * A path in the build output (dist/), from any module of it. The modules run from dist/lib/...
 * (tsc's output) or bundled into dist/bin/ (what the commands run): the nearest ancestor named
 * dist is the same for both, whatever the depth of the file. `..` from there is the checkout.
 */
export function distPath(moduleUrl: string, ...parts: string[]): string {
  let dir = dirname(fileURLToPath(moduleUrl));
  while (basename(dir) !== 'dist' && dirname(dir) !== dir) dir = dirname(dir);
  return join(dir, ...parts);
}

/** The real path (symlinks resolved), or the path made absolute when it does not exist. */
export function realPathOrResolved(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return resolve(path);
  }
}

/** The names in a directory; none when it does not exist or cannot be read. */
export function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
