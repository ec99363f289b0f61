/**
 * Short names side by side with podman (the tool that resolves them; skopeo's docker:// never
 * sees a short name): the same registries.conf (one and two unqualified-search registries,
 * aliases, blocked candidates, short-name-mode enforcing, permissive and disabled), no terminal
 * (stdin and stdout are pipes). (One difference is meant: with no search list set anywhere,
 * img-fetch asks Docker Hub, as docker does, where podman refuses; see pull-sources.test.ts.) Two registries on 127.0.0.1 answer every manifest with 404 and
 * log the requests, so each tool's candidates are the manifests it asked for, in order; a
 * refusal is an error before any request. A negative twin (the search list reversed for us
 * only) must differ.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exec, tool } from '../../helpers/exec.js';
import { tempDir } from '../../helpers/paths.js';
import { privatePodmanInvocation } from '../../helpers/podman.js';

interface Outcome {
  /** The manifests asked for, `HOST:PORT/REPOSITORY:REFERENCE`, repeats in a row folded. */
  asked: string[];
  /** Refused before trying any candidate (here or anywhere else). */
  refused: boolean;
}

let work: { path: string; cleanup: () => Promise<void> };
let home: string;
const asked: string[] = [];
const servers: Array<ReturnType<typeof createServer>> = [];
let a = '';
let b = '';

/** A registry that has nothing: /v2/ answers, every manifest is unknown (404 is retried by neither tool). */
async function emptyRegistry(): Promise<string> {
  const server = createServer((req, res) => {
    const host = `127.0.0.1:${(server.address() as { port: number }).port}`;
    const manifest = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(req.url ?? '');
    if (manifest) asked.push(`${host}/${manifest[1]}:${decodeURIComponent(manifest[2] as string)}`);
    res.setHeader('Docker-Distribution-API-Version', 'registry/2.0');
    res.setHeader('Content-Type', 'application/json');
    if (req.url === '/v2/') {
      res.end('{}');
      return;
    }
    res.statusCode = 404;
    res.end(JSON.stringify({ errors: [{ code: manifest ? 'MANIFEST_UNKNOWN' : 'NOT_FOUND', message: 'unknown' }] }));
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `127.0.0.1:${(server.address() as { port: number }).port}`;
}

before(async () => {
  work = await tempDir('cp-shortnames-');
  home = join(work.path, 'home');
  await mkdir(home);
  a = await emptyRegistry();
  b = await emptyRegistry();
});
after(async () => {
  for (const server of servers) server.closeAllConnections();
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  await work?.cleanup();
});

const folded = (list: string[]) => list.filter((item, i) => item !== list[i - 1]);

let files = 0;
/** The case's settings, and a table for each registry: plain HTTP (insecure) for both tools, and `blocked` for one if asked. */
async function confFile(text: string, blocked?: string): Promise<string> {
  const file = join(work.path, `registries-${++files}.conf`);
  const table = (host: string) => `[[registry]]\nlocation = "${host}"\ninsecure = true\n${host === blocked ? 'blocked = true\n' : ''}`;
  await writeFile(file, `${text}\n${table(a)}${table(b)}`);
  return file;
}

interface Case {
  what: string;
  conf: string;
  name: string;
  blocked?: string;
}

async function podmanPull({ conf, name, blocked }: Case): Promise<Outcome> {
  const dir = join(work.path, `podman-${++files}`);
  const { base, env } = await privatePodmanInvocation(dir);
  asked.length = 0;
  const result = await exec('podman', [...base, 'pull', name], { env: { ...env, HOME: home, CONTAINERS_REGISTRIES_CONF: await confFile(conf, blocked) }, timeoutMs: 90_000 });
  // podman says "Trying to pull NAME..." before each candidate: none said, it refused the name or the configuration.
  const outcome = { asked: folded(asked), refused: !result.stderr.includes('Trying to pull') };
  await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  assert.notEqual(result.status, 0, `podman pull ${name} found an image: ${result.stdout}`);
  return outcome;
}

async function ourFetch({ conf, name, blocked }: Case): Promise<Outcome> {
  asked.length = 0;
  const store = join(work.path, `store-${++files}`);
  const result = await tool('img-fetch', [name, '--store', store, '--retries', '0'], { env: { HOME: home, CONTAINERS_REGISTRIES_CONF: await confFile(conf, blocked) }, timeoutMs: 60_000 });
  assert.notEqual(result.status, 0, `img-fetch ${name} found an image: ${result.stdout}`);
  assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
  // Exit 2: the name or the configuration refused (a usage error); 1: candidates were tried and failed.
  return { asked: folded(asked), refused: result.status === 2 };
}

describe('short names: the candidates podman tries, in its order, and its refusals', () => {
  const digest = `sha256:${'c'.repeat(64)}`;
  const cases = (): Case[] => [
    { what: 'one search registry', conf: `unqualified-search-registries = ["${a}"]`, name: 'lab/cp-short' },
    { what: 'one search registry, enforcing (no ambiguity)', conf: `unqualified-search-registries = ["${a}"]\nshort-name-mode = "enforcing"`, name: 'cp-short:1.2' },
    { what: 'two search registries, permissive by default', conf: `unqualified-search-registries = ["${a}", "${b}"]`, name: 'lab/cp-short' },
    { what: 'two, permissive, with a digest', conf: `unqualified-search-registries = ["${b}", "${a}"]\nshort-name-mode = "permissive"`, name: `lab/cp-short@${digest}` },
    { what: 'two, disabled', conf: `unqualified-search-registries = ["${a}", "${b}"]\nshort-name-mode = "disabled"`, name: 'cp-short:v2' },
    { what: 'two, enforcing, no terminal: refused', conf: `unqualified-search-registries = ["${a}", "${b}"]\nshort-name-mode = "enforcing"`, name: 'lab/cp-short' },
    { what: 'an alias, enforcing, with the tag given', conf: `unqualified-search-registries = ["${a}", "${b}"]\nshort-name-mode = "enforcing"\n[aliases]\n"lab/cp-short" = "${b}/elsewhere/cp-short"`, name: 'lab/cp-short:3' },
    { what: 'an alias, disabled', conf: `unqualified-search-registries = ["${a}", "${b}"]\nshort-name-mode = "disabled"\n[aliases]\n"cp-short" = "${a}/aliased/cp-short"`, name: 'cp-short' },
    { what: "another name's alias does not apply", conf: `unqualified-search-registries = ["${b}"]\n[aliases]\n"other" = "${a}/x/other"`, name: 'cp-short' },
    { what: 'two, the first blocked: skipped', conf: `unqualified-search-registries = ["${a}", "${b}"]`, name: 'lab/cp-short', blocked: a },
    { what: 'a search registry with a namespace: the file is refused', conf: `unqualified-search-registries = ["${a}/ns"]`, name: 'cp-short' },
    { what: 'an alias, the digest given', conf: `[aliases]\n"cp-short" = "${b}/aliased/cp-short"`, name: `cp-short@${digest}` },
    { what: 'a tag and a digest: the digest', conf: `unqualified-search-registries = ["${a}"]`, name: `lab/cp-short:1@${digest}` },
    { what: 'not a valid name: refused', conf: `unqualified-search-registries = ["${a}"]`, name: 'Lab/CP' },
    { what: 'one registry listed twice, enforcing: two candidates, refused', conf: `unqualified-search-registries = ["${a}", "${a}"]\nshort-name-mode = "enforcing"`, name: 'cp-short' },
    { what: 'one registry listed twice, permissive', conf: `unqualified-search-registries = ["${a}", "${a}"]`, name: 'cp-short' },
    { what: 'a library/ name on another registry keeps it', conf: `unqualified-search-registries = ["${a}"]`, name: 'library/cp-short' },
    { what: 'docker.io searched (normalized to library/, then rewritten by a prefix), then another', conf: `unqualified-search-registries = ["docker.io", "${b}"]\n[[registry]]\nprefix = "docker.io"\nlocation = "${a}/hub"\ninsecure = true`, name: 'cp-short' },
    { what: 'an alias to docker.io, rewritten', conf: `[aliases]\n"cp-short" = "docker.io/cp-short"\n[[registry]]\nprefix = "docker.io"\nlocation = "${a}/hub"\ninsecure = true`, name: 'cp-short:7' },
    { what: 'an alias of cp-short is not one of lab/cp-short: enforcing refuses', conf: `unqualified-search-registries = ["${a}", "${b}"]\nshort-name-mode = "enforcing"\n[aliases]\n"cp-short" = "${b}/x/cp-short"`, name: 'lab/cp-short' },
    { what: 'an empty search list set on purpose, no alias: refused', conf: 'unqualified-search-registries = []', name: 'cp-short' },
    { what: 'an alias to a blocked registry', conf: `[aliases]\n"cp-short" = "${b}/aliased/cp-short"`, name: 'cp-short', blocked: b },
  ];

  test('the same candidates in the same order, and the same refusals', async () => {
    for (const c of cases()) {
      const theirs = await podmanPull(c);
      const ours = await ourFetch(c);
      assert.deepEqual(ours, theirs, `${c.what}: ${c.name}`);
    }
  });

  test('the negative twin: the search list reversed for us only gives another order than podman', async () => {
    const theirs = await podmanPull({ what: 'two', conf: `unqualified-search-registries = ["${a}", "${b}"]`, name: 'lab/cp-short' });
    const ours = await ourFetch({ what: 'two, reversed', conf: `unqualified-search-registries = ["${b}", "${a}"]`, name: 'lab/cp-short' });
    assert.equal(theirs.asked.length, 2);
    assert.notDeepEqual(ours, theirs);
  });
});
