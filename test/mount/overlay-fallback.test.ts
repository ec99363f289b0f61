/**
 * README: as root, ovl-mount falls back from the kernel's overlay to fuse-overlayfs when the
 * kernel mount fails. The failure is made with a `mount` on PATH that refuses `-t overlay` (as
 * a kernel without overlay, or one that refuses the upper, does) and runs the real mount(8)
 * for everything else.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertOneLineError, tool } from '../helpers/exec.js';
import { tempDir } from '../helpers/paths.js';
import { unmountLeftovers } from '../helpers/mounts.js';
import type { PipeDocument } from '../../lib/cli/document.js';

let work: { path: string; cleanup: () => Promise<void> };
let env: NodeJS.ProcessEnv;
before(async () => {
  work = await tempDir('cp-overlay-fallback-');
  const bin = join(work.path, 'bin');
  await mkdir(bin);
  const refusals = join(work.path, 'refused');
  await writeFile(
    join(bin, 'mount'),
    `#!/bin/sh\ncase " $* " in *" -t overlay "*) echo "$*" >> ${JSON.stringify(refusals)}; echo "mount: $(eval echo \\\${$#}): wrong fs type, bad option, bad superblock on overlay, missing codepage or helper program, or other error." >&2; exit 32;; esac\nexec /usr/bin/mount "$@"\n`,
  );
  await chmod(join(bin, 'mount'), 0o755);
  env = { PATH: `${bin}:${process.env.PATH}` };
});
after(async () => {
  if (work) await unmountLeftovers(work.path);
  await work?.cleanup();
});

function fstypeOf(target: string): string | undefined {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' '))
    .find((fields) => fields[4] === target)
    ?.at(-3);
}

test('the kernel mount refused: fuse-overlayfs mounts it, the document says so, writes land in upper', async () => {
  const [lower, upper, workdir, target] = ['lower', 'upper', 'work', 'merged'].map((d) => join(work.path, d)) as [string, string, string, string];
  await mkdir(lower);
  await writeFile(join(lower, 'from-lower'), 'lower\n');
  const mounted = await tool('ovl-mount', ['--lower', lower, '--upper', upper, '--work', workdir, '--target', target], { env });
  assert.equal(mounted.status, 0, mounted.stderr);
  try {
    const doc = JSON.parse(mounted.stdout) as PipeDocument;
    assert.equal(doc.mount?.driver, 'fuse-overlayfs');
    assert.match(await readFile(join(work.path, 'refused'), 'utf8'), /-t overlay/, 'the kernel overlay was tried first');
    assert.match(fstypeOf(target) ?? '', /^fuse/, `a FUSE mount at ${target}`);
    assert.equal(await readFile(join(target, 'from-lower'), 'utf8'), 'lower\n');
    await writeFile(join(target, 'new'), 'new\n');
    assert.equal(await readFile(join(upper, 'new'), 'utf8'), 'new\n');
  } finally {
    const unmounted = await tool('ovl-mount', ['--unmount', target], { env });
    assert.equal(unmounted.status, 0, unmounted.stderr);
  }
  assert.equal(fstypeOf(target), undefined, 'unmounted');
});

test('--driver kernel does not fall back: one line naming the kernel failure, nothing mounted', async () => {
  const [lower, target] = [join(work.path, 'lower2'), join(work.path, 'merged2')];
  await mkdir(lower);
  const result = await tool('ovl-mount', ['--driver', 'kernel', '--lower', lower, '--target', target], { env });
  assertOneLineError(result, 'ovl-mount', 1, /mount -t overlay failed/);
  assert.equal(fstypeOf(target), undefined);
});
