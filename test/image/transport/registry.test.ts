/**
 * The registry client against docker-registry's own `auth: token`, with a test token issuer
 * (test/helpers/token-issuer.ts) signing RS256 JWTs the registry verifies against the
 * issuer's certificate: anonymous and credentialed token flows, token reuse, renewal when a
 * token is due and when the registry refuses a cached one.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { tool, assertOneLineError } from '../../helpers/exec.js';
import { tempDir } from '../../helpers/paths.js';
import { pushBusybox, startRegistry, type TestRegistry } from '../../helpers/registry.js';
import { startTokenIssuer, TOKEN_ISSUER, type TokenIssuer } from '../../helpers/token-issuer.js';
import { MANIFEST_ACCEPT } from '../../../lib/image/manifest.js';
import { Registry } from '../../../lib/image/transport/registry.js';
import { parseChallenge } from '../../../lib/image/transport/auth.js';
import { retryAfterMs } from '../../../lib/image/transport/retry.js';

describe('a token-auth registry (docker-registry auth: token, our test issuer)', () => {
  let issuer: TokenIssuer;
  let registry: TestRegistry;
  let work: { path: string; cleanup: () => Promise<void> };
  let ref: string;

  before(async () => {
    work = await tempDir('cp-token-');
    issuer = await startTokenIssuer(work.path, { user: 'lab:secret', anonymousPull: true, expiresInSeconds: 300 });
    registry = await startRegistry({ token: { realm: issuer.realm, issuer: TOKEN_ISSUER, certFile: issuer.certFile } });
    ref = `${registry.host}/lab/busybox:latest`;
    try {
      await pushBusybox(join(work.path, 'bb'), [`docker://${ref}`], { DEST_CREDS: 'lab:secret' });
    } catch (err) {
      throw new Error(`push to the token registry failed: ${(err as Error).message}\nregistry log:\n${await registry.log()}`);
    }
  });
  after(async () => {
    await registry?.stop();
    await issuer?.stop();
    await work?.cleanup();
  });

  const pull = (args: string[]) => tool('img-fetch', [`docker://${ref}`, '--tls-verify=false', ...args]);

  test('anonymous pull: one token for the repository, reused for the manifest and every blob', async () => {
    const before = issuer.requests.length;
    const result = await pull(['--store', join(work.path, 'store-anon')]);
    assert.equal(result.status, 0, `${result.stderr}\nregistry log:\n${await registry.log()}`);
    const requests = issuer.requests.slice(before);
    assert.equal(requests.length, 1, JSON.stringify(requests));
    assert.equal(requests[0]?.scope, 'repository:lab/busybox:pull');
    assert.equal(requests[0]?.service, 'container-parts-lab');
    assert.equal(requests[0]?.user, undefined);
  });

  test('--creds: the token service gets them as Basic', async () => {
    const before = issuer.requests.length;
    const result = await pull(['--store', join(work.path, 'store-creds'), '--creds', 'lab:secret']);
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(issuer.requests.slice(before).map((r) => r.user), ['lab']);
  });

  test('wrong credentials, and anonymous access refused: one line, exit 1', async () => {
    const wrong = await pull(['--store', join(work.path, 'store-wrong'), '--creds', 'lab:nope']);
    assertOneLineError(wrong, 'img-fetch', 1, /token service refused the credentials of lab for lab\/busybox/);
    issuer.options.anonymousPull = false;
    try {
      const anonymous = await pull(['--store', join(work.path, 'store-wrong')]);
      assertOneLineError(anonymous, 'img-fetch', 1, /refused anonymous access for lab\/busybox.*--creds/);
    } finally {
      issuer.options.anonymousPull = true;
    }
  });

  test('a token the registry refuses as soon as it is issued: one line, no loop', async () => {
    issuer.staleTokens = 1;
    const before = issuer.requests.length;
    const result = await pull(['--store', join(work.path, 'store-stale')]);
    assertOneLineError(result, 'img-fetch', 1, new RegExp(`${registry.host}: authentication required for manifest lab/busybox:latest.*refused the token`));
    assert.equal(issuer.requests.length - before, 1);
    issuer.staleTokens = 0;
  });

  test('a token is renewed when its expires_in has run out, and shared by concurrent requests', async () => {
    issuer.options.expiresInSeconds = 2;
    const client = new Registry(registry.host, { tlsVerify: false });
    try {
      const before = issuer.requests.length;
      const manifest = await client.manifest('lab/busybox', 'latest', MANIFEST_ACCEPT);
      await Promise.all([1, 2, 3, 4].map(() => client.manifest('lab/busybox', manifest.digest, MANIFEST_ACCEPT)));
      assert.equal(issuer.requests.length - before, 1, 'one token while it is valid');
      await new Promise((resolve) => setTimeout(resolve, 2100));
      await Promise.all([1, 2, 3].map(() => client.manifest('lab/busybox', 'latest', MANIFEST_ACCEPT)));
      assert.equal(issuer.requests.length - before, 2, 'renewed once when due');
    } finally {
      client.close();
      issuer.options.expiresInSeconds = 300;
    }
  });

  test('a cached token the registry no longer accepts (the issuer rotated its key) is replaced once', async () => {
    const client = new Registry(registry.host, { tlsVerify: false });
    try {
      await client.manifest('lab/busybox', 'latest', MANIFEST_ACCEPT);
      const before = issuer.requests.length;
      await issuer.rotateKey();
      await registry.restart();
      const again = await client.manifest('lab/busybox', 'latest', MANIFEST_ACCEPT);
      assert.ok(again.body.length > 0);
      assert.equal(issuer.requests.length - before, 1);
    } finally {
      client.close();
    }
  });

  test('a token service that cannot be reached: one line naming it', async () => {
    const client = new Registry(registry.host, { tlsVerify: false, retries: 0 });
    await issuer.stop();
    try {
      await assert.rejects(client.manifest('lab/other', 'latest', MANIFEST_ACCEPT), { name: 'RegistryError', message: /token service http:\/\/127\.0\.0\.1:\d+: connection refused/ });
    } finally {
      client.close();
    }
  });
});

test('WWW-Authenticate challenges and Retry-After are read as the RFCs write them', () => {
  assert.deepEqual(parseChallenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"'), {
    scheme: 'bearer',
    params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull' },
  });
  assert.deepEqual(parseChallenge('Basic realm="lab"'), { scheme: 'basic', params: { realm: 'lab' } });
  assert.equal(parseChallenge('Negotiate'), undefined);
  assert.equal(retryAfterMs('2'), 2000);
  assert.equal(retryAfterMs(null), undefined);
  assert.equal(retryAfterMs('3600'), 30_000, 'capped');
  const inTwoSeconds = new Date(Date.now() + 2000).toUTCString();
  assert.ok((retryAfterMs(inTwoSeconds) ?? 0) > 500);
});
