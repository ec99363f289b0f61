/** The shape rules of lib/ (lib/README.md), on every file, and the checker on a fixture it must reject. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { REPO } from './helpers/paths.js';
import { sourceFiles } from './helpers/imports.js';
import { shapeViolations, shapeViolationsOfFiles } from './helpers/code-shape.js';

test('no file in lib/ over 400 lines, no function over 60 lines or with five parameters', () => {
  const files = sourceFiles(REPO, 'lib');
  assert.ok(files.length > 30, `read ${files.length} files`);
  assert.deepEqual(shapeViolationsOfFiles(REPO, files), []);
});

test('the shape checker rejects a long file, a long function and a long parameter list', () => {
  const longBody = Array.from({ length: 61 }, (_, i) => `  const v${i} = ${i};`).join('\n');
  const fixture = [
    `export function long(): void {\n${longBody}\n}`,
    'export const arrow = (a: number, b: number, c: number, d: number, e: number) => a + b + c + d + e;',
    'class C { method(a: number, b: number, c: number, d: number): number { return a + b + c + d; } }',
    ...Array.from({ length: 340 }, () => '// filler'),
  ].join('\n');
  const found = shapeViolations('lib/core/fixture.ts', fixture);
  assert.equal(found.length, 3, found.join('\n'));
  assert.match(found[0] ?? '', /fixture\.ts: \d+ lines/);
  assert.ok(found.some((l) => /:1 long: 63 lines/.test(l)), found.join('\n'));
  assert.ok(found.some((l) => /arrow: 5 parameters/.test(l)), found.join('\n'));
});
