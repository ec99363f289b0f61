/**
 * Where a command's pipe document comes from, in process: a terminal gives none, --input FILE
 * (or `-` for stdin) is read whole, an empty pipe means the stage before failed, an empty file
 * is an error, and a JSON text cut short is told apart from one that is not JSON at all.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { InputError } from '../../lib/core/errors.js';
import { EMPTY_PIPE, isPipe, parseDocument, readDocument } from '../../lib/cli/pipe.js';
import { withTempDir } from '../helpers/paths.js';

const DOC = '{"documentVersion":1}';
const stream = (chunks: Array<string | Buffer>, isTTY?: boolean) => Object.assign(Readable.from(chunks, { objectMode: true }), isTTY === undefined ? {} : { isTTY });
const inputError = (message: string) => (e: unknown) => e instanceof InputError && e.message === message;

test('a terminal on stdin is no document (nothing read); --input FILE is read even then', () =>
  withTempDir('cp-pipe-read-', async (dir) => {
    assert.equal(await readDocument({ stdin: stream([DOC], true) }), undefined);
    assert.equal(await readDocument({ stdin: stream([DOC], true), inputFile: '-' }), undefined, '- is stdin');
    const file = join(dir, 'doc.json');
    writeFileSync(file, DOC);
    assert.deepEqual(await readDocument({ stdin: stream([], true), inputFile: file }), { documentVersion: 1 });
  }));

test('stdin is read whole, in string or byte chunks; - is stdin', async () => {
  assert.deepEqual(await readDocument({ stdin: stream(['{"documentVer', Buffer.from('sion":1}')]) }), { documentVersion: 1 });
  assert.deepEqual(await readDocument({ stdin: stream([Buffer.from('{"docum'), 'entVersion":1}']), inputFile: '-' }), { documentVersion: 1 });
});

test('empty: from a pipe, the stage before failed; from a file or /dev/null, none; an empty --input file is an error', () =>
  withTempDir('cp-pipe-read-', async (dir) => {
    await assert.rejects(readDocument({ stdin: stream([' \n']), stdinIsPipe: true }), inputError(EMPTY_PIPE));
    assert.equal(await readDocument({ stdin: stream(['  ']), stdinIsPipe: false }), undefined);
    assert.equal(await readDocument({ stdin: stream([]) }), undefined);
    const empty = join(dir, 'empty.json');
    writeFileSync(empty, '\n');
    await assert.rejects(readDocument({ stdin: stream([DOC]), inputFile: empty, stdinIsPipe: true }), inputError(`input: ${empty} is empty`));
    await assert.rejects(readDocument({ stdin: stream([DOC]), inputFile: join(dir, 'missing') }), inputError(`input: cannot read ${join(dir, 'missing')}: ENOENT`));
  }));

test('a document cut short is "truncated"; one with garbage, or cut inside but followed by more, is "not a JSON document"', () => {
  for (const text of ['{"documentVersion":1', '{"documentVersion":', '{"documentVersion":1,  \n', '{"a":"b']) {
    assert.throws(() => parseDocument(text), inputError('input: truncated JSON document'), JSON.stringify(text));
  }
  for (const text of ['nope', '{"documentVersion":1}}', '  {"documentVersion" 1}', '{,"documentVersion":1}']) {
    assert.throws(() => parseDocument(text), (e: unknown) => e instanceof InputError && e.message.startsWith('input: not a JSON document ('), JSON.stringify(text));
  }
});

test('isPipe: a pipe or a socket; a file, /dev/null or a closed fd is not', () =>
  withTempDir('cp-pipe-read-', async (dir) => {
    const file = join(dir, 'f');
    writeFileSync(file, '');
    const fd = openSync(file, 'r');
    const devNull = openSync('/dev/null', 'r');
    try {
      assert.equal(isPipe(fd), false);
      assert.equal(isPipe(devNull), false);
    } finally {
      closeSync(fd);
      closeSync(devNull);
    }
    assert.equal(isPipe(fd), false, 'closed');
    const { spawnSync } = await import('node:child_process');
    const viaPipe = spawnSync(process.execPath, ['--input-type=module', '-e', `import { isPipe } from ${JSON.stringify(new URL('../../lib/cli/pipe.js', import.meta.url).href)}; console.log(isPipe(0), isPipe(1))`], { input: 'x', encoding: 'utf8', timeout: 30_000 });
    assert.equal(viaPipe.stdout.trim(), 'true true', viaPipe.stderr);
  }));
