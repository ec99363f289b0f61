// After tsc: make the compiled tools executable (bin entries, a PATH of dist/tools) and write
// each command's man page from its flag definitions into dist/man/.
import { chmodSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
const tools = new URL('../dist/tools/', import.meta.url);
const man = new URL('../dist/man/', import.meta.url);
const { renderManPage } = await import(new URL('../dist/lib/cli/manpage.js', import.meta.url));
mkdirSync(man, { recursive: true });
for (const file of readdirSync(tools)) {
  if (!file.endsWith('.js')) continue;
  chmodSync(new URL(file, tools), 0o755);
  const module = await import(new URL(file, tools));
  const spec = Object.values(module).find((v) => v && typeof v === 'object' && typeof v.name === 'string' && typeof v.options === 'function' && typeof v.run === 'function');
  if (spec) writeFileSync(new URL(`${spec.name}.1`, man), renderManPage(spec));
}
// Each schema as ajv standalone code, so commands do not compile a schema on every run.
const { SCHEMA_NAMES, standaloneValidatorSource } = await import(new URL('../dist/lib/core/schema.js', import.meta.url));
mkdirSync(new URL('../dist/schema/', import.meta.url), { recursive: true });
for (const name of SCHEMA_NAMES) writeFileSync(new URL(`../dist/schema/${name}.validate.cjs`, import.meta.url), standaloneValidatorSource(name));
