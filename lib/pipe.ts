/**
 * Reading and writing the pipe document. A command reads one document from stdin (when stdin
 * is not a terminal) or from --input FILE, validates it against the schema, and writes the
 * extended document as one line to stdout, only after it has succeeded.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { InputError } from './errors.js';
import type { PipeDocument } from './document.js';

export interface DocumentSource {
  /** --input FILE; '-' means stdin. */
  inputFile?: string;
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
}

/** The piped document, or undefined when there is none (a terminal, or an empty pipe). */
export async function readDocument(source: DocumentSource): Promise<PipeDocument | undefined> {
  const fromFile = source.inputFile !== undefined && source.inputFile !== '-';
  if (!fromFile && source.stdin.isTTY) return undefined;
  const text = fromFile ? await readInputFile(source.inputFile as string) : await readAll(source.stdin);
  if (text.trim() === '') {
    if (fromFile) throw new InputError(`input: ${source.inputFile} is empty`);
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
  const validate = documentValidator();
  if (validate(value)) return;
  const first = validate.errors?.[0];
  if (!first) throw new InputError('input: does not match the document schema');
  throw new InputError(`${jsonPathOf('input', first.instancePath)}: ${describeSchemaError(first)}`);
}

export function formatDocument(doc: PipeDocument): string {
  return `${JSON.stringify(doc)}\n`;
}

interface SchemaError {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
}

type Validator = ((value: unknown) => boolean) & { errors?: SchemaError[] | null };

const requireCjs = createRequire(import.meta.url);
let cachedValidator: Validator | undefined;

/** ajv is loaded only when a document is validated, so commands run from flags start faster. */
function documentValidator(): Validator {
  if (cachedValidator) return cachedValidator;
  const schema = JSON.parse(readFileSync(new URL('../../schema/document.schema.json', import.meta.url), 'utf8'));
  cachedValidator = compileSchema(schema);
  return cachedValidator;
}

/** Compiles a draft-07 schema with ajv; shared by every schema the project validates against. */
export function compileSchema(schema: object): Validator {
  // ajv is CommonJS; loading it synchronously keeps the validator usable from sync code.
  const AjvClass = requireAjv();
  const ajv = new AjvClass({ allErrors: false, strict: false });
  return ajv.compile(schema) as Validator;
}

function requireAjv(): new (opts: object) => { compile(schema: object): unknown } {
  const mod = requireCjs('ajv') as { default: new (opts: object) => { compile(schema: object): unknown } };
  return mod.default;
}

/** `/image/layers/0/digest` → `input.image.layers[0].digest` */
export function jsonPathOf(root: string, pointer: string): string {
  if (pointer === '') return root;
  return pointer
    .split('/')
    .slice(1)
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((path, part) => (/^\d+$/.test(part) ? `${path}[${part}]` : /^[A-Za-z_$][\w$]*$/.test(part) ? `${path}.${part}` : `${path}[${JSON.stringify(part)}]`), root);
}

export function describeSchemaError(error: SchemaError): string {
  switch (error.keyword) {
    case 'required':
      return `missing required field "${String(error.params.missingProperty)}"`;
    case 'const':
      return `must be ${JSON.stringify(error.params.allowedValue)}`;
    case 'enum':
      return `must be one of ${(error.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'pattern':
      return `must match ${String(error.params.pattern)}`;
    default:
      return error.message ?? 'is invalid';
  }
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
