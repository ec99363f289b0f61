/**
 * The architecture, enforced on every import (lib/README.md): which folder of lib/ may import
 * which, that nothing in lib imports the commands or the pipe front (cli), and that ns-enter's
 * load path reaches no image transport, store, tar, overlay, ajv or explain code. The checker
 * is itself tested on a fixture with forbidden imports, so it cannot pass by reading nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from './helpers/paths.js';
import { ALLOWED, importsOf, importsOfFiles, loadPath, sourceFiles, violations } from './helpers/imports.js';

const DIST = join(REPO, 'dist');

test('lib/ is folders of the architecture, each with its README', () => {
  const entries = readdirSync(join(REPO, 'lib'));
  for (const name of entries) {
    if (name === 'README.md') continue;
    assert.ok(statSync(join(REPO, 'lib', name)).isDirectory(), `lib/${name} is a folder`);
    assert.ok(name in ALLOWED, `lib/${name} is a folder the rules know`);
    assert.ok(existsSync(join(REPO, 'lib', name, 'README.md')), `lib/${name}/README.md exists`);
  }
  assert.ok(entries.includes('core') && entries.includes('image') && entries.includes('run'));
});

test("every module of lib/ is named in its folder's README, and every folder in the README's layout", () => {
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
  const layout = readme.slice(readme.indexOf('## Layout of the code'));
  const unnamed: string[] = [];
  for (const file of sourceFiles(REPO, 'lib')) {
    const parts = file.split('/');
    const folder = parts[1] as string;
    const module = parts.slice(2).join('/').replace(/\.ts$/, '');
    const text = readFileSync(join(REPO, 'lib', folder, 'README.md'), 'utf8');
    const leaf = module.split('/').pop() as string;
    if (!text.includes(`\`${leaf}\``) && !text.includes(`\`${module}\``)) unnamed.push(`${file}: not named in lib/${folder}/README.md`);
    if (!layout.includes(`\`${folder}/\``)) unnamed.push(`lib/${folder}: not in the README's layout of the code`);
  }
  assert.deepEqual([...new Set(unnamed)], []);
});

test('every import in lib/ and tools/ follows the folder rules', () => {
  const files = [...sourceFiles(REPO, 'lib'), ...sourceFiles(REPO, 'tools')];
  const imports = importsOfFiles(REPO, files);
  assert.ok(imports.length > 100, `read ${imports.length} imports`);
  assert.ok(imports.some((i) => i.dynamic), 'dynamic imports are read too');
  assert.deepEqual(violations(imports), []);
});

test('the checker rejects a fixture with forbidden imports, static and dynamic', () => {
  const fixture = [
    ...importsOf('lib/image/bad.ts', "import { runContainer } from '../run/namespaces.js';"),
    ...importsOf('lib/layer/bad.ts', "const { mountOverlay } = await import('../mount/overlay.js');"),
    ...importsOf('lib/run/bad.ts', "import type { PipeDocument } from '../cli/document.js';"),
    ...importsOf('lib/core/bad.ts', "export { x } from '../image/model.js';"),
    ...importsOf('lib/mount/bad.ts', "import Ajv from 'ajv';"),
    ...importsOf('lib/image/ok.ts', "import { digestOf } from '../core/digest.js';"),
    ...importsOf('lib/stray.ts', "import { x } from './core/errors.js';"),
  ];
  const found = violations(fixture);
  assert.equal(found.length, 6, found.join('\n'));
  for (const bad of ['lib/image/bad.ts', 'lib/layer/bad.ts', 'lib/run/bad.ts', 'lib/core/bad.ts', 'lib/mount/bad.ts', 'lib/stray.ts']) {
    assert.ok(found.some((line) => line.startsWith(bad)), `${bad} is rejected`);
  }
});

test("ns-enter's load path reaches no image transport, store, tar, overlay, ajv or explain code", () => {
  const entry = 'tools/ns-enter.js';
  assert.ok(existsSync(join(DIST, entry)), `${entry} is built`);
  const loaded = [...loadPath(DIST, entry)];
  assert.ok(loaded.includes('lib/run/namespaces.js'), 'the load path is followed');
  const forbidden = [/^lib\/image\/transport\//, /^lib\/image\/store\//, /^lib\/layer\//, /^lib\/mount\/overlay/, /^lib\/cli\/explain/, /^package:(ajv|tar)$/];
  for (const module of loaded) assert.ok(!forbidden.some((re) => re.test(module)), `ns-enter loads ${module}`);
});
