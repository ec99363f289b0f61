/**
 * Property tests of image references (lib/image/reference.ts), from the distribution grammar:
 * parse ∘ format is the identity on valid references; any other text either parses to a
 * reference that formats and parses back to itself, or fails with one ReferenceError; a valid
 * reference made invalid in one place is refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { formatReference, parseReference, parseSource, formatSource, type ImageReference } from '../../lib/image/reference.js';
import { ReferenceError } from '../../lib/core/errors.js';
import { oneLine } from '../../lib/cli/command.js';

const alnum = fc.stringMatching(/^[a-z0-9]{1,8}$/);
const separator = fc.constantFrom('.', '_', '__', '-', '--');
/** A path component: alphanumeric runs joined by the grammar's separators. */
const pathComponent = fc.tuple(alnum, fc.array(fc.tuple(separator, alnum), { maxLength: 3 })).map(([first, rest]) => first + rest.map(([s, a]) => s + a).join(''));
const label = fc.stringMatching(/^[a-zA-Z0-9]([a-zA-Z0-9-]{0,10}[a-zA-Z0-9])?$/);
const port = fc.integer({ min: 1, max: 65535 }).map((p) => `:${p}`);
const registry = fc
  .oneof(
    fc.tuple(fc.array(label, { minLength: 2, maxLength: 4 }).map((l) => l.join('.')), fc.option(port, { nil: '' })).map(([d, p]) => d + p),
    fc.tuple(label, port).map(([d, p]) => d + p),
    fc.option(port, { nil: '' }).map((p) => `localhost${p}`),
    fc.tuple(fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 4, maxLength: 4 }), fc.option(port, { nil: '' })).map(([ip, p]) => ip.join('.') + p),
    fc.constant('docker.io'),
  )
  .filter((r) => r !== 'index.docker.io' && r !== 'registry-1.docker.io');
const tag = fc.stringMatching(/^[\w][\w.-]{0,127}$/);
const digest = fc.stringMatching(/^[a-f0-9]{64}$/).map((hex) => `sha256:${hex}`);

/** A reference in its canonical form: what parseReference returns. */
const reference: fc.Arbitrary<ImageReference> = fc
  .record({ registry, components: fc.array(pathComponent, { minLength: 1, maxLength: 4 }), tag: fc.option(tag, { nil: undefined }), digest: fc.option(digest, { nil: undefined }) })
  .map(({ registry, components, tag, digest }) => ({
    registry,
    // Docker Hub names have a namespace (busybox is library/busybox).
    repository: registry === 'docker.io' && components.length === 1 ? `library/${components[0]}` : components.join('/'),
    // With neither tag nor digest the reference means :latest.
    tag: tag === undefined && digest === undefined ? 'latest' : tag,
    digest,
  }));

test('parse ∘ format is the identity on valid references (and format ∘ parse on their text)', () => {
  fc.assert(
    fc.property(reference, (ref) => {
      const text = formatReference(ref);
      assert.deepEqual(parseReference(text), ref);
      assert.equal(formatReference(parseReference(text)), text);
      assert.deepEqual(parseSource(`docker://${text}`), { transport: 'docker', reference: ref });
      assert.equal(formatSource(parseSource(`docker://${text}`)), `docker://${text}`);
    }),
    { numRuns: 2000 },
  );
});

/** Text near the grammar: its characters, in any order. */
const nearlyReference = fc.oneof(
  fc.string({ unit: fc.constantFrom(...'aZ09.-_/:@[]'.split(''), 'sha256:', 'localhost', '..', '//'), maxLength: 30 }),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
);

test('any text: a reference that formats and parses back to itself, or one ReferenceError', () => {
  fc.assert(
    fc.property(nearlyReference, (text) => {
      let ref: ImageReference;
      try {
        ref = parseReference(text);
      } catch (err) {
        assert.ok(err instanceof ReferenceError, `a ReferenceError, not ${String(err)}`);
        // The message quotes the text; the command front shows it on one line, escaped.
        assert.match(oneLine(err.userMessage), /^[^\n\r\u001b]+$/);
        return;
      }
      assert.deepEqual(parseReference(formatReference(ref)), ref);
    }),
    { numRuns: 3000 },
  );
});

/** One place of a valid reference made invalid: each must be refused. */
const breakage = fc.constantFrom(
  (r: ImageReference) => ({ ...r, repository: `${r.repository}/UPPER` }),
  (r: ImageReference) => ({ ...r, repository: `${r.repository}/-x` }),
  (r: ImageReference) => ({ ...r, repository: `${r.repository}/` }),
  (r: ImageReference) => ({ ...r, repository: `${r.repository}//x` }),
  (r: ImageReference) => ({ ...r, tag: `-${r.tag ?? 'x'}` }),
  (r: ImageReference) => ({ ...r, tag: `${'t'.repeat(128)}x` }),
  (r: ImageReference) => ({ ...r, digest: `sha256:${'A'.repeat(64)}` }),
  (r: ImageReference) => ({ ...r, digest: `sha256:${'a'.repeat(63)}` }),
  (r: ImageReference) => ({ ...r, digest: 'sha256:../../../etc' }),
  (r: ImageReference) => ({ ...r, registry: `-${r.registry}.` }),
);

test('a valid reference broken in one place (case, separators, tag, digest, host) is refused with a ReferenceError', () => {
  fc.assert(
    fc.property(reference, breakage, (ref, brk) => {
      const text = formatReference(brk(ref));
      assert.throws(() => parseReference(text), (e: unknown) => e instanceof ReferenceError, text);
    }),
    { numRuns: 2000 },
  );
});
