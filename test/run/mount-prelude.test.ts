/**
 * ns-enter-prelude (native/ns-enter-prelude.c), the mounts made before bwrap starts: run
 * directly with a shell in its place, so that what it mounted is seen from inside its mount
 * namespace, and what it reports on the info fd (3) when a mount fails.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { mountPrelude, type PreludeStep } from '../../lib/run/mount-prelude.js';
import { mountsUnder } from '../helpers/mounts.js';
import { tempDir } from '../helpers/paths.js';

let work: Awaited<ReturnType<typeof tempDir>>;
before(async () => {
  work = await tempDir('cp-prelude-');
});
after(async () => {
  await work.cleanup();
});

/** Runs the prelude with `sh -c script` after it; fd 3 is a file, read back as `info`. */
function runPrelude(steps: PreludeStep[], script: string): { status: number | null; stdout: string; info: string } {
  const infoFile = join(work.path, `info-${Math.random().toString(36).slice(2)}`);
  writeFileSync(infoFile, '');
  const info = Buffer.from(infoFile);
  const result = spawnSync('sh', ['-c', `exec 3>"$0"; exec "$@"`, info.toString(), ...mountPrelude(steps, true), 'sh', '-c', script], { encoding: 'utf8', timeout: 30_000 });
  return { status: result.status, stdout: result.stdout, info: readFileSync(infoFile, 'utf8') };
}

function mountPoint(name: string): string {
  const path = join(work.path, name);
  mkdirSync(path);
  return path;
}

describe('ns-enter-prelude', () => {
  test('a noexec tmpfs with its data options, in a mount namespace of its own: gone on the host after it', () => {
    const target = mountPoint('tmpfs');
    const result = runPrelude([{ what: 'the tmpfs', kind: 'tmpfs', source: 'tmpfs', target, options: ['noexec', 'nosuid', 'nodev', 'mode=0750', 'size=1048576'] }], `grep " ${target} " /proc/self/mounts`);
    assert.equal(result.status, 0, result.info);
    assert.match(result.stdout, /^tmpfs \S+ tmpfs rw,nosuid,nodev,noexec,relatime,size=1024k,mode=750 /);
    assert.deepEqual(mountsUnder(work.path), []);
  });

  test('exec after noexec: the later of two opposite flags wins, as in mount(8)', () => {
    const target = mountPoint('later');
    const result = runPrelude([{ what: 'the tmpfs', kind: 'tmpfs', source: 'tmpfs', target, options: ['noexec', 'exec'] }], `grep " ${target} " /proc/self/mounts`);
    assert.equal(result.status, 0, result.info);
    assert.doesNotMatch(result.stdout, /noexec/);
    assert.match(result.stdout, / tmpfs rw,/);
  });

  test('a noexec bind keeps the source\'s other flags, and a file gets a file as its mount point', () => {
    const dir = mountPoint('bind-dir');
    const file = mountPoint('bind-file');
    const source = mountPoint('source');
    writeFileSync(join(source, 'tool'), '#!/bin/sh\necho ran\n', { mode: 0o755 });
    const steps: PreludeStep[] = [
      { what: 'the dir', kind: 'bind-noexec', source, target: dir, options: [] },
      { what: 'the file', kind: 'bind-noexec', source: join(source, 'tool'), target: file, options: [] },
    ];
    const result = runPrelude(steps, `"${dir}/tool" 2>/dev/null || echo dir refused; "${file}" 2>/dev/null || echo file refused; cat "${file}"; grep -c " ${file} .*noexec" /proc/self/mounts`);
    assert.equal(result.status, 0, result.info);
    assert.equal(result.stdout, 'dir refused\nfile refused\n#!/bin/sh\necho ran\n1\n');
  });

  test('a mount that fails is one line on the info fd, naming it and the reason, status 125, and nothing after it runs', () => {
    const target = mountPoint('bad');
    const result = runPrelude([{ what: 'mounts[3] (/scratch)', kind: 'tmpfs', source: 'tmpfs', target, options: ['noexec', 'nr_inodes=many'] }], 'echo ran');
    assert.equal(result.status, 125);
    assert.equal(result.stdout, '');
    assert.equal(result.info, 'mount-failed: mounts[3] (/scratch): tmpfs: Invalid argument\n');
  });

  test('a bind of a source that is not there fails the same way (the negative twin of the bind above)', () => {
    const target = mountPoint('gone');
    const result = runPrelude([{ what: 'the bind', kind: 'bind-noexec', source: join(work.path, 'missing'), target, options: [] }], 'echo ran');
    assert.equal(result.status, 125);
    assert.equal(result.stdout, '');
    assert.match(result.info, /^mount-failed: the bind: \S+missing: No such file or directory\n$/);
  });
});
