/**
 * The shared front for every command: composable option builders (each shared flag defined
 * once, as release-please does), the document in and out, and the one-line error contract:
 * `<command>: <message>` on stderr, exit 1 (failed) or 2 (bad input), a stack only with --debug.
 */
import { readFileSync, realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';
import type { Argv } from 'yargs';
import { parsePlainArgv, recordOptions } from './argv.js';
import { describeError, exitCodeOf, UsageError } from '../core/errors.js';
import { formatDocument, isPipe, readDocument } from './pipe.js';
import type { PipeDocument } from './document.js';
import { distPath } from '../core/paths.js';

export interface Io {
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  /** stdin is a pipe (an empty one means the stage before failed); false for a terminal, a file, /dev/null. */
  stdinIsPipe?: boolean;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  env: NodeJS.ProcessEnv;
}

export function processIo(): Io {
  return { stdin: process.stdin, stdinIsPipe: isPipe(0), stdout: process.stdout, stderr: process.stderr, env: process.env };
}

export type Verbosity = 'quiet' | 'normal' | 'verbose';

/** Messages for people: always stderr, so stdout carries only the document. */
export class Log {
  constructor(private readonly command: string, private readonly stderr: NodeJS.WritableStream, readonly verbosity: Verbosity) {}
  info(message: string): void {
    if (this.verbosity !== 'quiet') this.stderr.write(`${message}\n`);
  }
  warn(message: string): void {
    this.stderr.write(`${this.command}: warning: ${message}\n`);
  }
  debug(message: string): void {
    if (this.verbosity === 'verbose') this.stderr.write(`${this.command}: ${message}\n`);
  }
}

export interface CommonArgs {
  /** Positional arguments. */
  _: Array<string | number>;
  /** What follows `--` on the command line. */
  '--'?: Array<string | number>;
  debug: boolean;
  input?: string;
  quiet: boolean;
  verbose: boolean;
  explain: boolean;
}

export interface RunContext {
  command: string;
  io: Io;
  log: Log;
  /**
   * The piped document (or --input), validated; undefined when there is none. Read once. An
   * empty pipe means the stage before failed, and is an error, unless `inputFromFlags`: the
   * flags already name the input (img-fetch SOURCE, img-unpack --image, ovl-mount --lower),
   * so an empty stdin (a loop, a CI step) is no document.
   */
  document(options?: { inputFromFlags?: boolean }): Promise<PipeDocument | undefined>;
  /** Writes the document as one line on stdout. */
  emit(doc: PipeDocument): void;
  /**
   * Prints --explain lines: commands a reader could type, each with a short comment. Tools
   * import lib/explain.js only then: it reaches the code of every step, which a run need not load.
   */
  explain(steps: ExplainStep[]): void;
}

export interface ExplainStep {
  comment: string;
  command: string;
}

export interface CommandSpec<A> {
  name: string;
  purpose: string;
  usage: string;
  examples: Array<[command: string, description: string]>;
  options(y: Argv<CommonArgs>): Argv<A>;
  /** Short flags the command's own options take over from the common ones (podman's -v is --volume). */
  claimsShortFlags?: readonly string[];
  /** A clearer error than yargs' for a line it refuses (ns-enter: a command without `--`), or undefined. */
  explainRefusedLine?(argv: string[]): Error | undefined;
  run(args: A & CommonArgs, ctx: RunContext): Promise<number | void>;
}

export function defineCommand<A>(spec: CommandSpec<A>): CommandSpec<A> {
  return spec;
}

export const VERSION: string = JSON.parse(readFileSync(distPath(import.meta.url, '..', 'package.json'), 'utf8')).version;

/** The flags every command has. */
export function withCommonOptions(y: Argv, claimedShortFlags: readonly string[] = []): Argv<CommonArgs> {
  const short = (flag: string) => (claimedShortFlags.includes(flag) ? {} : { alias: flag });
  return (y as unknown as Argv<Pick<CommonArgs, '_' | '--'>>)
    .option('debug', { type: 'boolean', default: false, describe: 'Show stack traces and internal detail on failure' })
    .option('input', { type: 'string', describe: 'Read the pipe document from FILE instead of stdin', requiresArg: true })
    .option('quiet', { ...short('q'), type: 'boolean', default: false, describe: 'Print nothing but errors on stderr' })
    .option('verbose', { ...short('v'), type: 'boolean', default: false, describe: 'Print more detail on stderr' })
    .option('explain', { type: 'boolean', default: false, describe: 'Print the equivalent steps as commands a reader could type, and do nothing' });
}

export function withStore<T>(y: Argv<T>) {
  return y.option('store', {
    type: 'string',
    requiresArg: true,
    describe: 'The OCI image layout that holds images and layers (default: $CONTAINER_PARTS_STORE, else $XDG_DATA_HOME/container-parts/store)',
  });
}

export function withTlsVerify<T>(y: Argv<T>) {
  // No default: when not given, registries.conf's `insecure` decides per registry (as skopeo's --src-tls-verify).
  return y.option('tls-verify', {
    type: 'boolean',
    describe: 'Require HTTPS and verify certificates (the default, unless registries.conf says insecure = true for the registry); --tls-verify=false allows plain HTTP and self-signed certificates',
  });
}

/** The flags of a command that talks to registries (img-fetch, img-push), defined once; `direction` picks skopeo's name for the cert dir. */
export function withRegistryOptions<T>(y: Argv<T>, direction: 'pull' | 'push') {
  return y
    .option('creds', { type: 'string', requiresArg: true, describe: 'USERNAME:PASSWORD for the registry (default: auth.json / docker config, as skopeo)' })
    .option('retries', { type: 'number', default: 4, describe: 'Retries of a failed request (with backoff; 429 honours Retry-After)' })
    .option('cert-dir', { type: 'string', requiresArg: true, describe: `The registry's TLS files (*.crt CAs, NAME.cert/NAME.key client certificate) in DIR, instead of certs.d (skopeo's --${direction === 'pull' ? 'src' : 'dest'}-cert-dir)` })
    .option('registries-conf', { type: 'string', requiresArg: true, describe: `Read FILE as registries.conf (${direction === 'pull' ? 'mirrors, insecure, blocked, short names' : 'insecure, blocked'}; default: $CONTAINERS_REGISTRIES_CONF, else ~/.config/containers or /etc/containers)` })
    .option('timeout', { type: 'string', requiresArg: true, describe: 'Give up after this long, the whole command (like skopeo --command-timeout): 90s, 5m, 1h30m (default: no limit)' });
}

export function withProgress<T>(y: Argv<T>) {
  return y.option('progress', {
    choices: ['auto', 'plain', 'none'] as const,
    default: 'auto' as const,
    describe: 'Per-layer progress on stderr: auto (a live display on a terminal, nothing in a pipe), plain (one line per event, for CI logs), none',
  });
}

/** Builds the parser; exported through each tool so tests drive it in-process. */
export function buildParser<A>(spec: CommandSpec<A>, argv: string[]): Argv<A & CommonArgs> {
  const base = loadYargs()(argv)
    .scriptName(spec.name)
    .usage(`${spec.usage}\n\n${spec.purpose}`)
    .parserConfiguration({ 'populate--': true, 'strip-aliased': true })
    .strictOptions()
    .exitProcess(false)
    .version(VERSION)
    .help()
    .alias('help', 'h')
    .completion('completion', 'Print a bash completion script for this command')
    .wrap(Math.min(100, process.stdout.columns || 100))
    .fail((message, err) => {
      throw err ?? spec.explainRefusedLine?.(argv) ?? new UsageError(withoutCamelCaseTwins(message));
    });
  const withOptions = spec.options(withCommonOptions(base, spec.claimsShortFlags));
  for (const [command, description] of spec.examples) withOptions.example(command, description);
  return withOptions as Argv<A & CommonArgs>;
}

/** yargs names an unknown `--foo-bar` twice (foo-bar, fooBar); say it once. */
function withoutCamelCaseTwins(message: string): string {
  const match = /^Unknown arguments?: (.*)$/.exec(message);
  if (!match) return message;
  const names = (match[1] as string).split(', ');
  const dashed = new Set(names.filter((n) => n.includes('-')).map((n) => n.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())));
  const kept = names.filter((n) => !dashed.has(n));
  return `Unknown argument${kept.length > 1 ? 's' : ''}: ${kept.join(', ')}`;
}

/** yargs takes ~20 ms to load, more than some commands' work: loaded when a parser is built. */
function loadYargs(): typeof import('yargs').default {
  return createRequire(import.meta.url)('yargs') as typeof import('yargs').default;
}

/**
 * The quick reading of a plain command line (same option definitions), or undefined for yargs:
 * loading yargs costs ~40 ms, as much as some commands' whole work, and every run of a
 * pipeline pays it once per stage.
 */
function quickParse<A>(spec: CommandSpec<A>, argv: string[]): Record<string, unknown> | undefined {
  // `completion` is yargs' command, not a positional.
  if (helpOrVersionShown(argv)) return undefined;
  const options = recordOptions((y) => spec.options(withCommonOptions(y, spec.claimsShortFlags)));
  return options && parsePlainArgv(options, argv);
}

/** Runs a command to completion and returns its exit status; never throws. */
export async function runCommand<A>(spec: CommandSpec<A>, argv: string[], io: Io = processIo()): Promise<number> {
  let debug = argv.includes('--debug');
  try {
    const args = (quickParse(spec, argv) ?? (await buildParser(spec, argv).parseAsync())) as A & CommonArgs & { help?: boolean; version?: boolean };
    if (helpOrVersionShown(argv)) return 0;
    debug = args.debug;
    const log = new Log(spec.name, io.stderr, args.quiet ? 'quiet' : args.verbose ? 'verbose' : 'normal');
    let documentRead: Promise<PipeDocument | undefined> | undefined;
    const ctx: RunContext = {
      command: spec.name,
      io,
      log,
      document: (options = {}) => (documentRead ??= readDocument({ inputFile: args.input, stdin: io.stdin, stdinIsPipe: io.stdinIsPipe && !options.inputFromFlags })),
      emit: (doc) => {
        io.stdout.write(formatDocument(doc));
      },
      explain: (steps) => {
        for (const step of steps) io.stdout.write(`# ${step.comment}\n${step.command}\n`);
      },
    };
    const status = await spec.run(args, ctx);
    return typeof status === 'number' ? status : 0;
  } catch (err) {
    io.stderr.write(`${spec.name}: ${oneLine(describeError(err))}\n`);
    if (debug && err instanceof Error && err.stack) io.stderr.write(`${err.stack}\n`);
    return exitCodeOf(err);
  }
}

/**
 * The error contract is one line, whatever the input quoted in the message: a name with a
 * newline or a terminal escape in it (`img-fetch $'x\nimg-fetch: done'`) is shown escaped, so it
 * can neither add a line nor drive the terminal.
 */
export function oneLine(message: string): string {
  // eslint-disable-next-line no-control-regex
  return message.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => JSON.stringify(c).slice(1, -1).replace(/^\\u00/, '\\x'));
}

function helpOrVersionShown(argv: string[]): boolean {
  const beforeDashDash = argv.includes('--') ? argv.slice(0, argv.indexOf('--')) : argv;
  return beforeDashDash.some((a) => a === '--help' || a === '-h' || a === '--version' || a === 'completion');
}

/** The entry point of a tool's executable: run, then set the exit status. */
export function main<A>(spec: CommandSpec<A>): void {
  // A reader that stops early (`img-fetch --explain | head -1`) closes the pipe: end quietly,
  // with the status a Unix tool killed by SIGPIPE has (node ignores the signal itself).
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(128 + 13);
    throw err;
  });
  runCommand(spec, process.argv.slice(2)).then(
    (status) => {
      process.exitCode = status;
    },
    () => {
      process.exitCode = 1;
    },
  );
}

/** True when the module at `moduleUrl` is the program node was started with (also through a bin symlink). */
export function isMainModule(moduleUrl: string): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return pathToFileURL(realpathSync(script)).href === moduleUrl;
  } catch {
    return false;
  }
}
