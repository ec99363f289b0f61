/**
 * The labs (docs/labs/NNN-*.md) cannot rot: each lab's ```sh blocks run in order, in one bash
 * with `set -euo pipefail`, against a registry this test starts with the lab images pushed by
 * the repo's own script. The lab sets itself up as a student does (eval "$(scripts/lab-env.sh)");
 * the test only points REGISTRY and LAB elsewhere. docs/Makefile.example runs too, twice: the
 * second run must do nothing. Whatever a lab leaves behind (mounts, runc containers) goes in
 * after(), even when a lab fails.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { exec, type ExecResult } from './helpers/exec.js';
import { mountsUnder } from './helpers/mounts.js';
import { REPO, SCRIPTS, tempDir } from './helpers/paths.js';
import { pushBusybox, startRegistry, type TestRegistry } from './helpers/registry.js';

const LABS = join(REPO, 'docs', 'labs');

/** The fenced ```sh blocks of a Markdown page, in order (```text blocks are for reading only). */
function shellBlocks(markdown: string): string[] {
  const blocks: string[] = [];
  let current: string[] | undefined;
  for (const line of markdown.split('\n')) {
    if (current === undefined) {
      if (/^```sh\s*$/.test(line)) current = [];
    } else if (/^```\s*$/.test(line)) {
      blocks.push(current.join('\n'));
      current = undefined;
    } else {
      current.push(line);
    }
  }
  assert.equal(current, undefined, 'a ```sh block is not closed');
  return blocks;
}

/**
 * What a block promises to show, which `set -e` does not check: the message of a check written
 * `CHECK && echo "same tree"` or `CHECK || echo "ROOTFS is unmounted"` (a failed CHECK before
 * `&&` does not stop the script; it only leaves the message out), and `# shows: TEXT` lines.
 */
function promisedOutput(block: string): string[] {
  const promised: string[] = [];
  for (const line of block.split('\n')) {
    const echoed = /(?:&&|\|\|)\s*echo\s+"([^"$`\\]+)"\s*$/.exec(line);
    if (echoed) promised.push(echoed[1] as string);
    const shows = /#\s*shows:\s*(.+?)\s*$/.exec(line);
    if (shows) promised.push(shows[1] as string);
  }
  return promised;
}

const BLOCK_MARK = '@@lab-block ';

/** stdout cut at the markers echoed before each block. */
function outputByBlock(stdout: string, count: number): string[] {
  const outputs = Array.from({ length: count }, () => '');
  let current = -1;
  for (const line of stdout.split('\n')) {
    if (line.startsWith(BLOCK_MARK)) current = Number(line.slice(BLOCK_MARK.length));
    else if (current >= 0) outputs[current] += `${line}\n`;
  }
  return outputs;
}

const labPages = readdirSync(LABS)
  .filter((f) => /^\d{3}-.*\.md$/.test(f))
  .sort();

let registry: TestRegistry;
let work: { path: string; cleanup: () => Promise<void> };

before(async () => {
  work = await tempDir('cp-labs-');
  // Lab 002 shows an unprivileged user (nobody) refused by a root-owned dir: it must reach the lab's dirs first.
  chmodSync(work.path, 0o755);
  registry = await startRegistry();
  await pushBusybox(join(work.path, 'build'), [`docker://${registry.host}/lab/busybox:latest`]);
});

after(async () => {
  // lab-clean: runc containers whose bundle is under the dir, then every mount, then the dir.
  if (work) {
    await exec(join(SCRIPTS, 'lab-clean.sh'), [work.path]);
    const left = mountsUnder(work.path);
    for (const mountPoint of left) await exec('umount', ['-l', mountPoint]);
    await work.cleanup();
    assert.deepEqual(left, [], 'a lab left mounts behind');
  }
  await registry?.stop();
});

/** Runs a script the way a student's shell would after eval "$(scripts/lab-env.sh)", from the checkout. */
function runLabScript(script: string, lab: string, timeoutMs: number): Promise<ExecResult> {
  return exec('bash', ['-c', `set -euo pipefail\nPS4='+ line $LINENO: '\nset -x\n${script}`], {
    cwd: REPO,
    env: { REGISTRY: registry.host, LAB: lab, CONTAINER_PARTS_STORE: undefined, XDG_DATA_HOME: join(lab, 'xdg') },
    timeoutMs,
  });
}

function failure(result: ExecResult): string {
  const tail = (text: string) => text.trimEnd().split('\n').slice(-40).join('\n');
  return `exit ${result.status ?? result.signal}\n--- stdout (tail)\n${tail(result.stdout)}\n--- stderr (tail, with the trace)\n${tail(result.stderr)}`;
}

test('what a lab promises to show is read from its checks and # shows: lines', () => {
  const block = ['diff -r a b && echo "same tree"', 'findmnt X || echo "X is unmounted"', 'mkdir -p d && echo "data" > d/f', 'ls LOWER    # shows: bin', 'test -e x && echo "$HOME"'].join('\n');
  assert.deepEqual(promisedOutput(block), ['same tree', 'X is unmounted', 'bin']);
  assert.deepEqual(outputByBlock(`${BLOCK_MARK}0\nfirst\n${BLOCK_MARK}1\nsecond\nthird\n`, 2), ['first\n', 'second\nthird\n\n']);
});

test('every seed tutorial has its lab', () => {
  assert.deepEqual(labPages.map((f) => f.slice(0, 3)), ['000', '001', '002', '003', '004']);
  const index = readFileSync(join(LABS, 'README.md'), 'utf8');
  for (const page of labPages) assert.ok(index.includes(`(${page})`), `docs/labs/README.md links ${page}`);
});

for (const page of labPages) {
  test(`lab ${page}: its sh blocks run green, in order, and leave no mount behind`, async () => {
    const markdown = readFileSync(join(LABS, page), 'utf8');
    const blocks = shellBlocks(markdown);
    assert.ok(blocks.length > 0, `${page} has no sh block`);
    assert.match(blocks[0] as string, /eval "\$\(scripts\/lab-env\.sh\)"/, `${page} starts with the lab environment`);
    const lab = join(work.path, page.slice(0, 3));
    const result = await runLabScript(blocks.map((block, i) => `echo "${BLOCK_MARK}${i}"\n${block}`).join('\n'), lab, 600_000);
    assert.equal(result.status, 0, failure(result));
    const outputs = outputByBlock(result.stdout, blocks.length);
    blocks.forEach((block, i) => {
      for (const shown of promisedOutput(block)) assert.ok(outputs[i]?.includes(shown), `${page}, sh block ${i + 1}: the lab says it shows "${shown}"; its output:\n${outputs[i]}`);
    });
    assert.deepEqual(mountsUnder(lab), [], `${page} must unmount what it mounted`);
    // runc prints null, not [], when it has no containers.
    const containers = (JSON.parse((await exec('runc', ['list', '--format', 'json'])).stdout || 'null') ?? []) as Array<{ id: string; bundle: string }>;
    const ours = containers.filter((c) => c.bundle.startsWith(`${lab}/`));
    assert.deepEqual(ours.map((c) => c.id), [], `${page} must delete its runc containers`);
  });
}

test('docs/Makefile.example: image -> rootfs -> bundle; the second make does nothing; make run runs the bundle', async () => {
  const lab = join(work.path, 'make');
  const out = join(lab, 'build');
  const make = (target: string, extra = '') =>
    runLabScript(`eval "$(scripts/lab-env.sh)"\nmake --no-print-directory -f docs/Makefile.example IMAGE=docker://$REGISTRY/lab/busybox:latest OUT=${out} ${extra} ${target}`, lab, 300_000);
  const first = await make('all');
  assert.equal(first.status, 0, failure(first));
  for (const file of ['image.json', 'rootfs.json', 'bundle/config.json']) assert.ok(readFileSync(join(out, file)).length > 0, file);

  const second = await make('all');
  assert.equal(second.status, 0, failure(second));
  assert.match(second.stdout, /Nothing to be done for 'all'/);
  assert.doesNotMatch(second.stdout, /img-fetch|img-unpack|oci-spec/, 'the second make ran a command');
  const question = await make('all', '-q');
  assert.equal(question.status, 0, 'make -q: everything up to date');

  // Only what depends on a changed file is rebuilt: a newer image document rebuilds the rootfs and the bundle.
  const touched = await runLabScript(`touch ${join(out, 'image.json')}`, lab, 10_000);
  assert.equal(touched.status, 0);
  const third = await make('all');
  assert.equal(third.status, 0, failure(third));
  assert.doesNotMatch(third.stdout, /img-fetch/);
  assert.match(third.stdout, /img-unpack/);
  assert.match(third.stdout, /oci-spec/);

  const run = await make('run');
  assert.equal(run.status, 0, failure(run));
  assert.match(run.stdout, /hello from the bundle/);
});
