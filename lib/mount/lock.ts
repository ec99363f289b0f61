/**
 * The mount lock: one ovl-mount at a time checks and mounts (or unmounts) under a state root,
 * so three at once on one target mount once, and two on one upper dir mount it once. An
 * flock(2) held by util-linux flock(1) for us (node has no flock): the kernel drops it when
 * the holder goes, so a kill -9 leaves no stale lock. lib/core has no lock of this kind yet;
 * this one moves there when it does.
 */
import { spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { HostError } from '../core/errors.js';
import { findProgram } from '../core/host.js';

/** A mount takes well under a second; a holder this long is stuck (a hung FUSE daemon, a stopped process). */
const WAIT_SECONDS = 60;

export async function withMountLock<T>(stateRoot: string, fn: () => Promise<T>): Promise<T> {
  await mkdir(stateRoot, { recursive: true });
  const release = await acquire(join(stateRoot, '.lock'));
  try {
    return await fn();
  } finally {
    await release();
  }
}

/** Starts `flock FILE cat`-alike that prints a line once it holds the lock and holds it until its stdin closes. */
function acquire(file: string): Promise<() => Promise<void>> {
  const child = spawn(findProgram('flock'), ['--exclusive', '--close', '--wait', String(WAIT_SECONDS), file, '-c', 'echo locked; exec cat > /dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const exited = new Promise<void>((done) => child.once('close', () => done()));
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += String(d)));
  return new Promise((resolveLock, reject) => {
    child.once('error', (err) => reject(new HostError(`cannot lock ${file}: ${err.message}`)));
    child.stdout.once('data', () => resolveLock(async () => {
      child.stdin.end();
      await exited;
    }));
    child.once('close', (code) => {
      if (code === 1 && stderr === '') reject(new HostError(`another ovl-mount has held ${file} for ${WAIT_SECONDS} s`, { hint: `see which: fuser -v ${file}` }));
      else reject(new HostError(`cannot lock ${file}: ${stderr.trim() || `flock exited ${code}`}`));
    });
  });
}
