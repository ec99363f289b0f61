/**
 * Which credential source lookupCredentials uses (each source gives different credentials, so
 * a pull that works for the wrong reason shows), and credential helpers as docker runs them:
 * `credsStore` like `credHelpers` — a helper that says "credentials not found" means
 * anonymous, a helper that fails or is missing is an error naming it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { lookupCredentials } from '../../../lib/image/transport/auth.js';
import { AuthError } from '../../../lib/core/errors.js';
import { tempDir } from '../../helpers/paths.js';

const basic = (user: string, password: string) => Buffer.from(`${user}:${password}`).toString('base64');
const REGISTRY = 'registry.test:5000';

describe('credential sources', () => {
  let dir: { path: string; cleanup: () => Promise<void> };
  let env: NodeJS.ProcessEnv;
  const write = async (path: string, value: unknown) => {
    await mkdir(join(path, '..'), { recursive: true });
    await writeFile(path, JSON.stringify(value));
  };

  before(async () => {
    dir = await tempDir('cp-credentials-');
    const bin = join(dir.path, 'bin');
    await mkdir(bin);
    const helper = (name: string, script: string) => writeFile(join(bin, `docker-credential-${name}`), `#!/bin/sh\n[ "$1" = get ] || exit 1\nread -r server\n${script}\n`).then(() => chmod(join(bin, `docker-credential-${name}`), 0o755));
    await helper('good', `printf '{"ServerURL":"%s","Username":"from-%s","Secret":"s"}\\n' "$server" "$server"`);
    await helper('notfound', 'echo "credentials not found in native keychain"; exit 1');
    await helper('broken', 'echo "the keychain is locked" >&2; exit 1');
    await helper('garbage', 'echo "not json"');
    env = { HOME: join(dir.path, 'home'), REGISTRY_AUTH_FILE: '', XDG_RUNTIME_DIR: '', DOCKER_CONFIG: join(dir.path, 'docker'), PATH: `${bin}:${process.env.PATH}` };
  });
  after(async () => {
    await dir?.cleanup();
  });

  test('each auth file and key form gives its own credentials', async () => {
    const authFile = join(dir.path, 'auth.json');
    await write(authFile, { auths: { [`${REGISTRY}/lab`]: { auth: basic('scoped', 'a') }, [REGISTRY]: { auth: basic('registry-wide', 'b') } } });
    assert.deepEqual(await lookupCredentials(REGISTRY, 'lab/x', { ...env, REGISTRY_AUTH_FILE: authFile }), { username: 'scoped', password: 'a' });
    assert.deepEqual(await lookupCredentials(REGISTRY, 'other/x', { ...env, REGISTRY_AUTH_FILE: authFile }), { username: 'registry-wide', password: 'b' });
    const runtime = join(dir.path, 'runtime');
    await write(join(runtime, 'containers', 'auth.json'), { auths: { [REGISTRY]: { auth: basic('xdg', 'c') } } });
    assert.deepEqual(await lookupCredentials(REGISTRY, 'lab/x', { ...env, XDG_RUNTIME_DIR: runtime }), { username: 'xdg', password: 'c' });
    await write(join(env.DOCKER_CONFIG as string, 'config.json'), { auths: { [`https://${REGISTRY}`]: { username: 'docker-plain', password: 'd' } } });
    assert.deepEqual(await lookupCredentials(REGISTRY, 'lab/x', env), { username: 'docker-plain', password: 'd' });
    await write(join(env.HOME as string, '.docker', 'config.json'), { auths: { [REGISTRY]: { auth: basic('home-docker', 'e') } } });
    assert.deepEqual(await lookupCredentials(REGISTRY, 'lab/x', { ...env, DOCKER_CONFIG: '' }), { username: 'home-docker', password: 'e' });
  });

  test('credHelpers and credsStore run docker-credential-NAME get; the helper\'s answer is used', async () => {
    const config = join(env.DOCKER_CONFIG as string, 'config.json');
    await write(config, { credHelpers: { [REGISTRY]: 'good' } });
    assert.deepEqual(await lookupCredentials(REGISTRY, 'lab/x', env), { username: `from-${REGISTRY}`, password: 's' });
    await write(config, { credsStore: 'good' });
    assert.deepEqual(await lookupCredentials(REGISTRY, 'lab/x', env), { username: `from-${REGISTRY}`, password: 's' });
  });

  test('a helper that finds no credentials means anonymous, for credHelpers and credsStore alike', async () => {
    const config = join(env.DOCKER_CONFIG as string, 'config.json');
    for (const file of [{ credHelpers: { [REGISTRY]: 'notfound' } }, { credsStore: 'notfound' }]) {
      await write(config, file);
      assert.equal(await lookupCredentials(REGISTRY, 'lab/x', env), undefined, JSON.stringify(file));
    }
  });

  test('a failing, garbled or missing helper is an error naming it, for credsStore as for credHelpers', async () => {
    const config = join(env.DOCKER_CONFIG as string, 'config.json');
    const cases: Array<[string, RegExp]> = [
      ['broken', /^credential helper docker-credential-broken failed for registry\.test:5000/],
      ['garbage', /^credential helper docker-credential-garbage printed something that is not JSON/],
      ['absent', /^credential helper docker-credential-absent is not installed/],
    ];
    for (const [helper, message] of cases) {
      for (const file of [{ credHelpers: { [REGISTRY]: helper } }, { credsStore: helper }]) {
        await write(config, file);
        await assert.rejects(lookupCredentials(REGISTRY, 'lab/x', env), (e: unknown) => e instanceof AuthError && message.test(e.message), JSON.stringify(file));
      }
    }
  });
});
