/**
 * The project's JSON Schemas (schema/<name>.schema.json) and their validators. Compiling a
 * schema with ajv costs tens of milliseconds on every run, so the build writes each one as
 * ajv standalone code (dist/schema/<name>.validate.cjs) and commands load that; a build that
 * skipped it falls back to compiling at run time. One-line errors name the JSON path.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { distPath } from './paths.js';

/** The schemas the build precompiles. */
export const SCHEMA_NAMES = ['document', 'runtime-config'] as const;
export type SchemaName = (typeof SCHEMA_NAMES)[number];

export interface SchemaError {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
}

export type Validator = ((value: unknown) => boolean) & { errors?: SchemaError[] | null };

type AjvClass = new (opts: object) => { compile(schema: object): unknown };

const requireCjs = createRequire(import.meta.url);
const loaded = new Map<SchemaName, Validator>();

function readSchema(name: SchemaName): object {
  return JSON.parse(readFileSync(distPath(import.meta.url, '..', 'schema', `${name}.schema.json`), 'utf8'));
}

function precompiledPath(name: SchemaName): string {
  return distPath(import.meta.url, 'schema', `${name}.validate.cjs`);
}

function ajvClass(): AjvClass {
  return (requireCjs('ajv') as { default: AjvClass }).default;
}

/** Compiles a draft-07 schema with ajv (loaded only now, so commands that never validate start faster). */
export function compileSchema(schema: object): Validator {
  const Ajv = ajvClass();
  return new Ajv({ allErrors: false, strict: false }).compile(schema) as Validator;
}

/** The validator for one of the project's schemas: the precompiled one, else compiled now. */
export function validatorFor(name: SchemaName): Validator {
  let validator = loaded.get(name);
  if (validator) return validator;
  try {
    validator = requireCjs(precompiledPath(name)) as Validator;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw err;
    validator = compileSchema(readSchema(name));
  }
  loaded.set(name, validator);
  return validator;
}

/** ajv standalone code for one schema; scripts/postbuild.mjs writes it into dist/schema/. */
export function standaloneValidatorSource(name: SchemaName): string {
  const Ajv = ajvClass();
  const standalone = (requireCjs('ajv/dist/standalone') as { default: (ajv: unknown, validate: unknown) => string }).default;
  const ajv = new Ajv({ allErrors: false, strict: false, code: { source: true } });
  return standalone(ajv, ajv.compile(readSchema(name)));
}

/** The first error of the last validation as `<root>.<json path>: <what is wrong>`, or undefined when valid. */
export function firstSchemaError(validator: Validator, value: unknown, root: string): string | undefined {
  if (validator(value)) return undefined;
  const first = validator.errors?.[0];
  if (!first) return `${root || '(the top level)'}: does not match the schema`;
  return `${jsonPathOf(root, first.instancePath).replace(/^\./, '') || '(the top level)'}: ${describeSchemaError(first)}`;
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
