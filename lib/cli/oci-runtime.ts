/**
 * oci-runtime's command line: runc's (the OCI runtime-tools command-line-interface.md, and
 * runc's flags where it is silent). `oci-runtime [GLOBAL FLAGS] COMMAND [FLAGS] ID [ARGS…]`:
 * as under runc, flags end at the first argument after the command, so `exec ID ls -l` runs
 * `ls -l` and `ps ID -ef` passes `-ef` to ps. `-f` is --force for delete and --format
 * elsewhere (runc's flags). The operations are lib/runtime's; this is the front.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Argv } from 'yargs';
import { recordOptions } from './argv.js';
import { withCommonOptions, type CommonArgs, type RunContext } from './command.js';
import { ContainerPartsError, UnsupportedError, UsageError } from '../core/errors.js';
export { spawnEarlySupervisor } from '../runtime/early-supervisor.js';
import { asFailure } from '../runtime/failure.js';
import { RuntimeLog, type LogFormat } from '../runtime/runtime-log.js';
import { stateRoot } from '../runtime/state.js';

export const RUNTIME_COMMANDS = ['create', 'start', 'state', 'kill', 'delete', 'run', 'exec', 'list', 'ps', 'spec'] as const;
type RuntimeCommand = (typeof RUNTIME_COMMANDS)[number];

export function runtimeOptions<T>(y: Argv<T>) {
  return y
    .option('root', { type: 'string', requiresArg: true, describe: 'The state dir (default: /run/container-parts; rootless $XDG_RUNTIME_DIR/container-parts)' })
    .option('log', { type: 'string', requiresArg: true, describe: 'Append errors and warnings to FILE (as runc --log)' })
    .option('log-format', { choices: ['text', 'json'] as const, default: 'text' as const, describe: 'The --log format: text, or json lines (podman reads them)' })
    .option('systemd-cgroup', { type: 'boolean', default: false, describe: 'Refused: cgroups are made as cgroupfs does (podman: cgroup_manager = "cgroupfs")' })
    .option('rootless', { type: 'string', describe: 'spec: a rootless config (runc spec --rootless); globally runc\'s flag, accepted (rootless is worked out from the user)' })
    .option('bundle', { type: 'string', alias: 'b', requiresArg: true, describe: 'create, run, spec: the bundle dir (default: the working directory)' })
    .option('pid-file', { type: 'string', requiresArg: true, describe: "create, run, exec: write the container's (or the process's) host pid to FILE" })
    .option('console-socket', { type: 'string', requiresArg: true, describe: 'create, run, exec: send the pty master of process.terminal to this unix socket (as runc)' })
    .option('detach', { type: 'boolean', alias: 'd', default: false, describe: 'run, exec: do not wait for the process' })
    .option('force', { type: 'boolean', default: false, describe: 'delete: kill a created or running container first (-f)' })
    .option('all', { type: 'boolean', alias: 'a', default: false, describe: 'kill: send the signal to every process of the container' })
    .option('format', { choices: ['table', 'json'] as const, default: 'table' as const, describe: 'list, ps: table or json (-f)' })
    .option('tty', { type: 'boolean', alias: 't', default: false, describe: 'exec: a new pty for the process' })
    .option('env', { type: 'string', alias: 'e', array: true, requiresArg: true, describe: 'exec: NAME=VALUE, repeatable' })
    .option('user', { type: 'string', alias: 'u', requiresArg: true, describe: 'exec: UID[:GID]' })
    .option('cwd', { type: 'string', requiresArg: true, describe: 'exec: the working directory in the container' })
    .option('process', { type: 'string', alias: 'p', requiresArg: true, describe: 'exec: a process.json (the config\'s process object) instead of the command' })
    .option('no-pivot', { type: 'boolean', default: false, describe: "runc's flag, accepted (the root is always pivoted)" })
    .option('no-new-keyring', { type: 'boolean', default: false, describe: "runc's flag, accepted (no session keyring is made)" })
    .option('preserve-fds', { type: 'number', default: 0, describe: 'create, run, exec: pass this many fds above stderr on (not supported: must be 0)' });
}

export type RuntimeArgs = CommonArgs & {
  root?: string;
  log?: string;
  logFormat: LogFormat;
  systemdCgroup: boolean;
  bundle?: string;
  pidFile?: string;
  consoleSocket?: string;
  detach: boolean;
  force: boolean;
  all: boolean;
  format: 'table' | 'json';
  tty: boolean;
  env?: string[];
  user?: string;
  cwd?: string;
  process?: string;
  preserveFds: number;
  rootless?: string;
};

/**
 * runc's argv as the shared front reads it: the command first among the flags, and what follows
 * its first argument after `--` (so no flag is read there); `-f` as delete's --force or --format.
 */
export function normalizeRuntimeArgv(argv: string[]): string[] {
  const options = recordOptions((y) => runtimeOptions(withCommonOptions(y)));
  const takesValue = new Set<string>();
  for (const [name, definition] of options ?? []) {
    if (definition.type === 'boolean') continue;
    takesValue.add(`--${name}`);
    for (const alias of [definition.alias ?? []].flat()) takesValue.add(alias.length === 1 ? `-${alias}` : `--${alias}`);
  }
  const flags: string[] = [];
  let command: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i] as string;
    if (token === '--' && command !== undefined) return [...flags, command, '--', ...argv.slice(i + 1)];
    if (!token.startsWith('-') || token === '-') {
      if (command !== undefined) return [...flags, command, '--', ...argv.slice(i).filter((t, j) => !(j === 1 && t === '--' && command === 'exec'))];
      command = token;
      continue;
    }
    flags.push(token === '-f' ? (command === 'delete' ? '--force' : '--format') : token);
    if (takesValue.has(token) && !token.includes('=') && i + 1 < argv.length) flags.push(argv[++i] as string);
  }
  return command === undefined ? flags : [...flags, command];
}

interface Invocation {
  args: RuntimeArgs;
  ctx: RunContext;
  root: string;
  log: RuntimeLog;
  /** The arguments after the command: the id first. */
  operands: string[];
}

/** Runs one runtime command; its errors are written to --log too, and are failures (exit 1). */
export async function runRuntimeCommand(args: RuntimeArgs, ctx: RunContext): Promise<number | void> {
  const log = new RuntimeLog({ file: args.log, format: args.logFormat });
  try {
    const [command, ...extra] = args._.map(String);
    if (command === undefined) throw new UsageError(`no command: give one of ${RUNTIME_COMMANDS.join(', ')}`);
    if (extra.length > 0 || !(RUNTIME_COMMANDS as readonly string[]).includes(command)) throw new UsageError(`unknown command ${JSON.stringify(command)}: give one of ${RUNTIME_COMMANDS.join(', ')}`);
    if (args.systemdCgroup) throw new UnsupportedError('--systemd-cgroup: cgroups are made as cgroupfs does (podman: cgroup_manager = "cgroupfs")');
    if (args.preserveFds !== 0) throw new UnsupportedError('--preserve-fds: passing fds on is not supported');
    const invocation = { args, ctx, root: resolve(stateRoot(args.root, ctx.io.env)), log, operands: (args['--'] ?? []).map(String) };
    return await dispatch(command as RuntimeCommand, invocation);
  } catch (err) {
    log.error(err instanceof ContainerPartsError ? err.userMessage : String((err as Error).message ?? err));
    asFailure(err);
  }
}

/**
 * Each command loads what it uses (import(): esbuild makes each a chunk of its own): a node start
 * is most of what state, start, kill or delete cost, and the executor, the schema, child_process
 * and crypto would add ~15 ms to each.
 */
function dispatch(command: RuntimeCommand, inv: Invocation): Promise<number | void> {
  const handlers: Record<RuntimeCommand, (inv: Invocation) => Promise<number | void>> = {
    create: async (i) => {
      const { createContainer } = await import('../runtime/create.js');
      await createContainer({ root: i.root, id: idOf(i, 1), bundle: i.args.bundle ?? process.cwd(), pidFile: i.args.pidFile, consoleSocket: i.args.consoleSocket, log: i.log.options });
    },
    start: async (i) => (await import('../runtime/lifecycle.js')).startContainer(i.root, idOf(i, 1)),
    state: async (i) => void i.ctx.io.stdout.write(JSON.stringify((await import('../runtime/lifecycle.js')).stateOf(i.root, idOf(i, 1)), null, 2)),
    kill: async (i) => {
      const id = idOf(i, 2);
      const [{ killContainer }, { parseSignal }] = await Promise.all([import('../runtime/lifecycle.js'), import('../runtime/signals.js')]);
      killContainer(i.root, id, parseSignal(i.operands[1] ?? 'TERM'), i.args.all);
    },
    delete: async (i) => (await import('../runtime/lifecycle.js')).deleteContainer(i.root, idOf(i, 1), { force: i.args.force, warn: (m) => warn(i, m) }),
    run: runCommandOf,
    exec: async (i) => {
      const { args } = i;
      // Loaded only for exec: it reaches the executor's plan and the helper, which the other commands do not need.
      const { execInContainer } = await import('../runtime/exec.js');
      const result = await execInContainer({ root: i.root, id: idOf(i, Infinity), args: i.operands.slice(1), tty: args.tty, env: args.env ?? [], user: args.user, cwd: args.cwd, processFile: args.process, detach: args.detach, pidFile: args.pidFile, consoleSocket: args.consoleSocket });
      for (const message of result.messages) i.ctx.io.stderr.write(`oci-runtime: ${message}\n`);
      return result.code;
    },
    list: async (i) => void i.ctx.io.stdout.write((await import('../runtime/listing.js')).listing(i.root, { format: i.args.format, quiet: i.args.quiet })),
    ps: async (i) => void i.ctx.io.stdout.write(await (await import('../runtime/listing.js')).processTable(i.root, idOf(i, Infinity), { format: i.args.format, psArgs: i.operands.slice(1) })),
    spec: async (i) => writeSpec(i),
  };
  return handlers[command](inv);
}

async function runCommandOf(i: Invocation): Promise<number | void> {
  const options = { root: i.root, id: idOf(i, 1), bundle: i.args.bundle ?? process.cwd(), pidFile: i.args.pidFile, consoleSocket: i.args.consoleSocket, log: i.log.options };
  const { createContainer, runContainerHere } = await import('../runtime/create.js');
  if (i.args.detach) {
    await createContainer(options);
    await (await import('../runtime/lifecycle.js')).startContainer(i.root, options.id);
    return;
  }
  const status = await runContainerHere(options, (m) => warn(i, m));
  for (const message of status.messages) i.ctx.io.stderr.write(`oci-runtime: ${message}\n`);
  return status.code;
}

function warn(i: Invocation, message: string): void {
  i.log.warn(message);
  i.ctx.log.warn(message);
}

/** The id, first of the operands; at most `most` operands. */
function idOf(i: Invocation, most: number): string {
  const id = i.operands[0];
  if (id === undefined || id === '') throw new UsageError('no container id given');
  if (i.operands.length > most) throw new UsageError(`unexpected argument ${JSON.stringify(i.operands[most])}`);
  return id;
}

/** spec: runc spec's config.json in the bundle dir (default: here), never over an existing one. */
async function writeSpec(i: Invocation): Promise<void> {
  if (i.operands.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(i.operands[0])}`);
  const file = join(resolve(i.args.bundle ?? process.cwd()), 'config.json');
  if (existsSync(file)) throw new ContainerPartsError(`File ${file} exists. Remove it first`);
  const { formatConfig, runcDefaultConfig } = await import('../run/spec.js');
  writeFileSync(file, formatConfig(runcDefaultConfig({ rootless: i.args.rootless !== undefined && i.args.rootless !== 'false' })), { flag: 'wx' });
}
