/**
 * Reading and writing the pipe document. A command reads one document from stdin (when stdin
 * is not a terminal) or from --input FILE, validates it against the schema, and writes the
 * extended document as one line to stdout, only after it has succeeded.
 *
 * An empty pipe is not "no document": a command writes its document only when it succeeded,
 * so nothing in the pipe means the command before this one failed (and said why). Each later
 * stage says that in one line instead of blaming itself (`no image`, `no lower dirs`). No
 * document at all is a terminal, a file or /dev/null on stdin (`oci-spec </dev/null`).
 */
import { fstatSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { InputError } from '../core/errors.js';
import { firstSchemaError, validatorFor } from '../core/schema.js';
import type { PipeDocument } from './document.js';

export interface DocumentSource {
  /** --input FILE; '-' means stdin. */
  inputFile?: string;
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  /** stdin is a pipe or a socket: empty, it means the stage before failed. */
  stdinIsPipe?: boolean;
}

export const EMPTY_PIPE = 'input: the pipe is empty: the command before this one failed (its message is above); for no document, give stdin </dev/null';

/** The piped document, or undefined when there is none (a terminal, a file or /dev/null with nothing in it). */
export async function readDocument(source: DocumentSource): Promise<PipeDocument | undefined> {
  const fromFile = source.inputFile !== undefined && source.inputFile !== '-';
  if (!fromFile && source.stdin.isTTY) return undefined;
  const text = fromFile ? await readInputFile(source.inputFile as string) : await readAll(source.stdin);
  if (text.trim() === '') {
    if (fromFile) throw new InputError(`input: ${source.inputFile} is empty`);
    if (source.stdinIsPipe) throw new InputError(EMPTY_PIPE);
    return undefined;
  }
  return parseDocument(text);
}

/** Parses and validates a document; every failure names the field, like `input.image.layers[0].digest: …`. */
export function parseDocument(text: string): PipeDocument {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    const message = (err as Error).message;
    const position = /at position (\d+)/.exec(message)?.[1];
    const truncated = /end of (JSON )?input/i.test(message) || (position !== undefined && Number(position) >= text.trimEnd().length);
    throw new InputError(`input: ${truncated ? 'truncated JSON document' : `not a JSON document (${message})`}`);
  }
  validateDocument(value);
  return value;
}

export function validateDocument(value: unknown): asserts value is PipeDocument {
  const problem = firstSchemaError(validatorFor('document'), value, 'input');
  if (problem) throw new InputError(problem);
}

/** Whether file descriptor `fd` is a pipe or a socket (not a terminal, a file or a device like /dev/null). */
export function isPipe(fd: number): boolean {
  try {
    const stats = fstatSync(fd);
    return stats.isFIFO() || stats.isSocket();
  } catch {
    return false;
  }
}

export function formatDocument(doc: PipeDocument): string {
  return `${JSON.stringify(doc)}\n`;
}

async function readInputFile(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new InputError(`input: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks).toString('utf8');
}
