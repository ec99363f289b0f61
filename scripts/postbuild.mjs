// After tsc: write each command's man page from its flag definitions into dist/man/, and bundle
// the commands into dist/bin/ (what bin, make install and the tests run).
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
// ns-enter's helper (native/ns-enter-exec.c): static, so it runs in any image; rebuilt when its source changed.
{
  const { execFileSync } = await import('node:child_process');
  const { existsSync, statSync } = await import('node:fs');
  const source = new URL('../native/ns-enter-exec.c', import.meta.url);
  const binary = new URL('../dist/native/ns-enter-exec', import.meta.url);
  if (!existsSync(binary) || statSync(binary).mtimeMs < statSync(source).mtimeMs) {
    mkdirSync(new URL('../dist/native/', import.meta.url), { recursive: true });
    try {
      execFileSync('gcc', ['-static', '-O2', '-Wall', '-Wextra', '-Werror', '-s', '-o', binary.pathname, source.pathname], { stdio: 'inherit' });
    } catch (err) {
      console.error(`postbuild: cannot build ns-enter's helper (${err.message}): apt-get install gcc libc6-dev (scripts/install-deps.sh)`);
      process.exit(1);
    }
  }
}
// The commands bundled by esbuild into dist/bin/ (bin entries, make install, the tests' PATH):
// a command's start loads one file and the chunks it shares with others instead of ~40 modules
// of tsc's output, each a resolve, read and compile (~0.4 ms apiece; img-fetch's start was 70 ms).
// A transport loaded with import() stays a chunk of its own, loaded only when used. npm packages
// stay outside (loaded from node_modules when needed). dist/lib/ stays: tests and Stryker use it.
{
  const { build } = await import('esbuild');
  const { rmSync } = await import('node:fs');
  const bin = new URL('../dist/bin/', import.meta.url);
  rmSync(bin, { recursive: true, force: true });
  const common = { bundle: true, splitting: true, format: 'esm', platform: 'node', target: 'node20', packages: 'external', logLevel: 'warning' };
  // oci-runtime is built apart, with the supervisor it spawns by file (lib/runtime/supervisor-path.ts; in
  // dist/libexec/, not a command: make install links dist/bin/*.js): chunks shared with the other eight
  // commands would be ~17 files for `state` to resolve and load, ~5 ms of each of its commands.
  const runtimeEntry = 'oci-runtime.js';
  const entryPoints = readdirSync(tools).filter((f) => f.endsWith('.js') && f !== runtimeEntry).map((f) => new URL(f, tools).pathname);
  await build({ ...common, entryPoints, outdir: bin.pathname, chunkNames: 'chunks/[name]-[hash]' });
  const dist = new URL('../dist/', import.meta.url);
  rmSync(new URL('libexec/', dist), { recursive: true, force: true });
  const runtimeEntries = { 'bin/oci-runtime': new URL(runtimeEntry, tools).pathname, 'libexec/oci-runtime-supervisor': new URL('lib/runtime/supervisor-main.js', dist).pathname };
  await build({ ...common, entryPoints: runtimeEntries, outdir: dist.pathname, chunkNames: 'bin/chunks/runtime-[name]-[hash]' });
  for (const file of readdirSync(bin)) if (file.endsWith('.js')) chmodSync(new URL(file, bin), 0o755);
}
