/**
 * img-fetch where registries.conf and certs.d send it, against real registries (Debian's
 * docker-registry) on 127.0.0.1: one with HTTPS from a test CA, one that also requires a client
 * certificate, plain-HTTP ones for mirrors, a mirror that is down and one that lies (a proxy that
 * inverts every byte of a layer: refused by digest, then the next endpoint). Certs.d is a
 * temporary root ($CONTAINERS_CERTS_D), never the machine's /etc. skopeo reads the same files
 * side by side and must choose the same endpoints.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exec, mustExec, tool, assertOneLineError, type ExecResult } from '../../helpers/exec.js';
import { tempDir } from '../../helpers/paths.js';
import { freePort, pushBusybox, startRegistry, type TestRegistry } from '../../helpers/registry.js';
import { startProxy, type FaultProxy } from '../../helpers/proxy.js';
import { makeTestPki, type TestPki } from '../../helpers/pki.js';
import { parseDocument } from '../../../lib/cli/pipe.js';
import type { ImageSection } from '../../../lib/cli/document.js';

function imageOf(result: ExecResult): ImageSection {
  assert.equal(result.status, 0, `img-fetch failed: ${result.stderr}`);
  const image = parseDocument(result.stdout).image;
  assert.ok(image, 'no image section');
  return image;
}

describe('certs.d, --cert-dir and registries.conf against real registries', () => {
  let work: { path: string; cleanup: () => Promise<void> };
  let pki: TestPki;
  let tls: TestRegistry;
  let mtls: TestRegistry;
  let plain: TestRegistry;
  let other: TestRegistry;
  let liar: FaultProxy;
  let downPort: number;
  let layout: string;
  /** An environment that reads nothing of the machine's: a fresh HOME, an empty certs.d root, no drop-ins. */
  let clean: NodeJS.ProcessEnv;
  /** certs.d roots: the CA for both TLS registries, and the client certificate for the one that wants it. */
  let certsRoot: string;
  let digest: string;

  before(async () => {
    work = await tempDir('cp-regpull-');
    const dir = async (...parts: string[]) => {
      const path = join(work.path, ...parts);
      await mkdir(path, { recursive: true });
      return path;
    };
    pki = await makeTestPki(await dir('pki'));
    tls = await startRegistry({ tls: { cert: pki.serverCert, key: pki.serverKey } });
    mtls = await startRegistry({ tls: { cert: pki.serverCert, key: pki.serverKey, clientCa: pki.clientCaCert } });
    plain = await startRegistry();
    other = await startRegistry();
    liar = await startProxy(plain.port);
    downPort = await freePort();
    // skopeo pushes with a certs dir of its own: the CA and the client certificate.
    const skopeoCerts = await dir('skopeo-certs');
    await copyFile(pki.caCert, join(skopeoCerts, 'ca.crt'));
    await copyFile(pki.clientCert, join(skopeoCerts, 'client.cert'));
    await copyFile(pki.clientKey, join(skopeoCerts, 'client.key'));
    await pushBusybox(join(work.path, 'bb'), [`docker://${plain.host}/lab/busybox:latest`, `docker://${plain.host}/mirror/lab/busybox:latest`]);
    layout = `oci:${join(work.path, 'bb', 'layout')}:busybox`;
    for (const registry of [tls, mtls]) await mustExec('skopeo', ['copy', '-q', '--dest-cert-dir', skopeoCerts, layout, `docker://${registry.host}/lab/busybox:latest`], { timeoutMs: 120_000 });
    digest = JSON.parse(await mustExec('skopeo', ['inspect', '--tls-verify=false', `docker://${plain.host}/lab/busybox:latest`])).Digest as string;
    certsRoot = await dir('certs.d');
    for (const registry of [tls, mtls]) await copyFile(pki.caCert, join(await dir('certs.d', registry.host), 'ca.crt'));
    await copyFile(pki.clientCert, join(certsRoot, mtls.host, 'client.cert'));
    await copyFile(pki.clientKey, join(certsRoot, mtls.host, 'client.key'));
    clean = { HOME: await dir('home'), CONTAINERS_CERTS_D: certsRoot, CONTAINERS_REGISTRIES_CONF: join(work.path, 'empty.conf'), CONTAINERS_REGISTRIES_CONF_D: '', REGISTRY_AUTH_FILE: '', DOCKER_CONFIG: join(work.path, 'home') };
    await writeFile(join(work.path, 'empty.conf'), '');
  });
  after(async () => {
    await liar?.stop();
    for (const registry of [tls, mtls, plain, other]) await registry?.stop();
    await work?.cleanup();
  });

  let stores = 0;
  const fetch = (args: string[], env: NodeJS.ProcessEnv = {}) => tool('img-fetch', [...args, '--store', join(work.path, `store-${++stores}`)], { env: { ...clean, ...env } });
  let confs = 0;
  const conf = async (text: string) => {
    const file = join(work.path, `registries-${++confs}.conf`);
    await writeFile(file, text);
    return file;
  };

  describe('certificates', () => {
    test("a private CA in certs.d/HOST:PORT/ca.crt is trusted; without it, one line that says where the CA goes", async () => {
      const image = imageOf(await fetch([`docker://${tls.host}/lab/busybox:latest`]));
      assert.equal(image.digest, digest);
      const refused = await fetch([`docker://${tls.host}/lab/busybox:latest`], { CONTAINERS_CERTS_D: join(work.path, 'nowhere') });
      assertOneLineError(refused, 'img-fetch', 1, new RegExp(`TLS certificate not trusted.*certs\\.d/${tls.host.replace(/\./g, '\\.')}/ca\\.crt`));
    });

    test('--cert-dir replaces the lookup, as skopeo --src-cert-dir does: same digest side by side; a stranger CA fails in both', async () => {
      const certDir = join(work.path, 'cert-dir');
      await mkdir(certDir, { recursive: true });
      await copyFile(pki.caCert, join(certDir, 'ca.crt'));
      const env = { CONTAINERS_CERTS_D: join(work.path, 'nowhere') };
      assert.equal(imageOf(await fetch([`docker://${tls.host}/lab/busybox:latest`, '--cert-dir', certDir], env)).digest, digest);
      const skopeo = JSON.parse(await mustExec('skopeo', ['inspect', '--cert-dir', certDir, `docker://${tls.host}/lab/busybox:latest`], { env: clean })) as { Digest: string };
      assert.equal(skopeo.Digest, digest);
      const stranger = join(work.path, 'stranger-dir');
      await mkdir(stranger, { recursive: true });
      await copyFile(pki.strangerCaCert, join(stranger, 'ca.crt'));
      assert.equal((await fetch([`docker://${tls.host}/lab/busybox:latest`, '--cert-dir', stranger], env)).status, 1);
      assert.notEqual((await exec('skopeo', ['inspect', '--cert-dir', stranger, `docker://${tls.host}/lab/busybox:latest`], { env: clean })).status, 0);
    });

    test('a registry that requires a client certificate gets client.cert/client.key; --verbose names the CA and the certificate', async () => {
      const result = await fetch([`docker://${mtls.host}/lab/busybox:latest`, '--verbose']);
      assert.equal(imageOf(result).digest, digest);
      assert.match(result.stderr, new RegExp(`CA ${join(certsRoot, mtls.host, 'ca.crt')} \\(beside the default roots\\)`));
      assert.match(result.stderr, new RegExp(`client certificate ${join(certsRoot, mtls.host, 'client.cert')} \\(key ${join(certsRoot, mtls.host, 'client.key')}\\)`));
      const caOnly = join(work.path, 'ca-only');
      await mkdir(join(caOnly, mtls.host), { recursive: true });
      await copyFile(pki.caCert, join(caOnly, mtls.host, 'ca.crt'));
      assert.equal((await fetch([`docker://${mtls.host}/lab/busybox:latest`], { CONTAINERS_CERTS_D: caOnly })).status, 1);
      // skopeo, given the same directory: the same image; without the client certificate it is refused too.
      const skopeo = JSON.parse(await mustExec('skopeo', ['inspect', '--cert-dir', join(certsRoot, mtls.host), `docker://${mtls.host}/lab/busybox:latest`], { env: clean })) as { Digest: string };
      assert.equal(skopeo.Digest, digest);
      assert.notEqual((await exec('skopeo', ['inspect', '--cert-dir', join(caOnly, mtls.host), `docker://${mtls.host}/lab/busybox:latest`], { env: clean })).status, 0);
    });

    test('a key without its certificate is one line naming the file, before any request', async () => {
      const half = join(work.path, 'half');
      await mkdir(join(half, mtls.host), { recursive: true });
      await copyFile(pki.clientKey, join(half, mtls.host, 'client.key'));
      assertOneLineError(await fetch([`docker://${mtls.host}/lab/busybox:latest`], { CONTAINERS_CERTS_D: half }), 'img-fetch', 2, new RegExp(`${join(half, mtls.host, 'client.key')}: client key without its certificate client\\.cert$`, 'm'));
    });

    test('--explain prints the certificates as curl and skopeo flags', async () => {
      const result = await fetch([`docker://${mtls.host}/lab/busybox:latest`, '--explain', '--cert-dir', join(certsRoot, mtls.host)]);
      assert.equal(result.status, 0, result.stderr);
      assert.match(result.stdout, new RegExp(`curl -fsS --cacert ${join(certsRoot, mtls.host, 'ca.crt')} --cert ${join(certsRoot, mtls.host, 'client.cert')} --key ${join(certsRoot, mtls.host, 'client.key')} `));
      assert.match(result.stdout, new RegExp(`skopeo copy --src-cert-dir ${join(certsRoot, mtls.host)} docker://${mtls.host}/lab/busybox:latest`));
    });
  });

  describe('registries.conf', () => {
    test('insecure = true: a plain-HTTP registry without --tls-verify=false; --tls-verify=true still insists, as skopeo', async () => {
      assertOneLineError(await fetch([`docker://${plain.host}/lab/busybox:latest`]), 'img-fetch', 1, /does not speak HTTPS/);
      const file = await conf(`[[registry]]\nlocation = "${plain.host}"\ninsecure = true\n`);
      assert.equal(imageOf(await fetch([`docker://${plain.host}/lab/busybox:latest`, '--registries-conf', file])).digest, digest);
      assert.equal((await fetch([`docker://${plain.host}/lab/busybox:latest`, '--registries-conf', file, '--tls-verify=true'])).status, 1);
      assert.equal((await exec('skopeo', ['inspect', '--raw', '--registries-conf', file, `docker://${plain.host}/lab/busybox:latest`], { env: clean })).status, 0);
      assert.notEqual((await exec('skopeo', ['inspect', '--raw', '--registries-conf', file, '--tls-verify=true', `docker://${plain.host}/lab/busybox:latest`], { env: clean })).status, 0);
    });

    test('blocked = true: refused in one line naming the file, with no request; skopeo refuses it too', async () => {
      const file = await conf(`[[registry]]\nlocation = "${plain.host}/lab"\nblocked = true\n`);
      const result = await fetch([`docker://${plain.host}/lab/busybox:latest`, '--registries-conf', file, '--verbose']);
      assert.equal(result.status, 1);
      assert.match(result.stderr, new RegExp(`^img-fetch: ${plain.host}/lab/busybox:latest: registry "${plain.host}/lab" is blocked in ${file}\n$`, 'm'));
      assert.doesNotMatch(result.stderr, /GET /, 'no request');
      assertOneLineError(await fetch([`docker://${plain.host}/lab/busybox:latest`, '--registries-conf', file]), 'img-fetch', 1, /is blocked in/);
      assert.match((await exec('skopeo', ['inspect', '--raw', '--registries-conf', file, `docker://${plain.host}/lab/busybox:latest`], { env: clean })).stderr, /is blocked in/);
    });

    test('mirrors in order: one down, one that lies about a layer (refused by digest), one right; the location is not needed', async () => {
      const file = await conf(`[[registry]]
prefix = "${other.host}/lab"
location = "127.0.0.1:${downPort}/gone/lab"
insecure = true
[[registry.mirror]]
location = "127.0.0.1:${downPort}/lab"
insecure = true
[[registry.mirror]]
location = "${liar.host}/lab"
insecure = true
[[registry.mirror]]
location = "${plain.host}/mirror/lab"
insecure = true
`);
      liar.faults.push({ match: (r) => /\/blobs\//.test(r.path) && !r.path.includes(digest), times: 100, corrupt: true });
      const result = await fetch([`docker://${other.host}/lab/busybox:latest`, '--registries-conf', file, '--verbose']);
      liar.faults.length = 0;
      const image = imageOf(result);
      assert.equal(image.digest, digest);
      assert.equal(image.reference, `${other.host}/lab/busybox:latest`, 'named by the reference asked for, not the mirror');
      assert.match(result.stderr, new RegExp(`mirror 127\\.0\\.0\\.1:${downPort}/lab/busybox:latest for ${other.host}/lab/busybox:latest \\(registries\\.conf: prefix "${other.host}/lab" in ${file}\\)`));
      assert.match(result.stderr, new RegExp(`${liar.host}/lab/busybox:latest failed: .*content has digest`));
      assert.match(result.stderr, new RegExp(`GET http://${plain.host}/v2/mirror/lab/busybox/blobs/`));
      assert.doesNotMatch(result.stderr, new RegExp(`GET https?://127\\.0\\.0\\.1:${downPort}/v2/gone/`), 'the location was not needed');
      // skopeo takes the manifest from the same first endpoint that serves it (and has no blob fallback: it refuses the liar's layer).
      const skopeo = await exec('skopeo', ['--debug', 'inspect', '--raw', '--registries-conf', file, `docker://${other.host}/lab/busybox:latest`], { env: clean });
      assert.equal(skopeo.status, 0, skopeo.stderr);
      const tried = [...skopeo.stderr.matchAll(/Trying to access \\"(.*?)\\"/g)].map((m) => m[1]);
      assert.deepEqual(tried, [`127.0.0.1:${downPort}/lab/busybox:latest`, `${liar.host}/lab/busybox:latest`]);
      assert.match(result.stderr, new RegExp(`GET http://${liar.host}/v2/lab/busybox/manifests/latest`));
    });

    test('every endpoint down: one line, the location\'s error first, the mirrors\' after it', async () => {
      const file = await conf(`[[registry]]\nprefix = "${other.host}/lab"\nlocation = "127.0.0.1:${downPort}/gone/lab"\n[[registry.mirror]]\nlocation = "127.0.0.1:${downPort}/m"\n`);
      assertOneLineError(await fetch([`docker://${other.host}/lab/busybox:latest`, '--registries-conf', file, '--retries', '0']), 'img-fetch', 1, new RegExp(`^img-fetch: 127\\.0\\.0\\.1:${downPort}: manifest gone/lab/busybox:latest: connection refused.*\\(also tried: 127\\.0\\.0\\.1:${downPort}/m/busybox:latest: `));
    });

    test('pull-from-mirror = "digest-only": a tag goes to the location, a digest to the mirror', async () => {
      const file = await conf(`[[registry]]\nlocation = "${plain.host}/lab"\ninsecure = true\n[[registry.mirror]]\nlocation = "${liar.host}/lab"\ninsecure = true\npull-from-mirror = "digest-only"\n`);
      const before = liar.requests.length;
      imageOf(await fetch([`docker://${plain.host}/lab/busybox:latest`, '--registries-conf', file]));
      assert.equal(liar.requests.length, before, 'a tag pull does not use a digest-only mirror');
      imageOf(await fetch([`docker://${plain.host}/lab/busybox@${digest}`, '--registries-conf', file]));
      assert.ok(liar.requests.length > before, 'a digest pull does');
    });

    test('location rewriting of a prefix: the longest prefix wins', async () => {
      const file = await conf(`[[registry]]\nprefix = "example.com"\nlocation = "127.0.0.1:${downPort}"\n[[registry]]\nprefix = "example.com/tools/bb"\nlocation = "${plain.host}/lab/busybox"\ninsecure = true\n`);
      const result = await fetch(['docker://example.com/tools/bb:latest', '--registries-conf', file, '--verbose']);
      assert.equal(imageOf(result).digest, digest);
      assert.match(result.stderr, new RegExp(`location ${plain.host}/lab/busybox:latest for example\\.com/tools/bb:latest`));
    });

    test('a malformed file is one line with file and line; an unknown key warns once', async () => {
      const bad = await conf('[[registry]]\nlocation = "x.io"\ninsecure = "yes"\n');
      assertOneLineError(await fetch([`docker://${plain.host}/lab/busybox:latest`, '--registries-conf', bad]), 'img-fetch', 2, new RegExp(`^img-fetch: ${bad}:3: insecure must be true or false, not "yes"$`, 'm'));
      const odd = await conf(`colour = "blue"\n[[registry]]\nlocation = "${plain.host}"\ninsecure = true\n`);
      const result = await fetch([`docker://${plain.host}/lab/busybox:latest`, '--registries-conf', odd]);
      assert.equal(result.status, 0, result.stderr);
      assert.equal(result.stderr.match(/unknown key "colour"/g)?.length, 1);
    });
  });

  describe('short names', () => {
    test('one search registry: lab/busybox is taken from it and named by it', async () => {
      const file = await conf(`unqualified-search-registries = ["${plain.host}"]\nshort-name-mode = "enforcing"\n[[registry]]\nlocation = "${plain.host}"\ninsecure = true\n`);
      const image = imageOf(await fetch(['lab/busybox', '--registries-conf', file]));
      assert.equal(image.reference, `${plain.host}/lab/busybox:latest`);
      assert.equal(image.digest, digest);
    });

    test('two search registries: permissive tries them in order (the first lacks it); enforcing lists them and stops', async () => {
      const registries = `unqualified-search-registries = ["${other.host}", "${plain.host}"]\n[[registry]]\nlocation = "${other.host}"\ninsecure = true\n[[registry]]\nlocation = "${plain.host}"\ninsecure = true\n`;
      const permissive = await conf(registries);
      const result = await fetch(['lab/busybox', '--registries-conf', permissive, '--verbose']);
      assert.equal(imageOf(result).reference, `${plain.host}/lab/busybox:latest`);
      assert.match(result.stderr, new RegExp(`resolving "lab/busybox" using unqualified-search registries \\(${permissive}\\)`));
      const enforcing = await conf(`short-name-mode = "enforcing"\n${registries}`);
      assertOneLineError(await fetch(['lab/busybox', '--registries-conf', enforcing]), 'img-fetch', 2, new RegExp(`short name "lab/busybox" is ambiguous .*it could be ${other.host}/lab/busybox:latest or ${plain.host}/lab/busybox:latest; give the full name`));
      // docker:// names are never short: Docker Hub, as skopeo reads them.
      const explain = await fetch(['docker://lab/busybox', '--registries-conf', permissive, '--explain']);
      assert.match(explain.stdout, /docker:\/\/docker\.io\/lab\/busybox:latest/);
    });

    test('an alias wins over the search registries', async () => {
      const file = await conf(`unqualified-search-registries = ["${other.host}"]\n[aliases]\n"bb" = "${plain.host}/lab/busybox"\n[[registry]]\nlocation = "${plain.host}"\ninsecure = true\n`);
      assert.equal(imageOf(await fetch(['bb', '--registries-conf', file])).reference, `${plain.host}/lab/busybox:latest`);
    });
  });
});
