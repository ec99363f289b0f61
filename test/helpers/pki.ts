/**
 * A throwaway PKI made with openssl for TLS tests: a CA, a server certificate for 127.0.0.1
 * signed by it, a client certificate signed by a second CA (the one a registry's clientcas
 * names), and an unrelated CA that must not be trusted. EC P-256 keys: fast to make.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { mustExec } from './exec.js';

export interface TestPki {
  dir: string;
  caCert: string;
  serverCert: string;
  serverKey: string;
  clientCaCert: string;
  clientCert: string;
  clientKey: string;
  /** A CA that signed nothing here. */
  strangerCaCert: string;
}

const KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

async function makeCa(dir: string, name: string): Promise<{ cert: string; key: string }> {
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}-key.pem`);
  await mustExec('openssl', ['req', '-x509', ...KEY, '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=container-parts test ${name}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  return { cert, key };
}

async function makeLeaf(dir: string, name: string, ca: { cert: string; key: string }, extensions: string): Promise<{ cert: string; key: string }> {
  const key = join(dir, `${name}-key.pem`);
  const csr = join(dir, `${name}.csr`);
  const cert = join(dir, `${name}.pem`);
  const ext = join(dir, `${name}.ext`);
  await writeFile(ext, extensions);
  await mustExec('openssl', ['req', ...KEY, '-keyout', key, '-out', csr, '-subj', `/CN=${name}`]);
  await mustExec('openssl', ['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-out', cert, '-days', '2', '-extfile', ext]);
  return { cert, key };
}

export async function makeTestPki(dir: string): Promise<TestPki> {
  const ca = await makeCa(dir, 'ca');
  const clientCa = await makeCa(dir, 'client-ca');
  const stranger = await makeCa(dir, 'stranger-ca');
  const server = await makeLeaf(dir, 'server', ca, 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  const client = await makeLeaf(dir, 'client', clientCa, 'extendedKeyUsage=clientAuth\n');
  return { dir, caCert: ca.cert, serverCert: server.cert, serverKey: server.key, clientCaCert: clientCa.cert, clientCert: client.cert, clientKey: client.key, strangerCaCert: stranger.cert };
}
