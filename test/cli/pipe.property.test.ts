/**
 * The pipe document as a space: random JSON (and random text) into each of the five tools
 * never crashes one: exit 2, one line on stderr naming the input, nothing on stdout, nothing
 * done. The tools run in-process (runCommand, with stdin a pipe) so hundreds of documents take
 * a second; each document is one the schema refuses (random JSON is; sections of known names
 * with random content make the refusals reach deep into the schema).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { runCommand, type CommandSpec } from '../../lib/cli/command.js';
import { memoryIo } from '../helpers/memory-io.js';
import { validateDocument } from '../../lib/cli/pipe.js';
import { imgFetch } from '../../tools/img-fetch.js';
import { imgUnpack } from '../../tools/img-unpack.js';
import { ovlMount } from '../../tools/ovl-mount.js';
import { nsEnter } from '../../tools/ns-enter.js';
import { ociSpec } from '../../tools/oci-spec.js';

interface Ran {
  status: number;
  stdout: string;
  stderr: string;
}

async function runWith<A>(spec: CommandSpec<A>, argv: string[], input: string): Promise<Ran> {
  const io = memoryIo(input, true, { ...process.env, CONTAINER_PARTS_STORE: '/nonexistent/store' });
  const status = await runCommand(spec, argv, io);
  return { status, stdout: io.out(), stderr: io.err() };
}

function isValidDocument(value: unknown): boolean {
  try {
    validateDocument(value);
    return true;
  } catch {
    return false;
  }
}

/** Each tool as a pipeline stage reads the document; img-fetch with a source that must not be reached. */
const TOOLS: Array<[CommandSpec<never>, string[]]> = [
  [imgFetch as CommandSpec<never>, ['oci:/nonexistent/layout:tag']],
  [imgUnpack as CommandSpec<never>, []],
  [ovlMount as CommandSpec<never>, []],
  [nsEnter as CommandSpec<never>, ['--', 'true']],
  [ociSpec as CommandSpec<never>, ['--bundle', '/nonexistent/bundle']],
];

const SECTIONS = ['image', 'rootfs', 'mount', 'bundle', 'container', 'layers', 'platform'];
const section = fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.dictionary(fc.constantFrom('reference', 'digest', 'store', 'layers', 'path', 'lower', 'upper', 'target', 'config', 'root', 'manifest', 'mediaType', 'size'), fc.jsonValue({ maxDepth: 2 })));
const documentLike = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }),
  fc.record({ documentVersion: fc.oneof(fc.constant(1), fc.jsonValue({ maxDepth: 1 })) }, { requiredKeys: [] }),
  fc.tuple(fc.dictionary(fc.constantFrom(...SECTIONS), section, { maxKeys: 3 }), fc.constantFrom(1, 2, '1')).map(([sections, v]) => ({ documentVersion: v, ...sections })),
);
/** A refused document as the previous stage would write it (one line), or text that is no JSON. */
const refusedInput = fc.oneof(
  documentLike
    .filter((value) => !isValidDocument(value))
    .map((value) => `${JSON.stringify(value)}\n`),
  fc.string({ maxLength: 60 }).filter((t) => t.trim() !== '' && !isJson(t)),
);

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

for (const [spec, argv] of TOOLS) {
  test(`${spec.name}: any refused document or non-JSON text is exit 2 and one line naming the input, nothing on stdout`, { timeout: 60_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(refusedInput, async (input) => {
        const ran = await runWith(spec, argv, input);
        assert.equal(ran.status, 2, ran.stderr);
        assert.equal(ran.stdout, '');
        assert.match(ran.stderr, new RegExp(`^${spec.name}: input(\\.|\\[|: |\\b)[^\\n]*\\n$`));
      }),
      { numRuns: 200 },
    );
  });
}

/** Documents the schema takes but that carry nothing a stage can use: other tools' unknown sections. */
const uselessDocument = fc
  .dictionary(fc.stringMatching(/^[a-z][a-zA-Z]{0,10}$/).filter((k) => !SECTIONS.includes(k) && k !== 'documentVersion'), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 4 })
  .map((sections) => ({ documentVersion: 1, ...sections }))
  .filter(isValidDocument);

const STAGES: Array<[CommandSpec<never>, string[]]> = [
  [imgUnpack as CommandSpec<never>, []],
  [ovlMount as CommandSpec<never>, []],
  [nsEnter as CommandSpec<never>, ['--', 'true']],
  [ociSpec as CommandSpec<never>, []],
];

for (const [spec, argv] of STAGES) {
  test(`${spec.name}: a valid document with nothing for it is exit 2 and one line, nothing on stdout`, { timeout: 60_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(uselessDocument, async (doc) => {
        const ran = await runWith(spec, argv, `${JSON.stringify(doc)}\n`);
        assert.equal(ran.status, 2, ran.stderr);
        assert.equal(ran.stdout, '');
        assert.match(ran.stderr, new RegExp(`^${spec.name}: [^\\n]+\\n$`));
      }),
      { numRuns: 100 },
    );
  });
}
