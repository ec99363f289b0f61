// The score of each module from its Stryker JSON report (reports/mutation/MODULE.json):
// killed + timed out over all mutants that ran (survived, no coverage), as Stryker counts it.
import { readFileSync, existsSync } from 'node:fs';

const detected = new Set(['Killed', 'Timeout']);
const undetected = new Set(['Survived', 'NoCoverage']);
console.log('| module | score | killed | timeout | survived | no coverage |');
console.log('|---|---|---|---|---|---|');
for (const module of process.argv.slice(2)) {
  const file = `reports/mutation/${module.replace(/\//g, '-')}.json`;
  if (!existsSync(file)) {
    console.log(`| ${module} | (no report) | | | | |`);
    continue;
  }
  const mutants = Object.values(JSON.parse(readFileSync(file, 'utf8')).files).flatMap((f) => f.mutants);
  const count = (status) => mutants.filter((m) => m.status === status).length;
  const found = mutants.filter((m) => detected.has(m.status)).length;
  const valid = found + mutants.filter((m) => undetected.has(m.status)).length;
  const score = valid === 0 ? 'n/a' : `${((100 * found) / valid).toFixed(1)}%`;
  console.log(`| ${module} | ${score} | ${count('Killed')} | ${count('Timeout')} | ${count('Survived')} | ${count('NoCoverage')} |`);
}
