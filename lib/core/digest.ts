/** sha256 digests as the OCI specs write them: `sha256:` and 64 lower-case hex digits. */
import { createHash } from 'node:crypto';
import { UnsupportedError } from './errors.js';

export const SHA256 = /^sha256:([a-f0-9]{64})$/;

export function digestOf(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** The hex part; refuses algorithms the store does not keep. */
export function digestHex(digest: string): string {
  const match = SHA256.exec(digest);
  if (!match) throw new UnsupportedError(`unsupported digest "${digest}" (only sha256 is supported)`);
  return match[1] as string;
}
