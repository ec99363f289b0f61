/**
 * The config's hooks (runtime-spec config.md, POSIX-platform Hooks), each run with the
 * container's state as JSON on its stdin, its own args (args[0] is argv[0]) and exactly its
 * own env, killed after its timeout. Where each runs: prestart, createRuntime, poststart and
 * poststop on the host (the runtime namespace); createContainer in the container's namespaces
 * but the host's file system (bwrap has already made the container's root when it waits, so
 * "before pivot_root" is served by joining every namespace but the mount one: the path still
 * resolves on the host); startContainer in all of them, mount namespace and root included.
 * The joins are util-linux nsenter, as for the sysctls (lib/run/sysctl.ts).
 */
import { spawn } from 'node:child_process';
import { findProgram } from '../core/host.js';
import { ContainerPartsError } from '../core/errors.js';
import type { RuntimeConfig } from '../run/runtime-spec.js';
import type { OciState } from './state.js';

export type HookName = 'prestart' | 'createRuntime' | 'createContainer' | 'startContainer' | 'poststart' | 'poststop';

export interface Hook {
  path: string;
  args?: string[];
  env?: string[];
  timeout?: number;
}

/** A hook that failed: the lifecycle step that ran it fails (poststop's only warn). */
export class HookError extends ContainerPartsError {}

/** Where a hook runs: on the host, or joined to the container's first process (`pid`), with or without its mount namespace. */
type Place = { kind: 'host' } | { kind: 'container'; pid: number; mount: boolean; user: boolean };

export function hooksOf(config: RuntimeConfig, name: HookName): Hook[] {
  return ((config as { hooks?: Partial<Record<HookName, Hook[]>> }).hooks?.[name] ?? []);
}

/** Runs the hooks of `name` in order; the first that fails stops them with a HookError naming it. */
export async function runHooks(config: RuntimeConfig, name: HookName, state: OciState): Promise<void> {
  const hooks = hooksOf(config, name);
  if (hooks.length === 0) return;
  const user = (config.linux?.namespaces ?? []).some((ns) => ns.type === 'user');
  const place: Place = name === 'createContainer' || name === 'startContainer' ? { kind: 'container', pid: state.pid, mount: name === 'startContainer', user } : { kind: 'host' };
  for (const [index, hook] of hooks.entries()) await runHook(hook, { name: `hooks.${name}[${index}]`, state, place });
}

/** Runs the poststop hooks; a failure is a warning, and the rest still run (runtime.md, step 13). */
export async function runPoststopHooks(config: RuntimeConfig, state: OciState, warn: (message: string) => void): Promise<void> {
  for (const [index, hook] of hooksOf(config, 'poststop').entries()) {
    try {
      await runHook(hook, { name: `hooks.poststop[${index}]`, state, place: { kind: 'host' } });
    } catch (err) {
      warn((err as Error).message);
    }
  }
}

/** The argv that runs the hook where it belongs. */
function hookArgv(hook: Hook, place: Place): { program: string; args: string[]; argv0: string } {
  const argv0 = hook.args?.[0] ?? hook.path;
  const rest = hook.args?.slice(1) ?? [];
  if (place.kind === 'host') return { program: hook.path, args: rest, argv0 };
  const joins = ['--net', '--ipc', '--uts', '--pid', '--cgroup', ...(place.user ? ['--user', '--preserve-credentials'] : []), ...(place.mount ? ['--mount', '--root', '--wd'] : [])];
  return { program: findProgram('nsenter'), args: ['--target', String(place.pid), ...joins, '--', hook.path, ...rest], argv0: 'nsenter' };
}

function runHook(hook: Hook, context: { name: string; state: OciState; place: Place }): Promise<void> {
  const { program, args, argv0 } = hookArgv(hook, context.place);
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { argv0, env: envOf(hook.env ?? []), stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    let timedOut = false;
    const timer = hook.timeout && hook.timeout > 0 ? setTimeout(() => ((timedOut = true), child.kill('SIGKILL')), hook.timeout * 1000) : undefined;
    child.stderr?.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString('utf8')).slice(-2000)));
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(JSON.stringify(context.state));
    child.on('error', (err) => {
      if (timer) clearTimeout(timer);
      reject(new HookError(`${context.name}: cannot run ${hook.path}: ${(err as NodeJS.ErrnoException).code ?? err.message}`));
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      if (code === 0) return resolve();
      const why = timedOut ? `timed out after ${hook.timeout} s` : signal ? `killed by ${signal}` : `exited ${code}`;
      const said = stderr.trim().split('\n').pop();
      reject(new HookError(`${context.name}: ${hook.path} ${why}${said ? `: ${said}` : ''}`));
    });
  });
}

/** A hook's env, exactly as given (NAME=VALUE entries). */
function envOf(entries: string[]): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const entry of entries) {
    const eq = entry.indexOf('=');
    if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return env;
}
