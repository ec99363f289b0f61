// The score of each module from its Stryker JSON report (reports/mutation/MODULE.json, not
// committed), else from its committed incremental file (stryker/incremental/MODULE.json: the
// same format, the results of the last run): killed + timed out over all mutants that ran
// (survived, no coverage), as Stryker counts it.
import { readFileSync, existsSync } from 'node:fs';

// The modules that keep the promises (issue 14): the chroot-safe resolver, the layer applier and
// the tar reader, the store (CAS, blob writer, transaction, lock), the registry client and http,
// the image transports. Target 75%; every other module of lib/, 60%.
const PROMISES = /^(core\/(root-resolver|lock)|layer\/(apply|tree|whiteouts|tarstream)|image\/store\/|image\/transport\/(registry|registry-pull|http|http-parser|retry|oci-source|archive|archive-source|tarball-source|dir)$)/;
const detected = new Set(['Killed', 'Timeout']);
const undetected = new Set(['Survived', 'NoCoverage']);
console.log('| module | score | killed | timeout | survived | no coverage | target |');
console.log('|---|---|---|---|---|---|---|');
for (const module of process.argv.slice(2)) {
  const slug = module.replace(/\//g, '-');
  const file = [`reports/mutation/${slug}.json`, `stryker/incremental/${slug}.json`].find((f) => existsSync(f));
  if (!file) {
    console.log(`| ${module} | (no report) | | | | | ${PROMISES.test(module) ? 75 : 60}% |`);
    continue;
  }
  const mutants = Object.values(JSON.parse(readFileSync(file, 'utf8')).files).flatMap((f) => f.mutants);
  const count = (status) => mutants.filter((m) => m.status === status).length;
  const found = mutants.filter((m) => detected.has(m.status)).length;
  const valid = found + mutants.filter((m) => undetected.has(m.status)).length;
  const score = valid === 0 ? 'n/a' : `${((100 * found) / valid).toFixed(1)}%`;
  const target = PROMISES.test(module) ? 75 : 60;
  const met = valid > 0 && (100 * found) / valid >= target ? 'met' : 'NOT met';
  console.log(`| ${module} | ${score} | ${count('Killed')} | ${count('Timeout')} | ${count('Survived')} | ${count('NoCoverage')} | ${target}%: ${met} |`);
}
