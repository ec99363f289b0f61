/** Running a command in-process (runCommand) on strings: stdin from `input`, stdout and stderr collected. */
import { Readable, Writable } from 'node:stream';
import { defineCommand, type CommandSpec, type Io, type RunContext } from '../../lib/cli/command.js';

export type MemoryIo = Io & { out: () => string; err: () => string };

/** `stdinIsPipe`: stdin is a pipe (an empty one means the stage before failed), else like /dev/null. */
export function memoryIo(input: string, stdinIsPipe = false, env: NodeJS.ProcessEnv = {}): MemoryIo {
  let out = '';
  let err = '';
  const stdin = Readable.from([Buffer.from(input)]) as Readable & { isTTY?: boolean };
  const stdout = new Writable({ write: (c, _e, cb) => ((out += c.toString()), cb()) });
  const stderr = new Writable({ write: (c, _e, cb) => ((err += c.toString()), cb()) });
  return { stdin, stdinIsPipe, stdout, stderr, env, out: () => out, err: () => err };
}

/** A command with no options of its own that does `run`. */
export function testCommand(name: string, run: (ctx: RunContext) => Promise<void>): CommandSpec<object> {
  return defineCommand({ name, purpose: 'test command', usage: '$0', examples: [], options: (y) => y, run: (_args, ctx) => run(ctx) });
}
