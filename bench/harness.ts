/**
 * Side-by-side benchmarks: each contender is a command line, run in the same session in
 * alternation (A B A B …) so that machine noise falls on both alike, then medians of wall
 * time and peak RSS are printed with the ratio of each contender to the reference.
 * Peak RSS is GNU time's %M (the largest process of the command's tree).
 */
import { spawn } from 'node:child_process';

export interface Contender {
  name: string;
  /** A shell command line (bash -c). */
  command: string;
  /** Untimed work before each run (e.g. a fresh destination). */
  prepare?: () => Promise<void>;
  /** Untimed work after each run (e.g. unmount). */
  cleanup?: () => Promise<void>;
}

export interface Measurement {
  name: string;
  medianSeconds: number;
  medianPeakRssKiB: number;
  runs: number;
}

export interface CompareOptions {
  rounds?: number;
  env?: NodeJS.ProcessEnv;
  /** Targets from the issue, printed beside the ratio: contender name → maximum ratio to the reference. */
  targets?: Record<string, number>;
}

/** The environment benchmarks run in: NODE_EXTRA_CA_CERTS costs every node start ~80 ms here. */
export function benchEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  delete env.NODE_EXTRA_CA_CERTS;
  return env;
}

export async function compare(title: string, reference: Contender, others: Contender[], options: CompareOptions = {}): Promise<Measurement[]> {
  const rounds = options.rounds ?? 5;
  const contenders = [reference, ...others];
  const samples = new Map<string, Array<{ seconds: number; rss: number }>>(contenders.map((c) => [c.name, []]));
  for (let round = 0; round < rounds; round++) {
    for (const contender of contenders) {
      await contender.prepare?.();
      const sample = await timeCommand(contender.command, options.env ?? benchEnv());
      await contender.cleanup?.();
      samples.get(contender.name)?.push(sample);
    }
  }
  const results = contenders.map((c) => {
    const list = samples.get(c.name) ?? [];
    return { name: c.name, medianSeconds: median(list.map((s) => s.seconds)), medianPeakRssKiB: median(list.map((s) => s.rss)), runs: list.length };
  });
  const base = results[0] as Measurement;
  console.log(`\n## ${title}  (${rounds} rounds, alternating; medians)`);
  for (const r of results) {
    const ratio = r === base ? 'reference' : `${(r.medianSeconds / base.medianSeconds).toFixed(2)}x ${base.name}`;
    const target = options.targets?.[r.name];
    const verdict = target === undefined ? '' : r.medianSeconds / base.medianSeconds <= target ? `  (target <= ${target}x: met)` : `  (target <= ${target}x: NOT met)`;
    console.log(`${r.name.padEnd(28)} ${r.medianSeconds.toFixed(3).padStart(8)} s  ${(r.medianPeakRssKiB / 1024).toFixed(1).padStart(7)} MiB peak RSS  ${ratio}${verdict}`);
  }
  return results;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Wall time by the clock here; peak RSS from GNU time, which wraps the command. */
function timeCommand(command: string, env: NodeJS.ProcessEnv): Promise<{ seconds: number; rss: number }> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn('/usr/bin/time', ['-f', '%M', 'bash', '-c', command], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (status) => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const lines = stderr.trim().split('\n');
      const rss = Number(lines[lines.length - 1]);
      if (status !== 0) return reject(new Error(`benchmark command failed (${status}): ${command}\n${stderr.trim()}`));
      resolve({ seconds, rss: Number.isFinite(rss) ? rss : 0 });
    });
  });
}
