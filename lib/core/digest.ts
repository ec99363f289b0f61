/**
 * Digests as image-spec writes them (descriptor.md, "Digests"): `algorithm:encoded`, checked
 * against the spec's grammar before a digest is used anywhere (a URL, a path, a comparison),
 * and verified with the algorithm it names. Of the registered algorithms, sha256 and sha512
 * are verified; the store keeps blobs by sha256 only (blobs/sha256/).
 */
import { createHash } from 'node:crypto';
import { DigestMismatchError, UnsupportedError } from './errors.js';

export const SHA256 = /^sha256:([a-f0-9]{64})$/;

/** image-spec: algorithm-component (separator algorithm-component)* ":" [a-zA-Z0-9=_-]+ */
const GRAMMAR = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
/** The registered algorithms we verify, and the form of their encoded part. */
const VERIFIABLE: Record<string, RegExp> = { sha256: /^[a-f0-9]{64}$/, sha512: /^[a-f0-9]{128}$/ };

export type DigestAlgorithm = 'sha256' | 'sha512';

/** A value as it may be shown in a one-line message: quoted, escaped, and short. */
export function quoted(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/**
 * Returns `value` when it is a digest we can verify (sha256 or sha512, in the spec's form);
 * otherwise one line naming `what` (a field, a reference) and what is wrong.
 */
export function checkDigest(value: unknown, what: string): string {
  if (typeof value !== 'string' || !GRAMMAR.test(value)) {
    throw new UnsupportedError(`${what}: ${quoted(value)} is not a digest (want ALGORITHM:HEX, e.g. sha256: and 64 hex digits)`);
  }
  const colon = value.indexOf(':');
  const algorithm = value.slice(0, colon);
  const form = VERIFIABLE[algorithm];
  if (!form) throw new UnsupportedError(`${what}: digest algorithm "${algorithm.slice(0, 20)}" is not supported (only sha256 and sha512)`);
  if (!form.test(value.slice(colon + 1))) throw new UnsupportedError(`${what}: ${quoted(value)} is not a valid ${algorithm} digest (want ${algorithm === 'sha256' ? 64 : 128} lower-case hex digits)`);
  return value;
}

export function algorithmOf(digest: string): DigestAlgorithm {
  return checkDigest(digest, 'digest').slice(0, digest.indexOf(':')) as DigestAlgorithm;
}

export function digestOf(data: Buffer | string, algorithm: DigestAlgorithm = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}`;
}

/** Checks `data` against `digest` with the algorithm the digest names; a mismatch is one line naming `what`. */
export function verifyDigest(data: Buffer, digest: string, what: string): void {
  const actual = digestOf(data, algorithmOf(digest));
  if (actual !== digest) throw new DigestMismatchError(`${what}: content has digest ${actual}`);
}

/** The hex part; refuses algorithms the store does not keep. */
export function digestHex(digest: string): string {
  const match = SHA256.exec(digest);
  if (!match) throw new UnsupportedError(`unsupported digest ${quoted(digest)} (only sha256 is supported)`);
  return match[1] as string;
}
