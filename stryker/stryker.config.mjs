// StrykerJS for one module of lib/ at a time (scripts/mutation.sh sets CP_MUTATION_MODULE).
// The compiled JavaScript in dist/ is mutated, not the TypeScript: a mutant then needs no
// compilation (one tsc of the schemata would cost the whole project's build in every sandbox),
// and no mutant is a type error. dist/ keeps the source's lines and names (tsc output, comments
// kept), so a survivor reads as the source line. The tap runner runs each test file with plain
// `node FILE` (node:test prints TAP when stdout is not a terminal); its per-file coverage lets a
// mutant run only the listed test files that reach it.
import { readFileSync } from 'node:fs';

const modules = JSON.parse(readFileSync(new URL('./modules.json', import.meta.url), 'utf8'));
const name = process.env.CP_MUTATION_MODULE;
if (!name || !(name in modules) || name === '//') throw new Error(`CP_MUTATION_MODULE: one of ${Object.keys(modules).filter((m) => m !== '//').join(', ')}`);
const slug = name.replace(/\//g, '-');

export default {
  packageManager: 'npm',
  testRunner: 'tap',
  plugins: ['@stryker-mutator/tap-runner'],
  mutate: [`dist/lib/${name}.js`],
  tap: {
    testFiles: modules[name].map((file) => `dist/${file}`),
    nodeArgs: ['--expose-internals', '--import', './dist/test/helpers/timeouts.js'],
    forceBail: true,
  },
  coverageAnalysis: 'perTest',
  // Only what the tests need in the sandbox: the build, the scripts they call, the package.
  ignorePatterns: ['/*', '!/dist', '!/scripts', '!/schema', '!/package.json', '!/lib', '!/test', 'dist/bench'],
  incremental: true,
  incrementalFile: `stryker/incremental/${slug}.json`,
  reporters: ['clear-text', 'json'],
  jsonReporter: { fileName: `reports/mutation/${slug}.json` },
  clearTextReporter: { allowColor: false, logTests: false, reportMutants: false, reportTests: false, reportScoreTable: true },
  concurrency: Number(process.env.CP_MUTATION_CONCURRENCY ?? 1),
  timeoutMS: 10_000,
  timeoutFactor: 2,
  tempDirName: '.stryker-tmp',
  cleanTempDir: true,
  thresholds: { high: 75, low: 60, break: null },
};
