/**
 * img-commit beside `buildah commit` (to buildah's own storage, its own root, runroot and
 * containers.conf) of the same changes on the lab debian image: /usr/lib copied to /opt/bulk,
 * 500 files of /usr/share/zoneinfo removed, and a new small file before each commit so that
 * neither side can reuse the last result. Targets from the issue: at most 0.8x buildah's wall
 * time, peak RSS < 150 MB. buildah's storage keeps the layer uncompressed (it compresses when it
 * pushes); img-commit stores it as it will be pushed (gzip level 1), so both sides are shown
 * with --compression none too: the cost of the tar alone.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchEnv, compare } from './harness.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const tool = (name: string) => join(REPO, 'dist', 'bin', `${name}.js`);

/** The benchmark's changes, made in a container's merged tree. */
function change(merged: string): void {
  execFileSync('cp', ['-a', join(merged, 'usr', 'lib'), join(merged, 'opt', 'bulk')]);
  execFileSync('bash', ['-c', `cd ${merged}/usr/share/zoneinfo && find . -type f | sort | head -500 | xargs rm -f`]);
}

function buildahSide(work: string, layout: string): { command: (tag: string) => string; merged: string; cleanup: () => void } {
  const dir = join(work, 'buildah');
  execFileSync('mkdir', ['-p', dir]);
  writeFileSync(join(dir, 'containers.conf'), '');
  writeFileSync(join(dir, 'registries.conf'), 'unqualified-search-registries = []\n');
  const env = { ...benchEnv(), CONTAINERS_CONF: join(dir, 'containers.conf'), CONTAINERS_REGISTRIES_CONF: join(dir, 'registries.conf') };
  const flags = `--root ${dir}/root --runroot ${dir}/run --storage-driver overlay`;
  const sh = (command: string) => execFileSync('bash', ['-c', command], { env, encoding: 'utf8' }).trim();
  sh(`skopeo copy -q oci:${layout}:debian 'containers-storage:[overlay@${dir}/root+${dir}/run]localhost/lab-debian:latest'`);
  sh(`buildah ${flags} from --pull-never --name bench localhost/lab-debian:latest`);
  const merged = sh(`buildah ${flags} mount bench`);
  return {
    command: (tag) => `CONTAINERS_CONF=${dir}/containers.conf CONTAINERS_REGISTRIES_CONF=${dir}/registries.conf buildah ${flags} commit -q bench localhost/bench:${tag} >/dev/null`,
    merged,
    cleanup: () => sh(`buildah ${flags} rm -a >/dev/null; buildah ${flags} rmi -a -f >/dev/null 2>&1 || true`),
  };
}

function oursSide(work: string, layout: string): { doc: string; merged: string; cleanup: () => void } {
  const store = join(work, 'store');
  const doc = join(work, 'c.json');
  execFileSync('bash', ['-c', `node ${tool('img-fetch')} -q oci:${layout}:debian --store ${store} | node ${tool('img-unpack')} -q --layers | node ${tool('ovl-mount')} --name bench > ${doc}`], { env: benchEnv() });
  const merged = JSON.parse(readFileSync(doc, 'utf8')).mount.target as string;
  return { doc, merged, cleanup: () => execFileSync('bash', ['-c', `node ${tool('ovl-mount')} --unmount --input ${doc}`], { env: benchEnv() }) };
}

export async function run(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'cp-bench-commit-'));
  const cleanups: Array<() => void> = [];
  try {
    const layout = join(work, 'layout');
    execFileSync(join(REPO, 'scripts', 'build-debian-image.sh'), [join(work, 'build'), `oci:${layout}:debian`], { stdio: 'inherit' });
    const ours = oursSide(work, layout);
    cleanups.push(ours.cleanup);
    const theirs = buildahSide(work, layout);
    cleanups.push(theirs.cleanup);
    change(ours.merged);
    change(theirs.merged);
    let round = 0;
    // Untimed: a new small file, and the dirty pages of the last run written back.
    const touch = (merged: string) => async () => {
      writeFileSync(join(merged, 'etc', 'bench-round'), `${round++}\n`);
      execFileSync('sync');
    };
    const commit = (tag: string, extra = '') => `${process.execPath} ${tool('img-commit')} -q --input ${ours.doc} --name localhost/bench:${tag} ${extra} >/dev/null`;
    const results = await compare(
      'commit the debian image with /usr/lib copied to /opt/bulk and 500 zoneinfo files removed',
      { name: 'buildah commit', command: theirs.command('latest'), prepare: touch(theirs.merged) },
      [
        { name: 'img-commit', command: commit('gzip'), prepare: touch(ours.merged) },
        { name: 'img-commit --compression none', command: commit('none', '--compression none'), prepare: touch(ours.merged) },
      ],
      { rounds: 5, env: benchEnv(), targets: { 'img-commit': 0.8 } },
    );
    for (const r of results.slice(1)) {
      const rss = r.medianPeakRssKiB / 1024;
      console.log(`${r.name} peak RSS: ${rss.toFixed(1)} MiB  (target < 150 MiB: ${rss < 150 ? 'met' : 'NOT met'})`);
    }
  } finally {
    for (const cleanup of cleanups.reverse()) {
      try {
        cleanup();
      } catch (err) {
        console.error(`bench commit: cleanup: ${(err as Error).message}`);
      }
    }
    rmSync(work, { recursive: true, force: true });
  }
}
