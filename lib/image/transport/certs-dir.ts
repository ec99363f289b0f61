/**
 * A registry's TLS files as containers-certs.d(5) lays them out and skopeo reads them: one
 * directory per registry, named HOST[:PORT], under the first of ~/.config/containers/certs.d,
 * /etc/containers/certs.d and /etc/docker/certs.d that has one (the first found is used, not a
 * merge). In it, every `*.crt` is a CA added to the default roots, and `NAME.cert` with
 * `NAME.key` is a client certificate. `--cert-dir DIR` names the directory itself, as
 * skopeo's --src-cert-dir does. $CONTAINERS_CERTS_D (colon-separated roots) replaces the three
 * roots: the tests' way to never touch the machine's /etc.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import type { SecureContext } from 'node:tls';
import { UsageError } from '../../core/errors.js';

export interface ClientCertificate {
  certFile: string;
  keyFile: string;
  cert: string;
  key: string;
}

/** What the certs directory of one registry holds. */
export interface RegistryCerts {
  /** The directory that was read (undefined when none exists). */
  dir?: string;
  /** CA files, in name order; added to the default roots, never replacing them. */
  caFiles: string[];
  ca: string[];
  /** The first client certificate in name order (skopeo offers all; a server takes the first that fits). */
  client?: ClientCertificate;
}

export interface CertsLookup {
  /** --cert-dir: this directory, whatever the host. */
  certDir?: string;
  /** The roots under which HOST[:PORT] directories are looked for, in order. */
  roots: string[];
}

/** The certs.d roots in the order containers/image searches them, or $CONTAINERS_CERTS_D's. */
export function certsRoots(env: NodeJS.ProcessEnv): string[] {
  if (env.CONTAINERS_CERTS_D !== undefined) return env.CONTAINERS_CERTS_D.split(':').filter((root) => root !== '');
  const home = env.HOME || homedir();
  return [join(home, '.config', 'containers', 'certs.d'), '/etc/containers/certs.d', '/etc/docker/certs.d'];
}

/**
 * The TLS files for `hostPort` (the registry as the reference names it: docker.io, not
 * registry-1.docker.io). A key without its certificate, or the reverse, is an error naming it.
 * Read synchronously: a few stat-sized calls at start-up (mostly of directories that do not
 * exist), each of which would otherwise be a round trip through the thread pool.
 */
export async function registryCerts(hostPort: string, lookup: CertsLookup): Promise<RegistryCerts> {
  const candidates = lookup.certDir !== undefined ? [lookup.certDir] : lookup.roots.map((root) => join(root, hostPort));
  for (const dir of candidates) {
    const names = listDir(dir);
    if (names) return readCertsDir(dir, names.sort());
  }
  return { caFiles: [], ca: [] };
}

/** The names in `dir`, or undefined when it is missing or unreadable (skipped, as containers/image does). */
function listDir(dir: string): string[] | undefined {
  try {
    return readdirSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EACCES' || code === 'EPERM') return undefined;
    if (code === 'ENOTDIR') throw new UsageError(`${dir}: not a directory (a certs directory holds *.crt, *.cert and *.key files)`);
    throw err;
  }
}

function readCertsDir(dir: string, names: string[]): RegistryCerts {
  const result: RegistryCerts = { dir, caFiles: [], ca: [] };
  const has = new Set(names);
  for (const name of names) {
    const path = join(dir, name);
    if (name.endsWith('.crt')) {
      const text = readFileSync(path, 'utf8');
      if (!text.includes('-----BEGIN CERTIFICATE-----')) throw new UsageError(`${path}: not a PEM certificate (a *.crt in a certs directory is a CA certificate)`);
      result.caFiles.push(path);
      result.ca.push(text);
    } else if (name.endsWith('.cert')) {
      const keyName = `${name.slice(0, -'.cert'.length)}.key`;
      if (!has.has(keyName)) throw new UsageError(`${path}: client certificate without its key ${keyName} (CA certificates end in .crt)`);
      result.client ??= { certFile: path, keyFile: join(dir, keyName), cert: readFileSync(path, 'utf8'), key: readFileSync(join(dir, keyName), 'utf8') };
    } else if (name.endsWith('.key')) {
      const certName = `${name.slice(0, -'.key'.length)}.cert`;
      if (!has.has(certName)) throw new UsageError(`${path}: client key without its certificate ${certName}`);
    }
  }
  return result;
}

/**
 * The TLS context for connections to one registry: the default roots plus the certs
 * directory's CAs, and its client certificate. Undefined when the directory adds nothing
 * (node's default context is then used, and no root store is parsed for it).
 */
export function secureContextFor(certs: RegistryCerts, env: NodeJS.ProcessEnv): SecureContext | undefined {
  if (certs.ca.length === 0 && !certs.client) return undefined;
  const tls = createRequire(import.meta.url)('node:tls') as typeof import('node:tls');
  // `ca` replaces node's roots: keep them (and NODE_EXTRA_CA_CERTS, which node adds to them) first.
  const ca = certs.ca.length > 0 ? [...tls.rootCertificates, ...extraCaCerts(env), ...certs.ca] : undefined;
  try {
    return tls.createSecureContext({ ...(ca ? { ca } : {}), ...(certs.client ? { cert: certs.client.cert, key: certs.client.key } : {}) });
  } catch (err) {
    const files = certs.client ? `${certs.client.certFile} and ${certs.client.keyFile}` : certs.caFiles.join(', ');
    throw new UsageError(`${files}: ${(err as Error).message.split('\n')[0]}`, { cause: err });
  }
}

function extraCaCerts(env: NodeJS.ProcessEnv): string[] {
  if (!env.NODE_EXTRA_CA_CERTS) return [];
  try {
    return [readFileSync(env.NODE_EXTRA_CA_CERTS, 'utf8')];
  } catch {
    return [];
  }
}
