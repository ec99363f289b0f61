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
// ns-enter's helpers (native/*.c: ns-enter-exec, ns-enter-prelude, ns-enter-sysctl): static, so they run in any image; rebuilt when their source changed.
{
  const { execFileSync } = await import('node:child_process');
  const { existsSync, statSync } = await import('node:fs');
  mkdirSync(new URL('../dist/native/', import.meta.url), { recursive: true });
  for (const name of ['ns-enter-exec', 'ns-enter-prelude', 'ns-enter-sysctl']) {
    const source = new URL(`../native/${name}.c`, import.meta.url);
    const binary = new URL(`../dist/native/${name}`, import.meta.url);
    if (existsSync(binary) && statSync(binary).mtimeMs >= statSync(source).mtimeMs) continue;
    try {
      execFileSync('gcc', ['-static', '-O2', '-Wall', '-Wextra', '-Werror', '-s', '-o', binary.pathname, source.pathname], { stdio: 'inherit' });
    } catch (err) {
      console.error(`postbuild: cannot build ns-enter's ${name} (${err.message}): apt-get install gcc libc6-dev (scripts/install-deps.sh)`);
      process.exit(1);
    }
  }
}
// The commands bundled by esbuild into dist/bin/ (bin entries, make install, the tests' PATH):
// a command's start loads one file instead of ~40 modules of tsc's output, each a resolve, read
// and compile (~0.4 ms apiece; img-fetch's start was 70 ms). npm packages stay outside (loaded
// from node_modules when needed). dist/lib/ stays: tests and Stryker use it.
{
  const { build } = await import('esbuild');
  const { rmSync } = await import('node:fs');
  const bin = new URL('../dist/bin/', import.meta.url);
  rmSync(bin, { recursive: true, force: true });
  const common = { bundle: true, format: 'esm', platform: 'node', target: 'node20', packages: 'external', logLevel: 'warning' };
  const runtimeEntry = 'oci-runtime.js';
  const entryPoints = readdirSync(tools).filter((f) => f.endsWith('.js') && f !== runtimeEntry).map((f) => new URL(f, tools).pathname);
  // One file per command, what it loads with import() inlined (still run only when used): a
  // build of all of them splits what two commands share into chunks, each a module to resolve
  // at start-up (ns-enter loaded 20; 3-7 ms of its start, ~10 ms of img-fetch's CPU).
  await Promise.all(entryPoints.map((entry) => build({ ...common, splitting: false, entryPoints: [entry], outdir: bin.pathname })));
  // oci-runtime is built apart, with the supervisor it spawns by file (lib/runtime/supervisor-path.ts; in
  // dist/libexec/, not a command: make install links dist/bin/*.js), split: each of its commands is an
  // import() of its own, and `state` must not parse the executor that `create` loads.
  const dist = new URL('../dist/', import.meta.url);
  rmSync(new URL('libexec/', dist), { recursive: true, force: true });
  const runtimeEntries = { 'bin/oci-runtime': new URL(runtimeEntry, tools).pathname, 'libexec/oci-runtime-supervisor': new URL('lib/runtime/supervisor-main.js', dist).pathname };
  await build({ ...common, splitting: true, entryPoints: runtimeEntries, outdir: dist.pathname, chunkNames: 'bin/chunks/runtime-[name]-[hash]' });
  for (const file of readdirSync(bin)) if (file.endsWith('.js')) chmodSync(new URL(file, bin), 0o755);
}
