/** Running the real commands (and the oracles: skopeo, umoci, runc) as child processes. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { toolPath } from './paths.js';

export interface ExecResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  input?: string | Buffer;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  timeoutMs?: number;
}

/**
 * Runs a program to completion; stdin is a pipe that gets `input`, or /dev/null without one (no
 * document: an empty pipe would say that the stage before failed).
 */
export function exec(program: string, args: string[], options: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, ...options.env };
    delete env.NODE_EXTRA_CA_CERTS;
    const child = spawn(program, args, { env, cwd: options.cwd, stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout?.on('data', (c: Buffer) => stdout.push(c));
    child.stderr?.on('data', (c: Buffer) => stderr.push(c));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8') });
    });
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(options.input);
  });
}

/** Runs one of our commands, as users run it (test/helpers/paths.ts toolPath). */
export function tool(name: string, args: string[], options: ExecOptions = {}): Promise<ExecResult> {
  return exec(process.execPath, [toolPath(name), ...args], options);
}

/** Runs a program and fails with its stderr when it does not exit 0. */
export async function mustExec(program: string, args: string[], options: ExecOptions = {}): Promise<string> {
  const result = await exec(program, args, options);
  if (result.status !== 0) throw new Error(`${program} ${args.join(' ')} exited ${result.status ?? result.signal}: ${result.stderr.trim()}`);
  return result.stdout;
}

/** The one-line error contract: exit `status`, one line on stderr (`<command>: …`) matching `pattern`, nothing on stdout. */
export function assertOneLineError(result: ExecResult, command: string, status: number, pattern: RegExp): void {
  assert.equal(result.status, status, `exit status (stderr: ${result.stderr})`);
  assert.equal(result.stdout, '');
  assert.match(result.stderr, new RegExp(`^${command}: [^\\n]*\\n$`), 'one line on stderr');
  assert.match(result.stderr, pattern);
}
