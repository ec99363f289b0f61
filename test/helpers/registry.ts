/**
 * A real registry (Debian's docker-registry) for a test, started with scripts/registry.sh on
 * 127.0.0.1 and a free port, and stopped by `stop()` — call it from `after()`.
 */
import { createServer } from 'node:net';
import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { mustExec } from './exec.js';
import { cleanUpAtExit, SCRIPTS, tempDir } from './paths.js';

export interface TestRegistry {
  port: number;
  host: string;
  dir: string;
  /** The registry's own log (it says why it refused a token). */
  log(): Promise<string>;
  /** Stops the registry but keeps its data dir (to start it again, or look at it). */
  kill(): Promise<void>;
  /** Starts it again on the same port and data (e.g. after its token certificate changed). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

export interface RegistryOptions {
  htpasswd?: string;
  token?: { realm: string; issuer: string; certFile: string };
  /** HTTPS with this certificate and key; with `clientCa`, a client certificate signed by it is required. */
  tls?: { cert: string; key: string; clientCa?: string };
  port?: number;
}

export async function startRegistry(options: RegistryOptions = {}): Promise<TestRegistry> {
  const dir = await tempDir('cp-registry-');
  const port = options.port ?? (await freePort());
  const args = ['start', dir.path, String(port)];
  if (options.htpasswd) args.push('--htpasswd', options.htpasswd);
  if (options.token) args.push('--token', `${options.token.realm},${options.token.issuer},${options.token.certFile}`);
  if (options.tls) args.push('--tls', [options.tls.cert, options.tls.key, ...(options.tls.clientCa ? [options.tls.clientCa] : [])].join(','));
  await mustExec(join(SCRIPTS, 'registry.sh'), args);
  // Registered after the directory's own cleanup, so it runs before it at exit (a killed test file).
  const cancelStopAtExit = cleanUpAtExit(() => execFileSync(join(SCRIPTS, 'registry.sh'), ['stop', dir.path], { stdio: 'ignore', timeout: 10_000 }));
  const kill = () => mustExec(join(SCRIPTS, 'registry.sh'), ['stop', dir.path]).then(() => undefined);
  const restart = () => mustExec(join(SCRIPTS, 'registry.sh'), args).then(() => undefined);
  return {
    port,
    host: `127.0.0.1:${port}`,
    dir: dir.path,
    log: () => readFile(join(dir.path, 'registry.log'), 'utf8').catch(() => ''),
    kill,
    restart,
    async stop() {
      cancelStopAtExit();
      await kill();
      await dir.cleanup();
    },
  };
}

/** Builds the lab busybox image (an OCI layout at WORKDIR/layout, image "busybox") and pushes it to each destination (skopeo copy syntax). */
export async function pushBusybox(workDir: string, destinations: string[], env: NodeJS.ProcessEnv = {}): Promise<void> {
  await mustExec(join(SCRIPTS, 'build-busybox-image.sh'), [workDir, ...destinations], { env });
}

/** A registry of its own with the lab busybox image at lab/busybox:latest (built in a temp dir, removed after): the registry and the image's docker:// name. */
export async function registryWithBusybox(): Promise<{ registry: TestRegistry; image: string }> {
  const registry = await startRegistry();
  const image = `docker://${registry.host}/lab/busybox:latest`;
  const work = await tempDir('cp-busybox-build-');
  try {
    await pushBusybox(work.path, [image]);
  } catch (err) {
    await registry.stop();
    throw err;
  } finally {
    await work.cleanup();
  }
  return { registry, image };
}
