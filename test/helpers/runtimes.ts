/**
 * oci-runtime and runc side by side: the same bundle, each with a state dir of its own, the
 * same commands. Whatever a test creates is force-deleted by `cleanup`, also when it failed.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { closeSync, openSync, readFileSync, rmSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { mustExec, type ExecResult } from './exec.js';
import { toolPath } from './paths.js';
import type { RuntimeConfig } from '../../lib/run/runtime-spec.js';

export interface ExecOptions {
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

let outputs = 0;

/**
 * Runs a runtime command with its stdout and stderr in files: a created container inherits
 * them (they are its stdio, as under runc), so a pipe would stay open as long as it runs. The
 * command is done when it exits; stdin is /dev/null.
 */
function runtimeExec(program: string, args: string[], options: ExecOptions & { dir: string }): Promise<ExecResult> {
  const files = ['out', 'err'].map((s) => join(options.dir, `.${process.pid}-${outputs}.${s}`));
  outputs += 1;
  const fds = files.map((f) => openSync(f, 'w'));
  return new Promise((resolve, reject) => {
    const env = { ...process.env, ...options.env };
    delete env.NODE_EXTRA_CA_CERTS;
    const child = spawn(program, args, { env, stdio: ['ignore', fds[0] as number, fds[1] as number] });
    for (const fd of fds) closeSync(fd);
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('exit', (status, signal) => {
      clearTimeout(timer);
      const [stdout, stderr] = files.map((f) => readFileSync(f, 'utf8'));
      for (const f of files) rmSync(f, { force: true });
      resolve({ status, signal, stdout: stdout as string, stderr: stderr as string });
    });
  });
}

export interface Runtime {
  name: 'oci-runtime' | 'runc';
  root: string;
  run(args: string[], options?: ExecOptions): Promise<ExecResult>;
}

export function runtimes(work: string): Runtime[] {
  const ours: Runtime = { name: 'oci-runtime', root: join(work, 'root-ours'), run: (args, options) => runtimeExec(process.execPath, [toolPath('oci-runtime'), '--root', ours.root, ...args], { ...options, dir: work }) };
  const runc: Runtime = { name: 'runc', root: join(work, 'root-runc'), run: (args, options) => runtimeExec('runc', ['--root', runc.root, ...args], { ...options, dir: work }) };
  return [ours, runc];
}

/** A bundle like `runc spec`'s, on the busybox rootfs (read-only: shared by every bundle), running `args`. */
export async function writeBundle(dir: string, rootfs: string, args: string[], change: (config: RuntimeConfig) => void = () => undefined): Promise<string> {
  await mkdir(dir, { recursive: true });
  await mustExec('runc', ['spec', '--bundle', dir]);
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as RuntimeConfig;
  config.root = { path: rootfs, readonly: true };
  const proc = config.process as NonNullable<RuntimeConfig['process']>;
  proc.terminal = false;
  proc.args = args;
  change(config);
  await writeFile(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  return dir;
}

/** The state JSON of `id`, or undefined when `state` fails. */
export async function stateOf(runtime: Runtime, id: string): Promise<Record<string, unknown> | undefined> {
  const result = await runtime.run(['state', id]);
  return result.status === 0 ? (JSON.parse(result.stdout) as Record<string, unknown>) : undefined;
}

/** Polls `state` until the status is `status` (10 s at most). */
export async function waitForStatus(runtime: Runtime, id: string, status: string): Promise<Record<string, unknown> | undefined> {
  for (let i = 0; i < 200; i++) {
    const state = await stateOf(runtime, id);
    if (state?.status === status) return state;
    await new Promise((r) => setTimeout(r, 50));
  }
  return stateOf(runtime, id);
}

/** Kills and deletes every container of the runtime's state dir. */
export async function cleanup(runtime: Runtime): Promise<void> {
  const list = await runtime.run(['list', '-q']);
  for (const id of list.stdout.split('\n').filter(Boolean)) await runtime.run(['delete', '--force', id]);
}
