/**
 * `node --import dist/test/helpers/record-spawns.js TOOL …` with $CP_SPAWN_LOG set: every program
 * the process starts (spawn, execFile and their sync forms) is appended to that file, one
 * argv[0] a line. For counting helper processes ("one python3 helper per unpack") exactly,
 * where polling /proc could miss a short-lived one.
 */
import { appendFileSync } from 'node:fs';
import { createRequire, syncBuiltinESMExports } from 'node:module';

const log = process.env.CP_SPAWN_LOG;
if (!log) throw new Error('record-spawns: set CP_SPAWN_LOG to the file to write');
const childProcess = createRequire(import.meta.url)('node:child_process') as Record<string, unknown>;
for (const name of ['spawn', 'spawnSync', 'execFile', 'execFileSync']) {
  const original = childProcess[name] as (file: string, ...rest: unknown[]) => unknown;
  childProcess[name] = function (this: unknown, file: string, ...rest: unknown[]) {
    appendFileSync(log, `${file}\n`);
    return original.call(this, file, ...rest);
  };
}
syncBuiltinESMExports();
