/** The manners every command shares: --help with purpose and examples, --version, completion, a man page. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO, TOOLS } from '../helpers/paths.js';
import { tool } from '../helpers/exec.js';

const version = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).version as string;
const tools = readdirSync(TOOLS)
  .filter((f) => f.endsWith('.js'))
  .map((f) => f.slice(0, -3));

test('the commands are built', () => {
  assert.ok(tools.includes('img-fetch'), `${TOOLS} has ${tools.join(', ')}`);
});

for (const name of tools) {
  test(`${name} --help: purpose, flags and examples; exit 0, nothing else done`, async () => {
    const result = await tool(name, ['--help']);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /Options:/);
    assert.match(result.stdout, /--debug/);
    assert.match(result.stdout, /Examples:/);
    assert.equal(result.stderr, '');
  });

  test(`${name} --version and completion`, async () => {
    const v = await tool(name, ['--version']);
    assert.equal(v.status, 0);
    assert.equal(v.stdout.trim(), version);
    const c = await tool(name, ['completion']);
    assert.equal(c.status, 0);
    assert.match(c.stdout, new RegExp(`complete .*-F _${name}_yargs_completions ${name}`));
  });

  test(`${name} has a man page made from its flags`, () => {
    const page = join(REPO, 'dist', 'man', `${name}.1`);
    assert.ok(existsSync(page), page);
    const text = readFileSync(page, 'utf8');
    assert.match(text, new RegExp(`^\\.TH ${name.toUpperCase()} 1`));
    assert.match(text, /\\-\\-debug/);
  });

  test(`${name} refuses an unknown flag with one line and exit 2`, async () => {
    const result = await tool(name, ['--bogus-flag']);
    assert.equal(result.status, 2);
    assert.equal(result.stdout, '');
    assert.match(result.stderr, new RegExp(`^${name}: Unknown argument: bogus-flag\\n$`));
  });
}
