/**
 * registries.conf as containers-registries.conf(5) and .conf.d(5) say and containers/image
 * reads it: where it is looked for, drop-ins merged in order, the v1 format, and every mistake
 * as one line `FILE:LINE: what is wrong`; an unknown key is a warning, once.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, readdir, readFile, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { keyLines, loadRegistriesConf, parseRegistriesConf, registriesConfPaths } from '../../../lib/image/transport/registries-conf.js';
import { UsageError } from '../../../lib/core/errors.js';
import { tempDir } from '../../helpers/paths.js';
import { MAN_PAGE_EXAMPLE } from '../../helpers/registries-conf.js';

let work: { path: string; cleanup: () => Promise<void> };
before(async () => {
  work = await tempDir('cp-regconf-');
});
after(async () => {
  await work?.cleanup();
});

const parse = (text: string, dropIn = false) => {
  const warnings: string[] = [];
  const conf = parseRegistriesConf(text, '/c/registries.conf', { dropIn, warn: (m) => warnings.push(m) });
  return { conf, warnings };
};

/** The one-line error of a file, or undefined when it parses. */
function errorOf(text: string, dropIn = false): string | undefined {
  try {
    parse(text, dropIn);
    return undefined;
  } catch (err) {
    assert.ok(err instanceof UsageError, String(err));
    assert.ok(!err.message.includes('\n'), `one line: ${err.message}`);
    return err.message;
  }
}

describe('one file', () => {
  test("the man page's example", () => {
    const { conf, warnings } = parse(MAN_PAGE_EXAMPLE);
    assert.deepEqual(warnings, []);
    assert.deepEqual(conf.searchRegistries, ['example.com']);
    assert.deepEqual(conf.registries.map((r) => [r.prefix, r.location, r.mirrors.map((m) => `${m.location}${m.insecure ? ' (insecure)' : ''}`)]), [
      ['example.com/foo', 'internal-registry-for-example.com/bar', ['example-mirror-0.local/mirror-for-foo', 'example-mirror-1.local/mirrors/foo (insecure)']],
      ['registry.com', 'registry.com', ['mirror.registry.com']],
    ]);
  });

  test('trailing slashes are dropped; the first table of a prefix wins', () => {
    const { conf } = parse(`[[registry]]\nlocation = "a.example/ns/"\ninsecure = true\n[[registry]]\nprefix = "a.example/ns"\nlocation = "b.example"\ninsecure = true\n`);
    assert.deepEqual(conf.registries.map((r) => [r.prefix, r.location]), [['a.example/ns', 'a.example/ns']]);
  });

  test('every mistake is one line with the file and the line of the setting', () => {
    const cases: Array<[string, RegExp]> = [
      ['a = 1\nb = \n', /^\/c\/registries\.conf:2: invalid value$/],
      ['[[registry]]\nlocation = "x.io"\ninsecure = "yes"\n', /^\/c\/registries\.conf:3: insecure must be true or false, not "yes"$/],
      ['[[registry]]\nlocation = "x.io"\n[[registry]]\nlocation = "y.io"\nblocked = 1\n', /:5: blocked must be true or false, not 1$/],
      ['[[registry]]\nlocation = "https://x.io"\n', /:2: location "https:\/\/x\.io": give HOST\[:PORT\]\[\/NAMESPACE\], without http/],
      ['[[registry]]\nprefix = "*.x.io:5000"\n', /:2: wildcard prefix "\*\.x\.io:5000" must be \*\.DOMAIN alone/],
      ['[[registry]]\nprefix = "x.io/ns"\n', /:1: location is unset and prefix "x\.io\/ns" is not a wildcard/],
      ['[[registry]]\ninsecure = true\n', /:1: a \[\[registry\]\] needs a location or a prefix$/],
      ['[[registry]]\nlocation = "x.io"\n[[registry.mirror]]\ninsecure = true\n', /:3: a \[\[registry\.mirror\]\] needs a location$/],
      ['[[registry]]\nlocation = "x.io"\n[[registry.mirror]]\nlocation = "m.io"\npull-from-mirror = "sometimes"\n', /:5: pull-from-mirror "sometimes" is not all, digest-only or tag-only$/],
      ['[[registry]]\nlocation = "x.io"\nmirror-by-digest-only = true\n[[registry.mirror]]\nlocation = "m.io"\npull-from-mirror = "tag-only"\n', /:6: pull-from-mirror cannot be set when the registry has mirror-by-digest-only$/],
      ['[[registry]]\nlocation = "x.io"\npull-from-mirror = "all"\n', /:3: pull-from-mirror belongs in a \[\[registry\.mirror\]\] table/],
      ['[[registry]]\nlocation = "x.io"\ninsecure = true\n[[registry]]\nprefix = "x.io/a"\nlocation = "x.io"\n', /:1: registry "x\.io" is defined more than once with conflicting insecure settings$/],
      ['short-name-mode = "strict"\n', /:1: short-name-mode "strict" is not enforcing, permissive or disabled$/],
      ['unqualified-search-registries = ["x.io/ns"]\n', /:1: "x\.io\/ns" in unqualified-search-registries is not HOST\[:PORT\]$/],
      ['unqualified-search-registries = "x.io"\n', /:1: unqualified-search-registries must be an array$/],
      ['registry = "x.io"\n', /:1: registry must be an array \(\[\[registry\]\] tables\)$/],
      ['[aliases]\n"x.io/busybox" = "x.io/busybox"\n', /:2: alias "x\.io\/busybox" must be a short name/],
      ['[aliases]\n"busybox" = "busybox"\n', /:2: alias "busybox" = "busybox" must name a registry and a repository$/],
      ['[aliases]\n"busybox" = "x.io/busybox:1"\n', /:2: alias "busybox" = "x\.io\/busybox:1" must not have a tag or digest$/],
      ['[registries.search]\nregistries = ["x.io"]\n[[registry]]\nlocation = "y.io"\n', /:1: mixes the v1 format/],
    ];
    for (const [text, pattern] of cases) assert.match(errorOf(text) ?? 'parsed', pattern, text);
    assert.match(errorOf('[registries.search]\nregistries = ["x.io"]\n', true) ?? 'parsed', /:1: a drop-in must be in the v2 format/);
  });

  test('an unknown key is a warning naming file and line, and is otherwise ignored', () => {
    const { conf, warnings } = parse('colour = "blue"\n[[registry]]\nlocation = "x.io"\nmirrors = 3\n[[registry.mirror]]\nlocation = "m.io"\nweight = 2\n');
    assert.deepEqual(warnings, ['/c/registries.conf:1: unknown key "colour" (ignored)', '/c/registries.conf:4: unknown key "mirrors" (ignored)', '/c/registries.conf:7: unknown key "weight" (ignored)']);
    assert.equal(conf.registries[0]?.mirrors[0]?.location, 'm.io');
  });

  test('the v1 format becomes v2 tables', () => {
    const { conf } = parse("[registries.search]\nregistries = ['a.io', 'b.io']\n[registries.insecure]\nregistries = ['c.io']\n[registries.block]\nregistries = ['d.io', 'c.io']\n");
    assert.deepEqual(conf.searchRegistries, ['a.io', 'b.io']);
    assert.deepEqual(conf.registries.map((r) => [r.prefix, r.insecure, r.blocked]), [['d.io', false, true], ['c.io', true, true]]);
  });

  test('keyLines finds keys in arrays of tables and quoted keys', () => {
    const lines = keyLines('a = 1\n[[registry]]\nlocation = "x"\n[[registry.mirror]]\nlocation = "m"\n[[registry]]\n  "location" = "y"\n[aliases]\n"bb" = "x.io/bb"\n');
    assert.deepEqual([...lines], [['a', 1], ['registry[0]', 2], ['registry[0].location', 3], ['registry[0].mirror[0]', 4], ['registry[0].mirror[0].location', 5], ['registry[1]', 6], ['registry[1].location', 7], ['aliases', 8], ['aliases.bb', 9]]);
  });
});

describe('where the files are, and the drop-ins', () => {
  test('--registries-conf, else $CONTAINERS_REGISTRIES_CONF, else $REGISTRIES_CONFIG_PATH, else ~/.config/containers/registries.conf, else /etc', () => {
    const env = { HOME: '/h', CONTAINERS_REGISTRIES_CONF: '/env1', REGISTRIES_CONFIG_PATH: '/env2' };
    const etcAndUser = ['/etc/containers/registries.conf.d', '/h/.config/containers/registries.conf.d'];
    assert.deepEqual(registriesConfPaths({ path: '/flag', env, userFileExists: true }), { file: '/flag', explicit: true, dropInDirs: etcAndUser });
    assert.deepEqual(registriesConfPaths({ env, userFileExists: true }).file, '/env1');
    assert.deepEqual(registriesConfPaths({ env: { HOME: '/h', REGISTRIES_CONFIG_PATH: '/env2' }, userFileExists: false }).file, '/env2');
    assert.deepEqual(registriesConfPaths({ env: { HOME: '/h' }, userFileExists: true }), { file: '/h/.config/containers/registries.conf', explicit: false, dropInDirs: ['/h/.config/containers/registries.conf.d'] });
    assert.deepEqual(registriesConfPaths({ env: { HOME: '/h' }, userFileExists: false }), { file: '/etc/containers/registries.conf', explicit: false, dropInDirs: etcAndUser });
    assert.deepEqual(registriesConfPaths({ env: { HOME: '/h', CONTAINERS_REGISTRIES_CONF_D: '/d1:/d2' }, userFileExists: false }).dropInDirs, ['/d1', '/d2']);
  });

  test('drop-ins in name order: tables replaced by prefix, the search list and mode replaced, aliases added or erased; other files ignored', async () => {
    const dir = join(work.path, 'merge');
    const d1 = join(dir, 'd1');
    const d2 = join(dir, 'd2');
    await mkdir(join(d1, 'sub.conf'), { recursive: true });
    await mkdir(d2, { recursive: true });
    await writeFile(join(dir, 'main.conf'), 'unqualified-search-registries = ["a.io"]\nshort-name-mode = "enforcing"\n[[registry]]\nlocation = "x.io"\n[[registry]]\nlocation = "y.io"\n[aliases]\n"one" = "a.io/one"\n"two" = "a.io/two"\n');
    await writeFile(join(d1, '20-b.conf'), '[[registry]]\nlocation = "x.io"\nblocked = true\n[aliases]\n"two" = ""\n');
    await writeFile(join(d1, '10-a.conf'), 'unqualified-search-registries = ["b.io", "c.io"]\n');
    await writeFile(join(d1, 'notes.txt'), 'this is not toml = = =');
    await writeFile(join(d2, 'z.conf'), 'short-name-mode = "permissive"\n[aliases]\n"three" = "c.io/three"\n');
    const conf = await loadRegistriesConf({ path: join(dir, 'main.conf'), env: { HOME: dir, CONTAINERS_REGISTRIES_CONF_D: `${d1}:${d2}` } });
    assert.deepEqual(conf.files, [join(dir, 'main.conf'), join(d1, '10-a.conf'), join(d1, '20-b.conf'), join(d2, 'z.conf')]);
    assert.deepEqual(conf.searchRegistries, ['b.io', 'c.io']);
    assert.equal(conf.searchOrigin, join(d1, '10-a.conf'));
    assert.equal(conf.shortNameMode, 'permissive');
    assert.deepEqual(conf.registries.map((r) => [r.prefix, r.blocked, r.origin]), [['x.io', true, join(d1, '20-b.conf')], ['y.io', false, join(dir, 'main.conf')]]);
    assert.deepEqual([...conf.aliases].map(([k, v]) => [k, v.value]), [['one', 'a.io/one'], ['three', 'c.io/three']]);
  });

  test('a named file that is missing is an error; a bad drop-in names itself and its line', async () => {
    const dir = join(work.path, 'missing');
    await mkdir(join(dir, 'd'), { recursive: true });
    await assert.rejects(loadRegistriesConf({ path: join(dir, 'nope.conf'), env: { HOME: dir, CONTAINERS_REGISTRIES_CONF_D: '' } }), (err: Error) => err instanceof UsageError && err.message === `${join(dir, 'nope.conf')}: no such registries.conf`);
    await writeFile(join(dir, 'main.conf'), '');
    await writeFile(join(dir, 'd', 'bad.conf'), '[[registry]]\nlocation = "x.io"\ninsecure = maybe\n');
    await assert.rejects(loadRegistriesConf({ env: { HOME: dir, CONTAINERS_REGISTRIES_CONF: join(dir, 'main.conf'), CONTAINERS_REGISTRIES_CONF_D: join(dir, 'd') } }), (err: Error) => err.message === `${join(dir, 'd', 'bad.conf')}:3: invalid value`);
  });

  test('an unknown key is warned about once, however often it is read', async () => {
    const dir = join(work.path, 'warn');
    await mkdir(join(dir, 'd'), { recursive: true });
    await writeFile(join(dir, 'main.conf'), 'colour = "blue"\ncolour2 = 1\n');
    const warnings: string[] = [];
    await loadRegistriesConf({ path: join(dir, 'main.conf'), env: { HOME: dir, CONTAINERS_REGISTRIES_CONF_D: `${join(dir, 'd')}:${join(dir, 'd')}` }, warn: (m) => warnings.push(m) });
    assert.equal(warnings.length, 2);
  });
});

describe('the cache of checked files', () => {
  /** A registries.conf and its cache under `name`, with no drop-ins. */
  async function setUp(name: string, text: string) {
    const dir = join(work.path, name);
    await mkdir(dir, { recursive: true });
    const file = join(dir, 'registries.conf');
    await writeFile(file, text);
    const cacheDir = join(dir, 'cache');
    const load = async () => {
      const warnings: string[] = [];
      const conf = await loadRegistriesConf({ path: file, env: { HOME: dir, CONTAINERS_REGISTRIES_CONF_D: '' }, warn: (m) => warnings.push(m), cacheDir });
      return { conf, warnings };
    };
    const entries = () => readdir(cacheDir).catch(() => [] as string[]);
    return { file, cacheDir, load, entries };
  }

  test('a file read twice is parsed once: the second read is the cached entry (seen by editing the entry), with its warnings again', async () => {
    const { cacheDir, load, entries } = await setUp('cache-hit', 'unqualified-search-registries = ["a.io"]\ncolour = "blue"\n[aliases]\n"x" = "a.io/y/x"\n');
    const first = await load();
    assert.deepEqual(first.conf.searchRegistries, ['a.io']);
    const [entry] = await entries();
    assert.ok(entry?.endsWith('.json'), String(entry));
    const path = join(cacheDir, entry as string);
    const cached = JSON.parse(await readFile(path, 'utf8'));
    cached.conf.searchRegistries = ['from.cache'];
    await writeFile(path, JSON.stringify(cached));
    const second = await load();
    assert.deepEqual(second.conf.searchRegistries, ['from.cache']);
    assert.deepEqual(second.warnings, first.warnings);
    assert.equal(first.warnings.length, 1);
    assert.deepEqual([...second.conf.aliases].map(([k, v]) => [k, v.value]), [['x', 'a.io/y/x']]);
  });

  test('an edited file is parsed again; a garbled entry is parsed again and replaced; a file with a mistake is never cached', async () => {
    const { file, cacheDir, load, entries } = await setUp('cache-miss', 'unqualified-search-registries = ["a.io"]\n');
    await load();
    await writeFile(file, 'unqualified-search-registries = ["b.io"]\n');
    assert.deepEqual((await load()).conf.searchRegistries, ['b.io']);
    assert.equal((await entries()).length, 2);
    for (const name of await entries()) await writeFile(join(cacheDir, name), '{"key":');
    assert.deepEqual((await load()).conf.searchRegistries, ['b.io']);
    await writeFile(file, '[[registry]]\nlocation = "x.io"\ninsecure = maybe\n');
    for (let i = 0; i < 2; i++) await assert.rejects(load(), (err: Error) => err.message === `${file}:3: invalid value`);
    assert.equal((await entries()).length, 2);
  });

  test('an entry or a cache directory that another user could write is not believed; entries not written for 30 days go on a miss', async () => {
    const { file, cacheDir, load, entries } = await setUp('cache-trust', 'unqualified-search-registries = ["a.io"]\n');
    await load();
    const [entry] = await entries();
    const path = join(cacheDir, entry as string);
    const cached = JSON.parse(await readFile(path, 'utf8'));
    cached.conf.searchRegistries = ['planted.io'];
    await writeFile(path, JSON.stringify(cached));
    assert.deepEqual((await load()).conf.searchRegistries, ['planted.io'], 'the entry is read when it is private');
    await chmod(path, 0o666);
    assert.deepEqual((await load()).conf.searchRegistries, ['a.io'], 'a world-writable entry');
    await writeFile(path, JSON.stringify(cached), { mode: 0o600 });
    await chmod(path, 0o600);
    await chmod(cacheDir, 0o777);
    assert.deepEqual((await load()).conf.searchRegistries, ['a.io'], 'a world-writable cache directory');
    await chmod(cacheDir, 0o700);
    const old = new Date(Date.now() - 31 * 24 * 3600 * 1000);
    await utimes(path, old, old);
    await writeFile(file, 'unqualified-search-registries = ["b.io"]\n');
    await load();
    assert.deepEqual(await entries(), [(await entries()).find((n) => n !== entry)], 'the old entry went, the new one is there');
  });

  test('a cache that cannot be written is no error', async () => {
    const { cacheDir, load } = await setUp('cache-unwritable', 'unqualified-search-registries = ["a.io"]\n');
    await writeFile(cacheDir, 'not a directory');
    assert.deepEqual((await load()).conf.searchRegistries, ['a.io']);
  });
});
