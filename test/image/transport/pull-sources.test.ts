/**
 * Which endpoints a reference goes to under registries.conf: longest prefix, wildcards,
 * mirrors (pull-from-mirror, mirror-by-digest-only), location rewriting, blocked; and short
 * names. The plan is checked side by side with skopeo's own (its --debug "Trying to access"
 * lines, against closed ports on 127.0.0.1 so every attempt fails at once), with a negative twin.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { findRegistry, isShortName, matchPrefix, pullSources, resolveShortName } from '../../../lib/image/transport/pull-sources.js';
import { loadRegistriesConf, parseRegistriesConf, type RegistriesConf } from '../../../lib/image/transport/registries-conf.js';
import { formatReference, parseReference } from '../../../lib/image/reference.js';
import { UsageError } from '../../../lib/core/errors.js';
import { exec } from '../../helpers/exec.js';
import { tempDir } from '../../helpers/paths.js';
import { freePort } from '../../helpers/registry.js';
import { MAN_PAGE_EXAMPLE } from '../../helpers/registries-conf.js';

function conf(text: string): RegistriesConf {
  const file = parseRegistriesConf(text, '/c/registries.conf', { dropIn: false, warn: () => undefined });
  return { registries: file.registries, searchRegistries: file.searchRegistries ?? [], searchOrigin: file.searchRegistries ? file.file : undefined, shortNameMode: file.shortNameMode, aliases: new Map([...file.aliases].map(([k, v]) => [k, { value: v, origin: file.file }])), files: [file.file] };
}

const plan = (c: RegistriesConf, ref: string) => pullSources(c, parseReference(ref)).map((s) => `${formatReference(s.reference)}${s.insecure ? ' insecure' : ''}${s.blocked ? ' blocked' : ''}`);

describe('prefixes', () => {
  test("matchPrefix: the prefix, then the end or : / @ (containers/image's table)", () => {
    const cases: Array<[string, string, number]> = [
      ['example.com', 'example.com', 11],
      ['example.com/foo', 'example.com', 11],
      ['example.com:5000/foo', 'example.com', 11],
      ['example.com@sha256:00', 'example.com', 11],
      ['example.comx/foo', 'example.com', -1],
      ['example.co', 'example.com', -1],
      ['example.com/foo/bar', 'example.com/foo', 15],
      ['example.com/foobar', 'example.com/foo', -1],
      ['a.example.com/foo', '*.example.com', 13],
      ['a.b.example.com:5000/foo', '*.example.com', 15],
      ['example.com/foo', '*.example.com', -1],
      ['x.io/a.example.com/foo', '*.example.com', -1],
      ['a.example.community/foo', '*.example.com', -1],
    ];
    for (const [ref, prefix, expected] of cases) assert.equal(matchPrefix(ref, prefix), expected, `${ref} ~ ${prefix}`);
  });

  test('the longest matching prefix wins, whatever the order of the tables', () => {
    const c = conf('[[registry]]\nlocation = "x.io/lab"\n[[registry]]\nlocation = "x.io"\n[[registry]]\nprefix = "*.io"\nlocation = ""\n');
    assert.equal(findRegistry(c, 'x.io/lab/busybox')?.prefix, 'x.io/lab');
    assert.equal(findRegistry(c, 'x.io/other/busybox')?.prefix, 'x.io');
    assert.equal(findRegistry(c, 'y.io/busybox')?.prefix, '*.io');
    assert.equal(findRegistry(c, 'y.com/busybox'), undefined);
  });
});

describe('pull sources', () => {
  const c = conf(`${MAN_PAGE_EXAMPLE}
[[registry]]
location = "filtered.io"
[[registry.mirror]]
location = "mirror-all.local/f"
[[registry.mirror]]
location = "mirror-digests.local/f"
pull-from-mirror = "digest-only"
[[registry.mirror]]
location = "mirror-tags.local/f"
pull-from-mirror = "tag-only"
[[registry]]
location = "pinned.io"
mirror-by-digest-only = true
[[registry.mirror]]
location = "pinned-mirror.io"
[[registry]]
location = "blocked.io"
blocked = true
[[registry.mirror]]
location = "open-mirror.io/blocked"
[[registry]]
prefix = "*.wild.io"
location = ""
insecure = true
[[registry.mirror]]
location = "wild-mirror.io/all"
`);
  const digest = `sha256:${'a'.repeat(64)}`;

  test("the man page's example: the mirrors in order, then the rewritten location; per-mirror insecure", () => {
    assert.deepEqual(plan(c, 'example.com/foo/image:latest'), ['example-mirror-0.local/mirror-for-foo/image:latest', 'example-mirror-1.local/mirrors/foo/image:latest insecure', 'internal-registry-for-example.com/bar/image:latest']);
    assert.deepEqual(plan(c, 'registry.com/image:latest'), ['mirror.registry.com/image:latest', 'registry.com/image:latest'], "another table's mirrors only");
  });

  test('pull-from-mirror: digest-only mirrors for digests, tag-only for tags', () => {
    assert.deepEqual(plan(c, 'filtered.io/image:1'), ['mirror-all.local/f/image:1', 'mirror-tags.local/f/image:1', 'filtered.io/image:1']);
    assert.deepEqual(plan(c, `filtered.io/image@${digest}`), [`mirror-all.local/f/image@${digest}`, `mirror-digests.local/f/image@${digest}`, `filtered.io/image@${digest}`]);
  });

  test('mirror-by-digest-only: mirrors only for a digest', () => {
    assert.deepEqual(plan(c, 'pinned.io/a:1'), ['pinned.io/a:1']);
    assert.deepEqual(plan(c, `pinned.io/a@${digest}`), [`pinned-mirror.io/a@${digest}`, `pinned.io/a@${digest}`]);
  });

  test('blocked: the blocked location is refused, a mirror outside the blocked prefix is not', () => {
    assert.deepEqual(plan(c, 'blocked.io/a:1'), ['open-mirror.io/blocked/a:1', 'blocked.io/a:1 blocked']);
    assert.match(pullSources(c, parseReference('blocked.io/a:1'))[1]?.blocked ?? '', /^blocked\.io\/a:1: registry "blocked\.io" is blocked in \/c\/registries\.conf$/);
  });

  test('a wildcard table with no location keeps the reference, and applies its settings and mirrors', () => {
    assert.deepEqual(plan(c, 'a.b.wild.io/x:1'), ['wild-mirror.io/all/x:1', 'a.b.wild.io/x:1 insecure']);
  });

  test('no table: the reference as it is; docker.io names are matched with library/', () => {
    assert.deepEqual(plan(c, 'quay.io/a/b:1'), ['quay.io/a/b:1']);
    const hub = conf('[[registry]]\nprefix = "docker.io/library/busybox"\nlocation = "127.0.0.1:5000/hub/busybox"\n');
    assert.deepEqual(plan(hub, 'busybox'), ['127.0.0.1:5000/hub/busybox:latest']);
    assert.deepEqual(plan(hub, 'docker.io/busybox:1'), ['127.0.0.1:5000/hub/busybox:1']);
  });

  test('a rewrite that makes no valid reference is one line naming the table', () => {
    const bad = conf('[[registry]]\nprefix = "x.io/lab"\nlocation = "y.io/UPPER"\n');
    assert.throws(() => pullSources(bad, parseReference('x.io/lab/a:1')), (err: Error) => err instanceof UsageError && /^\/c\/registries\.conf: prefix "x\.io\/lab" → location "y\.io\/UPPER" turns x\.io\/lab\/a:1 into y\.io\/UPPER\/a:1, not a valid reference$/.test(err.message));
  });
});

describe('short names', () => {
  test('a short name has no registry host in front', () => {
    for (const name of ['busybox', 'busybox:1.36', `busybox@sha256:${'a'.repeat(64)}`, 'library/busybox', 'lab/tools/busybox:1']) assert.equal(isShortName(name), true, name);
    for (const name of ['docker.io/busybox', 'localhost/busybox', '127.0.0.1:5000/busybox', 'localhost:5000/a', '[::1]:5000/a']) assert.equal(isShortName(name), false, name);
  });

  const names = (text: string, c: RegistriesConf) => resolveShortName(c, text).candidates.map(formatReference);

  test('an alias wins, with the tag or digest of the name', () => {
    const c = conf('unqualified-search-registries = ["a.io", "b.io"]\nshort-name-mode = "enforcing"\n[aliases]\n"tools/bb" = "c.io/lab/busybox"\n');
    assert.deepEqual(names('tools/bb:1.36', c), ['c.io/lab/busybox:1.36']);
    assert.deepEqual(names('tools/bb', c), ['c.io/lab/busybox:latest']);
    assert.match(resolveShortName(c, 'tools/bb').description, /as an alias \(\/c\/registries\.conf\)/);
  });

  test('one search registry: no ambiguity, even when enforcing', () => {
    assert.deepEqual(names('busybox', conf('unqualified-search-registries = ["127.0.0.1:5000"]\nshort-name-mode = "enforcing"\n')), ['127.0.0.1:5000/busybox:latest']);
  });

  test('two search registries: permissive (the default) and disabled try both in order; enforcing is an error listing them', () => {
    const two = 'unqualified-search-registries = ["a.io", "docker.io"]\n';
    assert.deepEqual(names('busybox', conf(two)), ['a.io/busybox:latest', 'docker.io/library/busybox:latest']);
    assert.deepEqual(names('busybox:1', conf(`${two}short-name-mode = "disabled"\n`)), ['a.io/busybox:1', 'docker.io/library/busybox:1']);
    assert.throws(() => resolveShortName(conf(`${two}short-name-mode = "enforcing"\n`), 'busybox'), (err: Error) => err instanceof UsageError && err.message === 'short name "busybox" is ambiguous with short-name-mode = "enforcing" (/c/registries.conf): it could be a.io/busybox:latest or docker.io/library/busybox:latest; give the full name');
  });

  test('no search registries and no alias: Docker Hub, as docker and skopeo read a bare name', () => {
    assert.deepEqual(names('busybox', conf('')), ['docker.io/library/busybox:latest']);
  });

  test('an empty search list that a file sets, and no alias: refused, as podman refuses it (not Docker Hub)', () => {
    assert.throws(() => resolveShortName(conf('unqualified-search-registries = []\n'), 'lab/x:1'), (err: Error) => err instanceof UsageError && err.message === 'short name "lab/x" has no alias and unqualified-search-registries is empty in /c/registries.conf; give the full name (e.g. docker.io/lab/x)');
    assert.deepEqual(names('x', conf('unqualified-search-registries = []\n[aliases]\n"x" = "a.io/y/x"\n')), ['a.io/y/x:latest']);
  });
});

describe('side by side with skopeo', () => {
  let work: { path: string; cleanup: () => Promise<void> };
  let ports: number[];
  before(async () => {
    work = await tempDir('cp-pullsrc-');
    await mkdir(join(work.path, 'home'));
    // Free ports: nothing listens on them, so each of skopeo's attempts is refused at once.
    ports = [await freePort(), await freePort(), await freePort(), await freePort()];
  });
  after(async () => {
    await work?.cleanup();
  });

  let files = 0;
  /** skopeo's attempts for `ref` under `text`: each reference it tried, and whether it was blocked. */
  async function skopeoPlan(text: string, ref: string): Promise<string[]> {
    const file = join(work.path, `r${++files}.conf`);
    await writeFile(file, text);
    const result = await exec('skopeo', ['--debug', '--registries-conf', file, 'inspect', '--raw', `docker://${ref}`], { env: { HOME: join(work.path, 'home') }, timeoutMs: 60_000 });
    assert.notEqual(result.status, 0);
    const tried = [...result.stderr.matchAll(/Trying to access \\"(.*?)\\"/g)].map((m) => m[1] as string);
    const blocked = new Set([...result.stderr.matchAll(/Accessing \\"(.*?)\\" failed: registry \S+ is blocked/g)].map((m) => m[1] as string));
    return tried.map((r) => `${r}${blocked.has(r) ? ' blocked' : ''}`);
  }
  /** Ours, without the insecure marks skopeo does not print. */
  async function ourPlan(text: string, ref: string): Promise<string[]> {
    const file = join(work.path, `o${++files}.conf`);
    await writeFile(file, text);
    const c = await loadRegistriesConf({ path: file, env: { HOME: join(work.path, 'home'), CONTAINERS_REGISTRIES_CONF_D: '' } });
    return pullSources(c, parseReference(ref)).map((s) => `${formatReference(s.reference)}${s.blocked ? ' blocked' : ''}`);
  }

  test('the same endpoints in the same order for tags and digests, mirrors, rewrites, wildcards and blocked registries', async () => {
    const [a, b, m1, m2] = ports as [number, number, number, number];
    const digest = `sha256:${'b'.repeat(64)}`;
    const text = `[[registry]]
prefix = "127.0.0.1:${a}/lab"
location = "127.0.0.1:${b}/moved/lab"
[[registry.mirror]]
location = "127.0.0.1:${m1}/m1"
[[registry.mirror]]
location = "127.0.0.1:${m2}/m2"
pull-from-mirror = "digest-only"
[[registry]]
location = "127.0.0.1:${a}"
blocked = true
[[registry.mirror]]
location = "127.0.0.1:${m2}/m2-of-a"
[[registry]]
prefix = "docker.io/library/busybox"
location = "127.0.0.1:${b}/hub/busybox"
[[registry]]
prefix = "*.0.0.1"
location = ""
[[registry.mirror]]
location = "127.0.0.1:${m1}/wild"
`;
    const refs = [`127.0.0.1:${a}/lab/busybox:latest`, `127.0.0.1:${a}/lab/busybox@${digest}`, `127.0.0.1:${a}/other/busybox:1`, 'busybox'];
    for (const ref of refs) assert.deepEqual(await ourPlan(text, ref), await skopeoPlan(text, ref), ref);
    // The wildcard matches 127.0.0.1 but its mirror's rewrite keeps the port after the mirror's path: both refuse it.
    await assert.rejects(ourPlan(text, `127.0.0.1:${b}/x/y:2`), /not a valid reference/);
    await writeFile(join(work.path, 'wild.conf'), text);
    assert.match((await exec('skopeo', ['--registries-conf', join(work.path, 'wild.conf'), 'inspect', '--raw', `docker://127.0.0.1:${b}/x/y:2`], { env: { HOME: join(work.path, 'home') } })).stderr, /rewriting reference: invalid reference format/);
    // The negative twin: the mirrors swapped in our file only must give another plan than skopeo's.
    const swapped = text.replace(`location = "127.0.0.1:${m1}/m1"`, 'location = "SWAP"').replace(`location = "127.0.0.1:${m2}/m2"\n`, `location = "127.0.0.1:${m1}/m1"\n`).replace('location = "SWAP"', `location = "127.0.0.1:${m2}/m2"`);
    assert.notDeepEqual(await ourPlan(swapped, refs[1] as string), await skopeoPlan(text, refs[1] as string));
  });
});
