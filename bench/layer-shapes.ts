/**
 * img-unpack at scale (issue 18), on two layer shapes built here from a seed:
 * - 1,000 dirs x 100 files of ~100 bytes (100,000 entries: node_modules, site-packages);
 * - one file of zeros of several GiB (BENCH_ZEROS_GIB, default 2): a ratio of ~230:1, which
 *   checks that memory is bounded by what is decompressed, not by what is read.
 * Each beside GNU `tar -xzpf` of the same blob and `umoci unpack` of the same image, alternating,
 * `sync` before each run. Targets: 100k files at most 1.0x tar; peak RSS < 150 MiB on both.
 *
 * On an ext4 without a journal (this lab VM's root) the 100k shape measures mostly the kernel:
 * ext4 skips inodes freed in the last 5 s (300 s while their inode table block is dirty, which
 * the next create makes it), scanning past each of the previous round's 100,000 on every create
 * (perf: ~85% of tar's time in recently_deleted()), so every contender takes ~20 s and the
 * ratios come near 1. BENCH_DIR on a fresh journaled ext4 (a loop mount) measures the unpack
 * itself: there tar takes ~1.2 s.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchEnv, compare, type Measurement } from './harness.js';
import { writeSingleLayerImage } from './layout.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const TOOL = join(REPO, 'dist', 'bin', 'img-unpack.js');

export async function run(): Promise<void> {
  const work = mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), 'cp-bench-shapes-'));
  try {
    const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
    const small = join(work, 'small-tree');
    writeSmallFiles(small, 0x5eed);
    const smallLayout = join(work, 'small');
    const smallBlob = writeSingleLayerImage(smallLayout, 'small', `tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@1700000000 -cf - -C ${small} .`);
    rmSync(small, { recursive: true, force: true });
    await shape({ title: '1,000 dirs x 100 files of ~100 bytes (100,000 entries)', layout: smallLayout, tag: 'small', blob: smallBlob, work, rounds, target: 1.0 });

    const gib = Number(process.env.BENCH_ZEROS_GIB ?? 2);
    const zeros = join(work, 'zeros-tree');
    mkdirSync(zeros);
    execFileSync('truncate', ['-s', `${gib}G`, join(zeros, 'zeros')]);
    const zerosLayout = join(work, 'zeros');
    const zerosBlob = writeSingleLayerImage(zerosLayout, 'zeros', `tar --owner=0 --group=0 --numeric-owner --mtime=@1700000000 -cf - -C ${zeros} zeros`);
    rmSync(zeros, { recursive: true, force: true });
    await shape({ title: `one ${gib} GiB file of zeros`, layout: zerosLayout, tag: 'zeros', blob: zerosBlob, work, rounds });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** 1,000 dirs of 100 files, each ~100 bytes of text from a seeded generator (so gzip has work to do). */
function writeSmallFiles(root: string, seed: number): void {
  let state = seed >>> 0 || 1;
  const next = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return state >>> 0;
  };
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789 \n';
  for (let d = 0; d < 1000; d++) {
    const dir = join(root, `d${String(d).padStart(3, '0')}`);
    mkdirSync(dir, { recursive: true });
    for (let f = 0; f < 100; f++) {
      let text = '';
      const length = 80 + (next() % 41);
      for (let i = 0; i < length; i++) text += alphabet[next() % alphabet.length];
      writeFileSync(join(dir, `f${String(f).padStart(2, '0')}.txt`), text);
    }
  }
}

interface Shape {
  title: string;
  layout: string;
  tag: string;
  blob: string;
  work: string;
  rounds: number;
  /** At most this ratio of img-unpack's time to tar's. */
  target?: number;
}

async function shape(s: Shape): Promise<void> {
  const dest = join(s.work, 'dest');
  const fresh = async () => {
    rmSync(dest, { recursive: true, force: true });
    execFileSync('sync');
  };
  const results = await compare(
    s.title,
    { name: 'tar -xzpf', command: `mkdir ${dest} && tar -xzpf ${s.blob} -C ${dest}`, prepare: fresh },
    [
      { name: 'umoci unpack', command: `umoci unpack --image ${s.layout}:${s.tag} ${dest} >/dev/null`, prepare: fresh },
      { name: 'img-unpack', command: `${process.execPath} ${TOOL} --store ${s.layout} --image ${s.tag} --dest ${dest} >/dev/null`, prepare: fresh },
    ],
    { rounds: s.rounds, env: benchEnv(), ...(s.target !== undefined ? { targets: { 'img-unpack': s.target } } : {}) },
  );
  await fresh();
  report(results);
}

function report(results: Measurement[]): void {
  const ours = results.find((r) => r.name === 'img-unpack');
  if (!ours) return;
  const rss = ours.medianPeakRssKiB / 1024;
  console.log(`img-unpack peak RSS: ${rss.toFixed(1)} MiB  (target < 150 MiB: ${rss < 150 ? 'met' : 'NOT met'})`);
}
