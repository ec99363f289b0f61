/**
 * containers-certs.d(5) as skopeo reads it: HOST[:PORT] directories under the first root that
 * has one, *.crt CAs added to the default roots, NAME.cert + NAME.key client pairs, --cert-dir,
 * a half pair as one line naming the file; and the TLS context made from it, checked by real
 * handshakes against a node TLS server with a test PKI (never the machine's /etc).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { certsRoots, registryCerts, secureContextFor, type RegistryCerts } from '../../../lib/image/transport/certs-dir.js';
import { UsageError } from '../../../lib/core/errors.js';
import { tempDir } from '../../helpers/paths.js';
import { makeTestPki, type TestPki } from '../../helpers/pki.js';

let work: { path: string; cleanup: () => Promise<void> };
let pki: TestPki;
let n = 0;

before(async () => {
  work = await tempDir('cp-certs-');
  pki = await makeTestPki(await mkdirp(join(work.path, 'pki')));
});
after(async () => {
  await work?.cleanup();
});

async function mkdirp(path: string): Promise<string> {
  await mkdir(path, { recursive: true });
  return path;
}

/** A fresh root with HOST dirs holding the given files (name → source file). */
async function root(dirs: Record<string, Record<string, string>>): Promise<string> {
  const base = await mkdirp(join(work.path, `root-${++n}`));
  for (const [host, files] of Object.entries(dirs)) {
    const dir = await mkdirp(join(base, host));
    for (const [name, source] of Object.entries(files)) await copyFile(source, join(dir, name));
  }
  return base;
}

describe('the certs.d lookup', () => {
  test('the roots: ~/.config/containers/certs.d, /etc/containers/certs.d, /etc/docker/certs.d; $CONTAINERS_CERTS_D replaces them', () => {
    assert.deepEqual(certsRoots({ HOME: '/home/u' }), ['/home/u/.config/containers/certs.d', '/etc/containers/certs.d', '/etc/docker/certs.d']);
    assert.deepEqual(certsRoots({ HOME: '/home/u', CONTAINERS_CERTS_D: '/a:/b' }), ['/a', '/b']);
    assert.deepEqual(certsRoots({ HOME: '/home/u', CONTAINERS_CERTS_D: '' }), []);
  });

  test('the first root with a HOST:PORT directory is used, not a merge of all', async () => {
    const first = await root({ 'other:5000': { 'ca.crt': pki.strangerCaCert } });
    const second = await root({ '127.0.0.1:5140': { 'ca.crt': pki.caCert } });
    const third = await root({ '127.0.0.1:5140': { 'stranger.crt': pki.strangerCaCert } });
    const certs = await registryCerts('127.0.0.1:5140', { roots: [first, second, third] });
    assert.equal(certs.dir, join(second, '127.0.0.1:5140'));
    assert.deepEqual(certs.caFiles, [join(second, '127.0.0.1:5140', 'ca.crt')]);
    assert.equal(certs.ca[0], readFileSync(pki.caCert, 'utf8'));
    assert.equal(certs.client, undefined);
  });

  test('the directory is named by host and port: a registry on another port has none', async () => {
    const base = await root({ '127.0.0.1:5140': { 'ca.crt': pki.caCert } });
    assert.deepEqual(await registryCerts('127.0.0.1:5141', { roots: [base] }), { caFiles: [], ca: [] });
    assert.deepEqual(await registryCerts('127.0.0.1', { roots: [base] }), { caFiles: [], ca: [] });
  });

  test('all *.crt in name order are CAs; NAME.cert with NAME.key is the client certificate; other files are ignored', async () => {
    const base = await root({ 'reg.example:443': { 'b.crt': pki.caCert, 'a.crt': pki.strangerCaCert, 'client.cert': pki.clientCert, 'client.key': pki.clientKey, 'README': pki.caCert, 'ca.pem': pki.caCert } });
    const certs = await registryCerts('reg.example:443', { roots: [base] });
    const dir = join(base, 'reg.example:443');
    assert.deepEqual(certs.caFiles, [join(dir, 'a.crt'), join(dir, 'b.crt')]);
    assert.deepEqual(certs.client && { certFile: certs.client.certFile, keyFile: certs.client.keyFile }, { certFile: join(dir, 'client.cert'), keyFile: join(dir, 'client.key') });
  });

  test('--cert-dir is the directory itself, whatever the host; the roots are not looked at', async () => {
    const base = await root({ 'anything': { 'ca.crt': pki.caCert } });
    const other = await root({ '127.0.0.1:5140': { 'stranger.crt': pki.strangerCaCert } });
    const certs = await registryCerts('127.0.0.1:5140', { certDir: join(base, 'anything'), roots: [other] });
    assert.deepEqual(certs.caFiles, [join(base, 'anything', 'ca.crt')]);
    assert.deepEqual(await registryCerts('127.0.0.1:5140', { certDir: join(base, 'missing'), roots: [other] }), { caFiles: [], ca: [] });
  });

  test('a key without its certificate, a certificate without its key, or a *.crt that is not PEM: one line naming the file', async () => {
    const keyOnly = await root({ h: { 'client.key': pki.clientKey } });
    await assert.rejects(registryCerts('h', { roots: [keyOnly] }), (err: Error) => err instanceof UsageError && err.message === `${join(keyOnly, 'h', 'client.key')}: client key without its certificate client.cert`);
    const certOnly = await root({ h: { 'client.cert': pki.clientCert } });
    await assert.rejects(registryCerts('h', { roots: [certOnly] }), (err: Error) => err instanceof UsageError && err.message === `${join(certOnly, 'h', 'client.cert')}: client certificate without its key client.key (CA certificates end in .crt)`);
    const garbage = await root({ h: {} });
    await writeFile(join(garbage, 'h', 'ca.crt'), 'not a certificate\n');
    await assert.rejects(registryCerts('h', { roots: [garbage] }), (err: Error) => err instanceof UsageError && err.message.startsWith(`${join(garbage, 'h', 'ca.crt')}: not a PEM certificate`) && !err.message.includes('\n'));
    const notDir = join(work.path, 'plain-file');
    await writeFile(notDir, '');
    await assert.rejects(registryCerts('h', { certDir: notDir, roots: [] }), /plain-file: not a directory/);
  });
});

describe('the TLS context, in real handshakes', () => {
  /** Connects to a TLS server (server cert from the test CA; a client certificate required when `requireClient`). */
  async function handshake(context: tls.SecureContext | undefined, requireClient: boolean): Promise<string> {
    const server = tls.createServer({ cert: readFileSync(pki.serverCert), key: readFileSync(pki.serverKey), ...(requireClient ? { requestCert: true, rejectUnauthorized: true, ca: readFileSync(pki.clientCaCert) } : {}) }, (socket) => socket.end('hello'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    try {
      return await new Promise<string>((resolve, reject) => {
        const socket = tls.connect({ host: '127.0.0.1', port, ...(context ? { secureContext: context } : {}) }, () => undefined);
        let data = '';
        socket.on('data', (d) => (data += d));
        socket.on('end', () => resolve(data));
        socket.on('error', (err) => reject(err));
        socket.setTimeout(10_000, () => socket.destroy(new Error('timeout')));
      });
    } finally {
      server.close();
    }
  }

  const certsOf = async (files: Record<string, string>): Promise<RegistryCerts> => registryCerts('h', { roots: [await root({ h: files })] });

  test('nothing in the directory: no context of its own (node\'s default roots, which do not know the test CA)', async () => {
    assert.equal(secureContextFor(await certsOf({}), {}), undefined);
    await assert.rejects(handshake(undefined, false), /self.signed|unable to (get|verify)|UNABLE_TO/i);
  });

  test('ca.crt is trusted in addition to the default roots; a stranger CA is not', async () => {
    assert.equal(await handshake(secureContextFor(await certsOf({ 'ca.crt': pki.caCert }), {}), false), 'hello');
    await assert.rejects(handshake(secureContextFor(await certsOf({ 'ca.crt': pki.strangerCaCert }), {}), false), /unable to (get|verify)|UNABLE_TO/i);
  });

  test('the client certificate is sent to a server that requires one; without it the server refuses', async () => {
    assert.equal(await handshake(secureContextFor(await certsOf({ 'ca.crt': pki.caCert, 'client.cert': pki.clientCert, 'client.key': pki.clientKey }), {}), true), 'hello');
    await assert.rejects(handshake(secureContextFor(await certsOf({ 'ca.crt': pki.caCert }), {}), true));
  });

  test('a client key that does not belong to its certificate: one line naming both files', async () => {
    const certs = await certsOf({ 'client.cert': pki.clientCert, 'client.key': pki.serverKey });
    assert.throws(() => secureContextFor(certs, {}), (err: Error) => err instanceof UsageError && err.message.startsWith(`${certs.client?.certFile} and ${certs.client?.keyFile}: `) && !err.message.includes('\n'));
  });
});
