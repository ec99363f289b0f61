/**
 * Validators from the official image-spec JSON schemas in ../shared/specs (draft-04, read in
 * place, never copied): the oracle for what we write into a store.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { SPECS } from './paths.js';

const BASE = 'https://opencontainers.org/schema/image/';
const requireCjs = createRequire(import.meta.url);

type Validate = ((value: unknown) => boolean) & { errors?: unknown[] | null };

/** Drops the schemas' own `id`s, so every $ref resolves against the file names they are added under. */
function withoutIds(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutIds);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).filter(([k, v]) => !(k === 'id' && typeof v === 'string')).map(([k, v]) => [k, withoutIds(v)]));
  }
  return value;
}

let ajv: { addSchema(schema: object, key: string): void; getSchema(key: string): Validate | undefined } | undefined;

export function ociSchema(file: 'image-manifest-schema.json' | 'image-index-schema.json' | 'image-layout-schema.json' | 'config-schema.json'): (value: unknown) => void {
  if (!ajv) {
    const Ajv04 = (requireCjs('ajv-draft-04') as { default: new (opts: object) => NonNullable<typeof ajv> }).default;
    ajv = new Ajv04({ strict: false, allErrors: true });
    const dir = join(SPECS, 'image-spec', 'schema');
    for (const name of readdirSync(dir).filter((f) => f.endsWith('.json'))) ajv.addSchema(withoutIds(JSON.parse(readFileSync(join(dir, name), 'utf8'))) as object, `${BASE}${name}`);
  }
  const validate = ajv.getSchema(`${BASE}${file}`) as Validate;
  return (value) => {
    if (!validate(value)) throw new Error(`${file}: ${JSON.stringify(validate.errors)}`);
  };
}
