/**
 * Credentials as skopeo and podman find them, checked against a real registry with htpasswd
 * auth: --creds, $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json, docker's
 * config.json (`auths` base64 entries and a `credHelpers` program on PATH).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tool, assertOneLineError } from '../../helpers/exec.js';
import { tempDir } from '../../helpers/paths.js';
import { pushBusybox, startRegistry, type TestRegistry } from '../../helpers/registry.js';
import { authFilePaths, lookupCredentials, parseCredsFlag } from '../../../lib/image/transport/auth.js';
import { UsageError } from '../../../lib/core/errors.js';

const basic = (user: string, password: string) => Buffer.from(`${user}:${password}`).toString('base64');

describe('an htpasswd registry', () => {
  let registry: TestRegistry;
  let work: { path: string; cleanup: () => Promise<void> };
  let ref: string;
  /** An environment with no credentials anywhere: a fresh HOME, no auth files. */
  let clean: NodeJS.ProcessEnv;

  before(async () => {
    work = await tempDir('cp-auth-');
    registry = await startRegistry({ htpasswd: 'lab:secret' });
    ref = `${registry.host}/lab/private:latest`;
    await pushBusybox(join(work.path, 'bb'), [`docker://${ref}`], { DEST_CREDS: 'lab:secret' });
    const home = join(work.path, 'home');
    await mkdir(home);
    clean = { HOME: home, REGISTRY_AUTH_FILE: '', XDG_RUNTIME_DIR: '', DOCKER_CONFIG: '' };
  });
  after(async () => {
    await registry?.stop();
    await work?.cleanup();
  });

  let stores = 0;
  const pull = (args: string[], env: NodeJS.ProcessEnv = {}) => tool('img-fetch', [`docker://${ref}`, '--tls-verify=false', '--store', join(work.path, `store-${++stores}`), ...args], { env: { ...clean, ...env } });

  test('--creds USER:PASS', async () => {
    const result = await pull(['--creds', 'lab:secret']);
    assert.equal(result.status, 0, result.stderr);
  });

  test('no credentials, wrong credentials, a malformed --creds: one line each', async () => {
    assertOneLineError(await pull([]), 'img-fetch', 1, new RegExp(`${registry.host}: authentication required.*--creds`));
    assertOneLineError(await pull(['--creds', 'lab:wrong']), 'img-fetch', 1, new RegExp(`${registry.host}: authentication required for manifest lab/private:latest.*credentials were refused`));
    assertOneLineError(await pull(['--creds', 'nocolon']), 'img-fetch', 2, /--creds: want USERNAME:PASSWORD/);
  });

  test('$REGISTRY_AUTH_FILE (containers-auth.json), with a repository-scoped key', async () => {
    const file = join(work.path, 'auth.json');
    await writeFile(file, JSON.stringify({ auths: { [`${registry.host}/lab`]: { auth: basic('lab', 'secret') }, [registry.host]: { auth: basic('lab', 'wrong') } } }));
    const result = await pull([], { REGISTRY_AUTH_FILE: file });
    assert.equal(result.status, 0, result.stderr);
  });

  test('$XDG_RUNTIME_DIR/containers/auth.json', async () => {
    const runtime = join(work.path, 'runtime');
    await mkdir(join(runtime, 'containers'), { recursive: true });
    await writeFile(join(runtime, 'containers', 'auth.json'), JSON.stringify({ auths: { [registry.host]: { auth: basic('lab', 'secret') } } }));
    const result = await pull([], { XDG_RUNTIME_DIR: runtime });
    assert.equal(result.status, 0, result.stderr);
  });

  test('docker config.json `auths` (base64), in $DOCKER_CONFIG and in ~/.docker', async () => {
    const dockerConfig = join(work.path, 'docker-config');
    await mkdir(dockerConfig);
    await writeFile(join(dockerConfig, 'config.json'), JSON.stringify({ auths: { [`http://${registry.host}`]: { auth: basic('lab', 'secret') } } }));
    assert.equal((await pull([], { DOCKER_CONFIG: dockerConfig })).status, 0);
    const home = join(work.path, 'home-docker');
    await mkdir(join(home, '.docker'), { recursive: true });
    await writeFile(join(home, '.docker', 'config.json'), JSON.stringify({ auths: { [registry.host]: { auth: basic('lab', 'secret') } } }));
    assert.equal((await pull([], { HOME: home })).status, 0);
  });

  test('a credHelpers entry runs docker-credential-NAME get from PATH', async () => {
    const bin = join(work.path, 'bin');
    await mkdir(bin);
    const asked = join(work.path, 'helper-asked');
    await writeFile(
      join(bin, 'docker-credential-cptest'),
      `#!/bin/sh\n[ "$1" = get ] || exit 1\nread -r server\necho "$server" > ${JSON.stringify(asked)}\nprintf '{"ServerURL":"%s","Username":"lab","Secret":"secret"}\\n' "$server"\n`,
    );
    await chmod(join(bin, 'docker-credential-cptest'), 0o755);
    const dockerConfig = join(work.path, 'docker-helper');
    await mkdir(dockerConfig);
    await writeFile(join(dockerConfig, 'config.json'), JSON.stringify({ credHelpers: { [registry.host]: 'cptest' } }));
    const result = await pull([], { DOCKER_CONFIG: dockerConfig, PATH: `${bin}:${process.env.PATH}` });
    assert.equal(result.status, 0, result.stderr);
    assert.equal((await readFile(asked, 'utf8')).trim(), registry.host);

    await writeFile(join(dockerConfig, 'config.json'), JSON.stringify({ credHelpers: { [registry.host]: 'absent' } }));
    assertOneLineError(await pull([], { DOCKER_CONFIG: dockerConfig }), 'img-fetch', 1, /docker-credential-absent is not installed/);
  });

  test('--creds wins over the auth files', async () => {
    const file = join(work.path, 'auth-wrong.json');
    await writeFile(file, JSON.stringify({ auths: { [registry.host]: { auth: basic('lab', 'wrong') } } }));
    assert.equal((await pull(['--creds', 'lab:secret'], { REGISTRY_AUTH_FILE: file })).status, 0);
  });
});

describe('credential lookup order', () => {
  test('auth files are read in the order skopeo reads them; the first that knows the registry wins', async () => {
    const dir = await tempDir('cp-auth-order-');
    try {
      const env = { HOME: dir.path, REGISTRY_AUTH_FILE: join(dir.path, 'a.json'), XDG_RUNTIME_DIR: join(dir.path, 'run'), DOCKER_CONFIG: join(dir.path, 'docker') };
      assert.deepEqual(authFilePaths(env), [env.REGISTRY_AUTH_FILE, join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json'), join(env.DOCKER_CONFIG, 'config.json')]);
      await mkdir(env.DOCKER_CONFIG);
      await writeFile(join(env.DOCKER_CONFIG, 'config.json'), JSON.stringify({ auths: { 'https://index.docker.io/v1/': { auth: basic('hub', 'h') }, 'quay.io': { auth: basic('q', 'from-docker') } } }));
      await writeFile(env.REGISTRY_AUTH_FILE, JSON.stringify({ auths: { 'quay.io': { auth: basic('q', 'from-registry-auth-file') } } }));
      assert.deepEqual(await lookupCredentials('quay.io', 'a/b', env), { username: 'q', password: 'from-registry-auth-file' });
      assert.deepEqual(await lookupCredentials('docker.io', 'library/busybox', env), { username: 'hub', password: 'h' });
      assert.equal(await lookupCredentials('ghcr.io', 'x/y', env), undefined);
      await writeFile(env.REGISTRY_AUTH_FILE, '{not json');
      await assert.rejects(lookupCredentials('quay.io', 'a/b', env), /a\.json: not valid JSON/);
    } finally {
      await dir.cleanup();
    }
  });

  test('--creds splits at the first colon', () => {
    assert.deepEqual(parseCredsFlag('user:pa:ss'), { username: 'user', password: 'pa:ss' });
    assert.throws(() => parseCredsFlag(':x'), UsageError);
  });
});
