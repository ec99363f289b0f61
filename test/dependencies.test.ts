/**
 * Which modules may import which, like go-containerregistry's test that forbids crane from
 * importing the daemon package: fetching and unpacking never reach the namespace code, and the
 * hot path of ns-enter never loads the network or tar code.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { REPO } from './helpers/paths.js';

const DIST = join(REPO, 'dist');

/** Every module reachable from `entry` by static imports: project files by path, packages by name. */
function importGraph(entry: string): Set<string> {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const source = readFileSync(file, 'utf8');
    for (const match of source.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+['"]([^'"]+)['"]/gm)) {
      const specifier = match[1] as string;
      if (specifier.startsWith('.')) visit(resolve(dirname(file), specifier));
      else seen.add(`package:${specifier.replace(/^node:/, 'node:')}`);
    }
  };
  visit(entry);
  return seen;
}

function reachable(entry: string): string[] {
  return [...importGraph(join(DIST, entry))].map((m) => (m.startsWith('package:') ? m : m.slice(DIST.length + 1)));
}

const NAMESPACE_CODE = ['lib/namespaces.js', 'lib/overlay.js', 'lib/cgroups.js'];

test('fetch and layer code never import the namespace code', () => {
  for (const entry of ['lib/fetch.js', 'lib/layer.js', 'lib/unpack.js', 'tools/img-fetch.js', 'tools/img-unpack.js']) {
    assert.ok(existsSync(join(DIST, entry)), `${entry} is built`);
    const graph = reachable(entry);
    for (const forbidden of NAMESPACE_CODE) assert.ok(!graph.includes(forbidden), `${entry} reaches ${forbidden}`);
  }
});

test("ns-enter's hot path loads no registry, tar or fetch code", () => {
  const entry = 'tools/ns-enter.js';
  assert.ok(existsSync(join(DIST, entry)), `${entry} is built`);
  const graph = reachable(entry);
  for (const forbidden of ['lib/fetch.js', 'lib/registry.js', 'lib/layer.js', 'package:node-fetch', 'package:tar']) {
    assert.ok(!graph.includes(forbidden), `${entry} reaches ${forbidden}`);
  }
});
