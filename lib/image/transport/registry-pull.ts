/**
 * One reference's registries, the way containers tools reach them: registries.conf decides the
 * endpoints (short-name candidates; for each, its mirrors then its rewritten location; blocked
 * ones refused), certs.d (or --cert-dir) gives each endpoint's CAs and client certificate, and
 * `insecure = true` or --tls-verify decides verification. The top manifest comes from the first
 * endpoint that serves it (as skopeo chooses); every later manifest and blob is asked of that
 * endpoint first and, if it fails or sends content that does not match its digest, of the
 * others of the same candidate in order. Used by img-fetch (and img-push to come) as one place.
 */
import type { SecureContext } from 'node:tls';
import { ContainerPartsError, RegistryError } from '../../core/errors.js';
import { formatReference, manifestReference, type ImageReference } from '../reference.js';
import { certsRoots, registryCerts, secureContextFor, type RegistryCerts } from './certs-dir.js';
import { isShortName, pullSources, resolveShortName, type PullSource } from './pull-sources.js';
import { loadRegistriesConf } from './registries-conf.js';
import { lookupCredentials, type Credentials } from './auth.js';
import { Registry, type BlobOptions, type FetchedManifest, type ManifestDigest, type RegistryOptions } from './registry.js';
import type { BlobWriter } from '../store/blob-writer.js';

/** An endpoint with the TLS settings its requests use. */
export interface PlannedSource extends PullSource {
  tlsVerify: boolean;
  /** Why verification is off, for --verbose and --explain. */
  insecureBecause?: string;
  certs: RegistryCerts;
}

export interface PullCandidate {
  /** The name the image is known by (what the store calls it). */
  reference: ImageReference;
  sources: PlannedSource[];
}

/** What registries.conf and certs.d make of one reference; read before any request (--explain shows it). */
export interface RegistryPlan {
  candidates: PullCandidate[];
  /** How a short name was resolved. */
  shortName?: string;
  /** The registries.conf files read. */
  files: string[];
}

export interface PlanOptions {
  /** SOURCE as typed, when it had no transport: a short name there is resolved by registries.conf. */
  typed?: string;
  /** --cert-dir */
  certDir?: string;
  /** --registries-conf */
  registriesConf?: string;
  /** --tls-verify when given; else each endpoint's registries.conf `insecure` decides. */
  tlsVerify?: boolean;
  env: NodeJS.ProcessEnv;
  warn?: (message: string) => void;
}

export async function planPull(reference: ImageReference, options: PlanOptions): Promise<RegistryPlan> {
  const conf = await loadRegistriesConf({ path: options.registriesConf, env: options.env, warn: options.warn });
  const short = options.typed !== undefined && isShortName(options.typed) ? resolveShortName(conf, options.typed) : undefined;
  const roots = certsRoots(options.env);
  const candidates: PullCandidate[] = [];
  for (const candidate of short?.candidates ?? [reference]) {
    const sources: PlannedSource[] = [];
    for (const source of pullSources(conf, candidate)) {
      const certs = await registryCerts(source.reference.registry, { certDir: options.certDir, roots });
      const insecureBecause = options.tlsVerify === false ? '--tls-verify=false' : options.tlsVerify === undefined && source.insecure ? `insecure = true in ${source.entry?.origin}` : undefined;
      sources.push({ ...source, certs, tlsVerify: insecureBecause === undefined, ...(insecureBecause ? { insecureBecause } : {}) });
    }
    candidates.push({ reference: candidate, sources });
  }
  return { candidates, shortName: short?.description, files: conf.files };
}

/** The plan of a reference with no configuration: itself, verified as `tlsVerify` says. */
export function directPlan(reference: ImageReference, tlsVerify: boolean): RegistryPlan {
  const source: PlannedSource = { reference, insecure: !tlsVerify, role: 'location', tlsVerify, certs: { caFiles: [], ca: [] }, ...(tlsVerify ? {} : { insecureBecause: '--tls-verify=false' }) };
  return { candidates: [{ reference, sources: [source] }], files: [] };
}

/** The lines --verbose says about an endpoint before its first request. */
export function describeSource(source: PlannedSource, logical: ImageReference): string[] {
  const name = formatReference(source.reference);
  const rewritten = name !== formatReference(logical);
  const via = source.entry ? ` (registries.conf: prefix "${source.entry.prefix}" in ${source.entry.origin})` : '';
  const lines = [`${source.role === 'mirror' ? 'mirror' : 'location'} ${name}${rewritten || source.role === 'mirror' ? ` for ${formatReference(logical)}` : ''}${via}`];
  const host = source.reference.registry;
  if (source.certs.caFiles.length) lines.push(`${host}: CA ${source.certs.caFiles.join(', ')} (beside the default roots)`);
  if (source.certs.client) lines.push(`${host}: client certificate ${source.certs.client.certFile} (key ${source.certs.client.keyFile})`);
  if (!source.tlsVerify) lines.push(`${host}: TLS not verified, plain HTTP allowed (${source.insecureBecause})`);
  return lines;
}

export type PullOptions = Omit<RegistryOptions, 'tlsVerify' | 'credentials' | 'secureContext'> & {
  /** --creds: for the registry the reference names only (a mirror elsewhere gets its own from auth.json). */
  credentials?: Credentials;
  env?: NodeJS.ProcessEnv;
};

interface Attempt {
  source: PlannedSource;
  error: unknown;
}

export class RegistryPull {
  private chosen: { candidate: PullCandidate; source: PlannedSource } | undefined;
  private readonly clients = new Map<PlannedSource, Registry>();

  constructor(readonly plan: RegistryPlan, private readonly options: PullOptions) {}

  /** The name of the candidate that served the top manifest (the first before that). */
  get reference(): ImageReference {
    return (this.chosen?.candidate ?? (this.plan.candidates[0] as PullCandidate)).reference;
  }

  /** The endpoint (location or mirror) that served the top manifest: where the image's blobs come from. */
  get origin(): ImageReference | undefined {
    return this.chosen?.source.reference;
  }

  /** The manifest the reference's tag or digest names: from the first endpoint of the first candidate that has it. */
  async topManifest(accept: readonly string[]): Promise<FetchedManifest> {
    if (this.plan.shortName) this.options.debug?.(this.plan.shortName);
    const attempts: Attempt[] = [];
    for (const candidate of this.plan.candidates) {
      for (const source of candidate.sources) {
        try {
          const manifest = await this.client(source, candidate.reference).manifest(source.reference.repository, manifestReference(source.reference), accept);
          this.chosen = { candidate, source };
          return manifest;
        } catch (error) {
          this.failed(attempts, { source, error });
        }
      }
    }
    throw combined(attempts);
  }

  /** A manifest by digest (an index's entry), verified; from the chosen endpoint, else the others. */
  manifest(digest: ManifestDigest, accept: readonly string[]): Promise<FetchedManifest> {
    return this.fromAny((registry, source) => registry.manifest(source.reference.repository, digest, accept));
  }

  /** A blob, checked against its digest before another endpoint could no longer be asked. */
  blob(digest: string, writer: BlobWriter, options: BlobOptions = {}): Promise<void> {
    return this.fromAny(async (registry, source) => {
      try {
        await registry.blob(source.reference.repository, digest, writer, options);
        writer.verify();
      } catch (err) {
        options.progress?.add(-writer.written);
        await writer.restart();
        throw err;
      }
    }, options.signal);
  }

  /** `signal`: the request's own (the copy stops the other downloads when one fails): then no other endpoint is asked. */
  private async fromAny<T>(request: (registry: Registry, source: PlannedSource) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const candidate = this.chosen?.candidate ?? (this.plan.candidates[0] as PullCandidate);
    const first = this.chosen?.source;
    const order = first ? [first, ...candidate.sources.filter((s) => s !== first)] : candidate.sources;
    const attempts: Attempt[] = [];
    for (const source of order) {
      try {
        return await request(this.client(source, candidate.reference), source);
      } catch (error) {
        if (signal?.aborted) throw error;
        this.failed(attempts, { source, error });
      }
    }
    throw combined(attempts);
  }

  private failed(attempts: Attempt[], attempt: Attempt): void {
    if (this.options.signal?.aborted) throw attempt.error;
    attempts.push(attempt);
    this.options.debug?.(`${formatReference(attempt.source.reference)} failed: ${messageOf(attempt.error)}`);
  }

  /** The client of an endpoint, made on first use (a blocked endpoint fails without a request). */
  private client(source: PlannedSource, logical: ImageReference): Registry {
    if (source.blocked) throw new RegistryError(source.blocked);
    let client = this.clients.get(source);
    if (!client) {
      for (const line of describeSource(source, logical)) this.options.debug?.(line);
      // A mirror is asked once (skopeo does not retry it either): when it is down, the next endpoint is asked at once.
      client = registryClient(source, logical, { ...this.options, ...(source.role === 'mirror' ? { retries: 0 } : {}) });
      this.clients.set(source, client);
    }
    return client;
  }

  close(): void {
    for (const client of this.clients.values()) client.close();
  }
}

/**
 * The client of one endpoint: its TLS settings from the plan, --creds for the registry the
 * reference names (another gets its own from auth.json), else auth.json; img-push uses it too.
 */
export function registryClient(source: PlannedSource, logical: ImageReference, options: PullOptions & { actions?: string }): Registry {
  const env = options.env ?? process.env;
  const sameRegistry = source.reference.registry === logical.registry;
  const secureContext: SecureContext | undefined = secureContextFor(source.certs, env);
  return new Registry(source.reference.registry, {
    ...options,
    tlsVerify: source.tlsVerify,
    secureContext,
    credentials: async () => (sameRegistry ? options.credentials : undefined) ?? (await lookupCredentials(source.reference.registry, source.reference.repository, env)),
  });
}

function messageOf(err: unknown): string {
  return err instanceof ContainerPartsError ? err.userMessage : err instanceof Error ? err.message : String(err);
}

/**
 * The last endpoint's error (the location, as skopeo reports it), with what the others said
 * after it on the same line; its class (and so the exit status) is kept.
 */
function combined(attempts: Attempt[]): unknown {
  const last = attempts[attempts.length - 1] as Attempt;
  if (attempts.length === 1 || !(last.error instanceof Error)) return last.error;
  const others = attempts.slice(0, -1).map((a) => `${formatReference(a.source.reference)}: ${messageOf(a.error)}`);
  last.error.message = `${last.error.message} (also tried: ${others.join('; ')})`;
  return last.error;
}
