/**
 * img-push vs `skopeo copy oci:… docker://…`: the lab debian image (debootstrap minbase, two
 * gzip layers) from the same OCI layout (the store) into an empty repository of a local
 * docker-registry, A B A B in one run. Before each run the registry's storage is wiped and
 * the registry restarted (untimed), so neither contender finds a blob of the other's run.
 * Targets from issue 15: at most 0.8x skopeo's wall time, peak RSS under 150 MB.
 */
import { execFileSync } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { benchEnv, compare } from './harness.js';
import { REPO, tempDir } from '../test/helpers/paths.js';
import { startRegistry } from '../test/helpers/registry.js';
import { mustExec } from '../test/helpers/exec.js';

const RSS_TARGET_MIB = 150;

export async function run(): Promise<void> {
  const work = await tempDir('cp-bench-push-');
  const registry = await startRegistry();
  try {
    const layout = join(work.path, 'layout');
    execFileSync(join(REPO, 'scripts', 'build-debian-image.sh'), [join(work.path, 'build'), `oci:${layout}:debian`], { stdio: 'inherit' });
    const store = join(work.path, 'store');
    await mustExec(process.execPath, [join(REPO, 'dist', 'bin', 'img-fetch.js'), `oci:${layout}:debian`, '--store', store, '--name', 'localhost/debian:latest', '-q']);
    const destination = `docker://${registry.host}/bench/debian:latest`;
    const empty = async () => {
      await registry.kill();
      await rm(join(registry.dir, 'storage'), { recursive: true, force: true });
      await registry.restart();
      await mustExec('sync', []);
    };
    const results = await compare(
      'push the debian image (2 gzip layers) from an OCI layout into an empty repository of a local registry',
      { name: 'skopeo copy', command: `skopeo copy -q --dest-tls-verify=false oci:${store}:localhost/debian:latest ${destination}`, prepare: empty },
      [{ name: 'img-push', command: `${process.execPath} ${join(REPO, 'dist', 'bin', 'img-push.js')} --store ${store} --image localhost/debian:latest ${destination} --tls-verify=false -q >/dev/null`, prepare: empty }],
      { rounds: 7, env: benchEnv(), targets: { 'img-push': 0.8 } },
    );
    const rss = (results.find((r) => r.name === 'img-push')?.medianPeakRssKiB ?? 0) / 1024;
    console.log(`img-push peak RSS ${rss.toFixed(1)} MiB (target < ${RSS_TARGET_MIB} MiB: ${rss < RSS_TARGET_MIB ? 'met' : 'NOT met'})`);
  } finally {
    await registry.stop();
    await work.cleanup();
  }
}
