/**
 * ns-enter's terminal (issue 13): under a pty of the test's own (the "user's terminal"), a
 * container with -t, or whose stdin and stdout are terminals, gets a NEW pty in its own devpts,
 * as under runc; nothing it does reaches the user's terminal (TIOCSTI), the window size
 * follows, the user's terminal is restored, Ctrl-C reaches the shell's child. runc runs the
 * same bundle side by side.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { mustExec } from '../helpers/exec.js';
import { busyboxRootfs } from '../helpers/mounts.js';
import { runOnPty } from '../helpers/pty.js';
import { tempDir, toolPath } from '../helpers/paths.js';
import { shellQuote } from '../../lib/core/shell.js';
import type { RuntimeConfig } from '../../lib/run/runtime-spec.js';

let work: { path: string; cleanup: () => Promise<void> };
let rootfs: string;
const nsEnter = `${shellQuote(process.execPath)} ${shellQuote(toolPath('ns-enter'))}`;

before(async () => {
  work = await tempDir('cp-term-');
  ({ rootfs } = await busyboxRootfs(work.path));
});

after(async () => {
  await work.cleanup();
});

/** Python run inside a container whose root is the host's, read-only: pushes a command line into every terminal it can reach. */
const INJECT = `
import fcntl, os, termios
fds = [0, 1, 2]
try:
    fds.append(os.open('/dev/tty', os.O_RDWR))
except OSError:
    pass
for fd in fds:
    try:
        for c in b'echo INJECTED\\n':
            fcntl.ioctl(fd, termios.TIOCSTI, bytes([c]))
        print('pushed on', fd)
    except OSError as e:
        print('refused on', fd, e.strerror)
`;

/** Run on the user's terminal after ns-enter exits: how many bytes wait to be read there. */
const PENDING = `
import fcntl, struct, termios
print('pending=%d' % struct.unpack('i', fcntl.ioctl(0, termios.FIONREAD, b'\\0\\0\\0\\0'))[0])
`;

describe('ns-enter: the terminal', () => {
  test('TIOCSTI from inside a -t container never reaches the user terminal, even with CAP_SYS_ADMIN; the container holds only its own pty', async () => {
    const inject = join(work.path, 'inject.py');
    const pending = join(work.path, 'pending.py');
    await writeFile(inject, INJECT);
    await writeFile(pending, PENDING);
    for (const flags of ['-t', '-t --cap-add SYS_ADMIN', '']) {
      const run = await runOnPty(`${nsEnter} --rootfs / --read-only ${flags} -- python3 ${inject}; python3 ${pending}`);
      assert.equal(run.timedOut, false, run.output);
      assert.match(run.output, /pushed on 0/, `${flags}: TIOCSTI works on the container's own terminal\n${run.output}`);
      assert.match(run.output, /pending=0/, `${flags}: nothing was pushed into the user's terminal\n${run.output}`);
    }
  });

  test('a new pty in the container devpts, owned by the user with the devpts gid, as runc gives it; the negative twin without a terminal differs', async () => {
    const bundle = join(work.path, 'tty-bundle');
    await mkdir(bundle, { recursive: true });
    await mustExec('runc', ['spec', '--bundle', bundle]);
    const config = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')) as RuntimeConfig;
    config.root = { path: rootfs, readonly: true };
    const proc = config.process as NonNullable<RuntimeConfig['process']>;
    proc.args = ['sh', '-c', 'tty; stat -c "%U %g %a" $(tty); ls /dev/pts | tr "\\n" " "; echo; stty size; test -t 0 && echo stdin-tty'];
    await writeFile(join(bundle, 'config.json'), JSON.stringify(config));
    const runc = await runOnPty(`runc run -b ${shellQuote(bundle)} cp-term-${process.pid}`, { rows: 33, cols: 101 });
    const ours = await runOnPty(`${nsEnter} --bundle ${shellQuote(bundle)}`, { rows: 33, cols: 101 });
    assert.equal(runc.status, 0, runc.output);
    assert.equal(ours.status, 0, ours.output);
    const clean = (text: string) => text.replace(/\0/g, '').replace(/\r/g, '');
    // runc sizes its console after the process starts: its `stty size` may run first and fail
    // ("stty: standard input"), so the size line is compared with the user terminal's, not runc's.
    const withoutSize = (text: string) => clean(text).replace(/^(\d+ \d+|stty: .*)\n/m, '');
    assert.equal(withoutSize(ours.output), withoutSize(runc.output));
    assert.match(clean(ours.output), /^\/dev\/pts\/0\nroot 5 620\n0 ptmx \n33 101\nstdin-tty\n$/);
    proc.terminal = false;
    await writeFile(join(bundle, 'config.json'), JSON.stringify(config));
    const twin = await runOnPty(`${nsEnter} --bundle ${shellQuote(bundle)}`, { rows: 33, cols: 101 });
    assert.notEqual(clean(twin.output), clean(runc.output), 'without process.terminal the container gets no pty of its own');
  });

  test('the window size follows the user terminal (SIGWINCH); the terminal is restored afterwards, also after death by signal', async () => {
    const resized = await runOnPty(`${nsEnter} --rootfs ${shellQuote(rootfs)} -t -- sh -c 'stty size; echo ready; read x; stty size'`, {
      rows: 33, cols: 101, steps: [{ waitFor: 'ready', resize: [40, 120], send: 'go\r' }],
    });
    assert.equal(resized.timedOut, false, resized.output);
    assert.match(resized.output, /33 101[\s\S]*40 120/);
    const modes = await runOnPty(`stty -g; ${nsEnter} --rootfs ${shellQuote(rootfs)} -t -- true; stty -g; ${nsEnter} --rootfs ${shellQuote(rootfs)} -t --init -- sh -c 'kill -KILL $$'; echo status=$?; stty -g`);
    const [beforeRun, afterRun, afterKill] = modes.output.split(/\r?\n/).filter((l) => /^[0-9a-f:]+$/.test(l));
    assert.ok(beforeRun, modes.output);
    assert.equal(afterRun, beforeRun, 'raw mode is switched off after the run');
    assert.equal(afterKill, beforeRun, 'and after the container died of a signal');
    assert.match(modes.output, /status=137/);
  });

  test('an interactive shell gets a pty without -t: Ctrl-C ends the shell child, not the container; --tty=false and a redirected stdout keep the old pass-through', async () => {
    const shell = await runOnPty(`${nsEnter} --rootfs ${shellQuote(rootfs)} -- sh -i`, {
      timeoutSeconds: 20,
      steps: [
        // The job prints "start" once it is the terminal's foreground job (the typed line echoes st''art).
        { waitFor: '# ', send: `sh -c "echo st''art; exec sleep 30"\r` },
        // Typed ahead: the shell reads it once the job is gone.
        { waitFor: 'start', send: '\x03echo "rc=$?"\r' },
        { waitFor: 'rc=130', send: 'exit 7\r' },
      ],
    });
    assert.equal(shell.timedOut, false, shell.output);
    assert.equal(shell.status, 7, shell.output);
    const listPts = `-- sh -c 'ls /dev/pts | tr "\\n" " "; echo'`;
    const auto = await runOnPty(`${nsEnter} --rootfs ${shellQuote(rootfs)} ${listPts}`);
    assert.match(auto.output, /^0 ptmx $/m, 'a pty of its own');
    for (const flags of ['--tty=false', '--no-tty']) {
      const old = await runOnPty(`${nsEnter} --rootfs ${shellQuote(rootfs)} ${flags} ${listPts}`);
      assert.match(old.output, /^ptmx $/m, `${flags}: no pty`);
    }
    const piped = await runOnPty(`${nsEnter} --rootfs ${shellQuote(rootfs)} ${listPts} | cat`);
    assert.match(piped.output, /^ptmx $/m, 'stdout a pipe: no pty (it would turn \\n into \\r\\n)');
    const dashed = await runOnPty(`${nsEnter} --rootfs ${shellQuote(rootfs)} -it -- true && ${nsEnter} --rootfs ${shellQuote(rootfs)} -i -- true && echo both-ok`);
    assert.match(dashed.output, /both-ok/, "podman's -it and -i are accepted");
  });

  test("the tutorial's pipe: the document on stdin, the shell on the reopened terminal, with a pty", async () => {
    const doc = join(work.path, 'doc.json');
    await writeFile(doc, JSON.stringify({ documentVersion: 1, rootfs: { mode: 'flat', path: rootfs } }));
    const run = await runOnPty(`cat ${shellQuote(doc)} | ${nsEnter} -- sh -c 'tty; read line; echo "read: $line"'`, { steps: [{ waitFor: '/dev/pts/0', send: 'typed\r' }] });
    assert.equal(run.timedOut, false, run.output);
    assert.match(run.output, /read: typed/);
  });
});
