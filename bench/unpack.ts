/**
 * Flatten the lab debian image (debootstrap minbase, two gzip layers, the second with
 * whiteouts): img-unpack beside `umoci unpack` and GNU `tar xzf` of the same two layers
 * (tar does not apply whiteouts; it is the floor for "decompress and write the files").
 * Targets from the issue: at most 0.5x umoci's wall time, at most 1.2x tar's, peak RSS < 150 MB.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchEnv, compare } from './harness.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));

export async function run(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'cp-bench-unpack-'));
  try {
    const layout = join(work, 'layout');
    execFileSync(join(REPO, 'scripts', 'build-debian-image.sh'), [join(work, 'build'), `oci:${layout}:debian`], { stdio: 'inherit' });
    const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8'));
    const manifest = JSON.parse(readFileSync(join(layout, 'blobs', 'sha256', index.manifests[0].digest.slice(7)), 'utf8'));
    const blobs = (manifest.layers as Array<{ digest: string }>).map((l) => join(layout, 'blobs', 'sha256', l.digest.slice(7)));
    const dest = join(work, 'dest');
    // Untimed: a fresh destination, and the previous run's dirty pages written back first.
    const fresh = async () => {
      rmSync(dest, { recursive: true, force: true });
      execFileSync('sync');
    };
    const tool = join(REPO, 'dist', 'bin', 'img-unpack.js');
    const results = await compare(
      `flatten the debian image (${blobs.length} layers)`,
      { name: 'umoci unpack', command: `umoci unpack --image ${layout}:debian ${dest} >/dev/null`, prepare: fresh },
      [
        { name: 'tar xzf (each layer)', command: `mkdir ${dest} && ${blobs.map((b) => `tar xzf ${b} -C ${dest}`).join(' && ')}`, prepare: fresh },
        { name: 'img-unpack', command: `${process.execPath} ${tool} --store ${layout} --image debian --dest ${dest} >/dev/null`, prepare: fresh },
      ],
      { rounds: 5, env: benchEnv(), targets: { 'img-unpack': 0.5 } },
    );
    const [, tar, ours] = results;
    if (tar && ours) {
      const ratio = ours.medianSeconds / tar.medianSeconds;
      console.log(`img-unpack / tar xzf: ${ratio.toFixed(2)}x  (target <= 1.2x: ${ratio <= 1.2 ? 'met' : 'NOT met'})`);
      const rss = ours.medianPeakRssKiB / 1024;
      console.log(`img-unpack peak RSS: ${rss.toFixed(1)} MiB  (target < 150 MiB: ${rss < 150 ? 'met' : 'NOT met'})`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
