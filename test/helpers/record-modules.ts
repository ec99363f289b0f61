/**
 * `node --import dist/test/helpers/record-modules.js TOOL …` with $CP_MODULE_LOG set: every module
 * the process loads is appended to that file, one URL a line — ES modules through a load hook,
 * CommonJS ones (yargs, ajv, the standalone validators) from require's cache at exit. For
 * checking at run time what a command loads, not what its import lines say.
 */
import { appendFileSync } from 'node:fs';
import { createRequire, register } from 'node:module';
import { pathToFileURL } from 'node:url';

const log = process.env.CP_MODULE_LOG;
if (!log) throw new Error('record-modules: set CP_MODULE_LOG to the file to write');
register(new URL('./record-modules-hooks.js', import.meta.url), { data: { log } });
const requireCache = createRequire(import.meta.url).cache;
process.on('exit', () => {
  appendFileSync(log, Object.keys(requireCache).map((file) => `${pathToFileURL(file).href}\n`).join(''));
});
