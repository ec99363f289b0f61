/**
 * A small token issuer for docker-registry's `auth: token` (the distribution token spec): an
 * HTTP server on 127.0.0.1 that answers GET /token?service=…&scope=… with an RS256 JWT whose
 * x5c header carries a self-signed certificate, the registry's rootcertbundle. Made with
 * openssl, so the registry verifies the tokens with no shortcut.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createSign, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { mustExec } from './exec.js';

export const TOKEN_SERVICE = 'container-parts-lab';
export const TOKEN_ISSUER = 'container-parts-test-issuer';

export interface TokenIssuerOptions {
  /** user:password that may push and pull; without --creds a client gets pull only if `anonymousPull`. */
  user: string;
  anonymousPull: boolean;
  /** The lifetime the issuer states (expires_in) and writes in the token (exp). */
  expiresInSeconds: number;
}

export interface TokenRequest {
  scope: string | null;
  service: string | null;
  user: string | undefined;
  at: number;
}

export interface TokenIssuer {
  realm: string;
  certFile: string;
  /** Every token request, in order. */
  requests: TokenRequest[];
  options: TokenIssuerOptions;
  /** How many tokens to issue with an `exp` already past (the registry refuses them), before good ones. */
  staleTokens: number;
  /** A new signing key and certificate (in certFile): tokens signed before no longer verify, once the registry restarts. */
  rotateKey(): Promise<void>;
  stop(): Promise<void>;
}

export async function startTokenIssuer(dir: string, options: TokenIssuerOptions): Promise<TokenIssuer> {
  const keyFile = join(dir, 'issuer.key');
  const certFile = join(dir, 'issuer.crt');
  let key = '';
  let certDer = '';
  const newKey = async () => {
    await mustExec('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=container-parts-test-issuer']);
    key = await readFile(keyFile, 'utf8');
    certDer = pemBody(await readFile(certFile, 'utf8'));
  };
  await newKey();
  const requests: TokenRequest[] = [];

  const issuer: TokenIssuer = {
    realm: '',
    certFile,
    requests,
    options,
    staleTokens: 0,
    rotateKey: newKey,
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const user = basicUser(req.headers.authorization);
    requests.push({ scope: url.searchParams.get('scope'), service: url.searchParams.get('service'), user: user?.name, at: Date.now() });
    if (url.pathname !== '/token') return reply(res, 404, { error: 'not found' });
    if (user && `${user.name}:${user.password}` !== options.user) return reply(res, 401, { errors: [{ code: 'UNAUTHORIZED', message: 'bad credentials' }] });
    if (!user && !options.anonymousPull) return reply(res, 401, { errors: [{ code: 'UNAUTHORIZED', message: 'anonymous access refused' }] });
    const access = url.searchParams.getAll('scope').flatMap((scope) => {
      const [type, name, actions] = scope.split(':');
      if (type !== 'repository' || !name || !actions) return [];
      const granted = actions.split(',').filter((a) => a === 'pull' || (user !== undefined && (a === 'push' || a === '*')));
      return [{ type, name, actions: granted }];
    });
    const now = Math.floor(Date.now() / 1000);
    const stale = issuer.staleTokens > 0;
    if (stale) issuer.staleTokens--;
    // The registry allows 60 s of clock skew: a stale token must be older than that.
    const exp = stale ? now - 600 : now + options.expiresInSeconds;
    const claims = { iss: TOKEN_ISSUER, sub: user?.name ?? '', aud: url.searchParams.get('service'), exp, nbf: now - 900, iat: now - 900, jti: randomBytes(8).toString('hex'), access };
    const token = signJwt({ typ: 'JWT', alg: 'RS256', x5c: [certDer] }, claims, key);
    reply(res, 200, { token, access_token: token, expires_in: options.expiresInSeconds, issued_at: new Date().toISOString() });
  };
  const server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  issuer.realm = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/token`;
  return issuer;
}

function reply(res: ServerResponse, status: number, body: object): void {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}

function basicUser(header: string | undefined): { name: string; password: string } | undefined {
  if (!header?.startsWith('Basic ')) return undefined;
  const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return { name: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

function pemBody(pem: string): string {
  return pem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, '');
}

function base64url(data: string | Buffer): string {
  return Buffer.from(data).toString('base64url');
}

function signJwt(header: object, claims: object, privateKeyPem: string): string {
  const signingInput = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
  const signature = createSign('RSA-SHA256').update(signingInput).sign(privateKeyPem);
  return `${signingInput}.${base64url(signature)}`;
}
