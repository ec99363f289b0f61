/**
 * RegistryPull's plan and its endpoints in process: what registries.conf, certs.d and
 * --tls-verify make of a reference (planPull, directPlan), the lines --verbose says of each
 * endpoint, which candidate's name the image gets, the order endpoints are asked in after the
 * top manifest, whose credentials each gets, a mirror asked once, a stop that asks no other
 * endpoint, and the combined error. (registry-pull.test.ts has img-fetch against real registries.)
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { digestOf } from '../../../lib/core/digest.js';
import { NotFoundError, RegistryError } from '../../../lib/core/errors.js';
import { parseReference } from '../../../lib/image/reference.js';
import { describeSource, directPlan, planPull, RegistryPull, type PlannedSource, type RegistryPlan } from '../../../lib/image/transport/registry-pull.js';
import { MEDIA_TYPES } from '../../../lib/image/model.js';
import { start } from '../../helpers/loopback.js';
import { tempDir } from '../../helpers/paths.js';

const ACCEPT = [MEDIA_TYPES.ociManifest];
const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociManifest, config: {}, layers: [] }));
const PEM = '-----BEGIN CERTIFICATE-----\nnot parsed by the plan\n-----END CERTIFICATE-----\n';

interface Endpoint {
  host: string;
  /** Each request: its path and Authorization. */
  requests: Array<{ url: string; auth?: string }>;
  /** The statuses to answer manifests with, in turn (the last one stays); 200 serves the manifest. */
  statuses: number[];
  /** Basic credentials it wants (user:pass), if any. */
  wants?: string;
}

async function endpoint(t: TestContext, statuses: number[] = [200], wants?: string): Promise<Endpoint> {
  const e: Endpoint = { host: '', requests: [], statuses, ...(wants ? { wants } : {}) };
  const server = http.createServer((req, res) => {
    if (req.url === '/v2/') return void res.writeHead(200, { 'Content-Length': 2 }).end('{}');
    e.requests.push({ url: req.url ?? '', ...(req.headers.authorization ? { auth: req.headers.authorization } : {}) });
    if (e.wants && req.headers.authorization !== `Basic ${Buffer.from(e.wants).toString('base64')}`) {
      return void res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="x"', 'Content-Length': 0 }).end();
    }
    const status = e.statuses[Math.min(e.requests.length - 1, e.statuses.length - 1)] ?? 200;
    if (status !== 200) return void res.writeHead(status, { 'Content-Length': 0 }).end();
    res.writeHead(200, { 'Content-Type': MEDIA_TYPES.ociManifest, 'Content-Length': manifest.length }).end(manifest);
  });
  e.host = (await start(t, server)).url.replace('http://', '');
  return e;
}

const source = (e: Endpoint, role: 'mirror' | 'location', path = 'lab/x:latest'): PlannedSource => ({ reference: parseReference(`${e.host}/${path}`), insecure: true, role, tlsVerify: false, insecureBecause: 'test', certs: { caFiles: [], ca: [] } });
const planOf = (candidates: Array<{ name: string; sources: PlannedSource[] }>): RegistryPlan => ({ candidates: candidates.map((c) => ({ reference: parseReference(c.name), sources: c.sources })), files: [] });

async function confDir(t: TestContext): Promise<{ dir: string; env: NodeJS.ProcessEnv; conf: string }> {
  const work = await tempDir('cp-pull-plan-');
  t.after(() => work.cleanup());
  const env = { HOME: join(work.path, 'home'), CONTAINERS_CERTS_D: join(work.path, 'certs.d'), CONTAINERS_REGISTRIES_CONF_D: join(work.path, 'none') };
  return { dir: work.path, env, conf: join(work.path, 'registries.conf') };
}

test('planPull: a table\'s mirrors then its rewritten location, each with its certs.d and why TLS is not verified', async (t) => {
  const { dir, env, conf } = await confDir(t);
  await writeFile(conf, `[[registry]]\nprefix = "example.com/lab"\nlocation = "location.test/lab"\n[[registry.mirror]]\nlocation = "mirror.test/m"\ninsecure = true\n`);
  await mkdir(join(dir, 'certs.d', 'location.test'), { recursive: true });
  await writeFile(join(dir, 'certs.d', 'location.test', 'ca.crt'), PEM);
  const reference = parseReference('example.com/lab/x:1');
  const plan = await planPull(reference, { registriesConf: conf, env });
  assert.deepEqual(plan.files, [conf]);
  assert.equal(plan.shortName, undefined);
  assert.equal(plan.candidates.length, 1);
  const [mirror, location] = plan.candidates[0]?.sources ?? [];
  assert.equal(mirror?.role, 'mirror');
  assert.equal(mirror?.reference.registry, 'mirror.test');
  assert.equal(mirror?.tlsVerify, false);
  assert.equal(mirror?.insecureBecause, `insecure = true in ${conf}`);
  assert.equal(location?.role, 'location');
  assert.equal(location?.tlsVerify, true);
  assert.ok(!('insecureBecause' in (location ?? {})));
  assert.deepEqual(location?.certs.caFiles, [join(dir, 'certs.d', 'location.test', 'ca.crt')]);
  assert.deepEqual(mirror?.certs.caFiles, []);
  const off = await planPull(reference, { registriesConf: conf, env, tlsVerify: false });
  assert.deepEqual(off.candidates[0]?.sources.map((s) => [s.tlsVerify, s.insecureBecause]), [[false, '--tls-verify=false'], [false, '--tls-verify=false']]);
  const on = await planPull(reference, { registriesConf: conf, env, tlsVerify: true });
  assert.deepEqual(on.candidates[0]?.sources.map((s) => s.tlsVerify), [true, true], '--tls-verify=true wins over insecure = true');
  const certDir = join(dir, 'mine');
  await mkdir(certDir);
  await writeFile(join(certDir, 'x.crt'), PEM);
  const given = await planPull(reference, { registriesConf: conf, env, certDir });
  assert.deepEqual(given.candidates[0]?.sources.map((s) => s.certs.caFiles), [[join(certDir, 'x.crt')], [join(certDir, 'x.crt')]], '--cert-dir for every endpoint');
});

test('planPull: a short name as typed becomes one candidate per search registry; typed with a registry, or not typed, it is itself', async (t) => {
  const { env, conf } = await confDir(t);
  await writeFile(conf, `unqualified-search-registries = ["one.test", "two.test"]\n`);
  const reference = parseReference('docker.io/library/alpine');
  const plan = await planPull(reference, { registriesConf: conf, env, typed: 'alpine' });
  assert.deepEqual(plan.candidates.map((c) => c.reference.registry), ['one.test', 'two.test']);
  assert.match(plan.shortName ?? '', /^resolving "alpine" using unqualified-search registries/);
  const notShort = await planPull(parseReference('one.test/alpine'), { registriesConf: conf, env, typed: 'one.test/alpine' });
  assert.deepEqual(notShort.candidates.map((c) => c.reference.registry), ['one.test']);
  assert.equal(notShort.shortName, undefined);
  const untyped = await planPull(reference, { registriesConf: conf, env });
  assert.deepEqual(untyped.candidates.map((c) => c.reference.registry), ['docker.io']);
});

test('directPlan: the reference itself, verified or not as said', () => {
  const reference = parseReference('127.0.0.1:5000/lab/x');
  assert.deepEqual(directPlan(reference, true), { candidates: [{ reference, sources: [{ reference, insecure: false, role: 'location', tlsVerify: true, certs: { caFiles: [], ca: [] } }] }], files: [] });
  assert.deepEqual(directPlan(reference, false).candidates[0]?.sources[0], { reference, insecure: true, role: 'location', tlsVerify: false, certs: { caFiles: [], ca: [] }, insecureBecause: '--tls-verify=false' });
});

test('describeSource: what --verbose says of an endpoint', () => {
  const logical = parseReference('example.com/lab/x:1');
  const entry = { prefix: 'example.com/lab', origin: '/etc/containers/registries.conf' } as PlannedSource['entry'];
  const mirror: PlannedSource = { reference: parseReference('mirror.test/m/x:1'), insecure: true, role: 'mirror', entry, tlsVerify: false, insecureBecause: 'insecure = true in /c', certs: { caFiles: ['/d/ca.crt', '/d/b.crt'], ca: [], client: { certFile: '/d/c.cert', keyFile: '/d/c.key', cert: '', key: '' } } };
  assert.deepEqual(describeSource(mirror, logical), [
    'mirror mirror.test/m/x:1 for example.com/lab/x:1 (registries.conf: prefix "example.com/lab" in /etc/containers/registries.conf)',
    'mirror.test: CA /d/ca.crt, /d/b.crt (beside the default roots)',
    'mirror.test: client certificate /d/c.cert (key /d/c.key)',
    'mirror.test: TLS not verified, plain HTTP allowed (insecure = true in /c)',
  ]);
  const itself: PlannedSource = { reference: logical, insecure: false, role: 'location', tlsVerify: true, certs: { caFiles: [], ca: [] } };
  assert.deepEqual(describeSource(itself, logical), ['location example.com/lab/x:1']);
  const sameMirror: PlannedSource = { ...itself, role: 'mirror' };
  assert.deepEqual(describeSource(sameMirror, logical), ['mirror example.com/lab/x:1 for example.com/lab/x:1']);
  const rewritten: PlannedSource = { ...itself, reference: parseReference('location.test/lab/x:1'), entry };
  assert.deepEqual(describeSource(rewritten, logical), ['location location.test/lab/x:1 for example.com/lab/x:1 (registries.conf: prefix "example.com/lab" in /etc/containers/registries.conf)']);
});

test('the image is named by the candidate that served the top manifest; later manifests ask that endpoint first', async (t) => {
  const first = await endpoint(t, [404]);
  const second = await endpoint(t);
  const plan = planOf([
    { name: 'one.test/lab/x:latest', sources: [source(first, 'location')] },
    { name: 'two.test/lab/x:latest', sources: [source(first, 'mirror'), source(second, 'location')] },
  ]);
  const debug: string[] = [];
  const pull = new RegistryPull({ ...plan, shortName: 'resolving "x"' }, { retries: 0, backoffMs: 1, debug: (m) => debug.push(m) });
  t.after(() => pull.close());
  assert.equal(pull.reference.registry, 'one.test', 'the first candidate before any request');
  await pull.topManifest(ACCEPT);
  assert.equal(pull.reference.registry, 'two.test');
  assert.equal(debug[0], 'resolving "x"');
  assert.ok(debug.includes(`location ${first.host}/lab/x:latest for one.test/lab/x:latest`), debug.join('\n'));
  assert.ok(debug.some((m) => m.startsWith(`${first.host}/lab/x:latest failed: ${first.host}: manifest lab/x:latest not found`)), debug.join('\n'));
  first.requests.length = 0;
  second.requests.length = 0;
  first.statuses = [200];
  const digest = { digest: digestOf(manifest), size: manifest.length };
  await pull.manifest(digest, ACCEPT);
  assert.equal(second.requests.length, 1, 'the chosen endpoint first');
  assert.equal(first.requests.length, 0);
  second.statuses = [404];
  await pull.manifest(digest, ACCEPT);
  assert.equal(first.requests.length, 1, 'then the others of its candidate');
  assert.equal(second.requests.length, 2, 'the chosen one once each time');
  assert.equal(debug.filter((m) => m.startsWith('location') || m.startsWith('mirror')).length, 3, 'each endpoint described once, at its first use');
});

test('a mirror is asked once (no retries), the location with its retries; all failing: the location\'s error, the others after it', async (t) => {
  const mirror = await endpoint(t, [503, 200]);
  const location = await endpoint(t, [503, 200]);
  const pull = new RegistryPull(planOf([{ name: 'x.test/lab/x:latest', sources: [source(mirror, 'mirror'), source(location, 'location')] }]), { retries: 1, backoffMs: 1 });
  t.after(() => pull.close());
  await pull.topManifest(ACCEPT);
  assert.equal(mirror.requests.length, 1);
  assert.equal(location.requests.length, 2);
  const a = await endpoint(t, [404]);
  const b = await endpoint(t, [404]);
  const failing = new RegistryPull(planOf([{ name: 'x.test/lab/x:latest', sources: [source(a, 'mirror')] }, { name: 'y.test/lab/x:latest', sources: [source(b, 'location')] }]), { retries: 0 });
  t.after(() => failing.close());
  await assert.rejects(failing.topManifest(ACCEPT), (e: unknown) => e instanceof NotFoundError && e.message === `${b.host}: manifest lab/x:latest not found (also tried: ${a.host}/lab/x:latest: ${a.host}: manifest lab/x:latest not found)`);
  const c = await endpoint(t, [404]);
  const three = new RegistryPull(planOf([{ name: 'x.test/lab/x:latest', sources: [source(a, 'mirror'), source(b, 'mirror'), source(c, 'location')] }]), { retries: 0 });
  t.after(() => three.close());
  await assert.rejects(three.topManifest(ACCEPT), (e: unknown) => e instanceof NotFoundError && e.message === `${c.host}: manifest lab/x:latest not found (also tried: ${a.host}/lab/x:latest: ${a.host}: manifest lab/x:latest not found; ${b.host}/lab/x:latest: ${b.host}: manifest lab/x:latest not found)`);
  const alone = new RegistryPull(planOf([{ name: 'x.test/lab/x:latest', sources: [source(a, 'location')] }]), { retries: 0 });
  t.after(() => alone.close());
  await assert.rejects(alone.topManifest(ACCEPT), (e: unknown) => e instanceof NotFoundError && e.message === `${a.host}: manifest lab/x:latest not found`, 'one endpoint: its error as it is');
  await assert.rejects(alone.manifest({ digest: digestOf(manifest) }, ACCEPT), (e: unknown) => e instanceof NotFoundError && !e.message.includes('also tried'));
});

test('once the pull is stopped (its signal), the first failure ends it: no other endpoint is asked', async (t) => {
  const stop = new AbortController();
  stop.abort(new Error('--timeout'));
  const a = await endpoint(t);
  const b = await endpoint(t);
  const pull = new RegistryPull(planOf([{ name: 'x.test/lab/x:latest', sources: [source(a, 'mirror'), source(b, 'location')] }]), { retries: 0, signal: stop.signal });
  t.after(() => pull.close());
  await assert.rejects(pull.topManifest(ACCEPT), (e: unknown) => e instanceof Error && e.message === '--timeout');
  await assert.rejects(pull.manifest({ digest: digestOf(manifest) }, ACCEPT), (e: unknown) => e instanceof Error && e.message === '--timeout');
  assert.deepEqual([a.requests, b.requests], [[], []]);
});

test('credentials: --creds go to the registry the reference names only; another endpoint gets its own from the auth file', async (t) => {
  const { dir } = await confDir(t);
  const mirror = await endpoint(t, [200], 'mirror:pw');
  const location = await endpoint(t, [200], 'lab:secret');
  const authFile = join(dir, 'auth.json');
  await writeFile(authFile, JSON.stringify({ auths: { [mirror.host]: { auth: Buffer.from('mirror:pw').toString('base64') }, [location.host]: { auth: Buffer.from('wrong:wrong').toString('base64') } } }));
  const env = { HOME: join(dir, 'home'), REGISTRY_AUTH_FILE: authFile };
  const plan = planOf([{ name: `${location.host}/lab/x:latest`, sources: [source(mirror, 'mirror'), source(location, 'location')] }]);
  const pull = new RegistryPull(plan, { retries: 0, credentials: { username: 'lab', password: 'secret' }, env });
  t.after(() => pull.close());
  await pull.topManifest(ACCEPT);
  assert.equal(mirror.requests.at(-1)?.auth, `Basic ${Buffer.from('mirror:pw').toString('base64')}`, 'the mirror: from the auth file');
  mirror.statuses = [404];
  await pull.manifest({ digest: digestOf(manifest) }, ACCEPT);
  assert.equal(location.requests.at(-1)?.auth, `Basic ${Buffer.from('lab:secret').toString('base64')}`, 'the location: --creds, not the auth file');
  const noCreds = new RegistryPull(plan, { retries: 0, env });
  t.after(() => noCreds.close());
  mirror.statuses = [404];
  await assert.rejects(noCreds.topManifest(ACCEPT), (e: unknown) => e instanceof RegistryError && /authentication required/.test(e.message), 'without --creds the location gets the auth file\'s (wrong) ones');
  assert.equal(location.requests.at(-1)?.auth, `Basic ${Buffer.from('wrong:wrong').toString('base64')}`);
});
