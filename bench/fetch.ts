/**
 * img-fetch vs `skopeo copy docker://… oci:…`: pulling a ~100 MB two-layer image (random,
 * so incompressible) from a local docker-registry into a fresh store, A B A B in one run.
 * Targets from issue 2: at most 0.7x skopeo's wall time, peak RSS under 150 MB.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { compare } from './harness.js';
import { REPO, tempDir } from '../test/helpers/paths.js';
import { startRegistry } from '../test/helpers/registry.js';
import { mustExec } from '../test/helpers/exec.js';
import { skopeoPush, writeRandomImage } from '../test/helpers/images.js';

const LAYER_SIZES = [64 << 20, 36 << 20];
const RSS_TARGET_MIB = 150;

export async function run(): Promise<void> {
  const work = await tempDir('cp-bench-fetch-');
  const registry = await startRegistry();
  try {
    const layout = join(work.path, 'layout');
    await writeRandomImage(layout, 'big', LAYER_SIZES);
    const image = `docker://${registry.host}/lab/big:latest`;
    await skopeoPush(`oci:${layout}:big`, image);
    const ours = join(work.path, 'store');
    const theirs = join(work.path, 'skopeo');
    // Before each run: both destinations gone, and the disk quiet (`sync`), so that neither
    // contender pays for writing back the other's 100 MB in the middle of its own fsyncs.
    const fresh = async () => {
      await rm(ours, { recursive: true, force: true });
      await rm(theirs, { recursive: true, force: true });
      await mustExec('sync', []);
    };
    const results = await compare(
      `pull a ${(LAYER_SIZES.reduce((a, b) => a + b, 0) / 2 ** 20).toFixed(0)} MiB two-layer image from a local registry into a fresh OCI layout`,
      { name: 'skopeo copy', command: `skopeo copy -q --src-tls-verify=false ${image} oci:${theirs}:big`, prepare: fresh },
      [{ name: 'img-fetch', command: `node ${join(REPO, 'dist', 'bin', 'img-fetch.js')} ${image} --tls-verify=false -q --store ${ours}`, prepare: fresh }],
      { rounds: 7, targets: { 'img-fetch': 0.7 } },
    );
    const rss = (results.find((r) => r.name === 'img-fetch')?.medianPeakRssKiB ?? 0) / 1024;
    console.log(`img-fetch peak RSS ${rss.toFixed(1)} MiB (target < ${RSS_TARGET_MIB} MiB: ${rss < RSS_TARGET_MIB ? 'met' : 'NOT met'})`);
  } finally {
    await registry.stop();
    await work.cleanup();
  }
}
