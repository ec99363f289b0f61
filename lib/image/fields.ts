/**
 * Field checks for documents that come from outside (manifests, indexes, configs from a
 * registry, a layout or an archive): each check names the field that is wrong, in one line,
 * instead of letting a malformed value reach code that would fail with a JavaScript error.
 */
import { checkDigest, quoted } from '../core/digest.js';
import { UnsupportedError } from '../core/errors.js';
import type { Descriptor, Platform } from './model.js';

export type JsonObject = Record<string, unknown>;

export interface DescriptorRules {
  /** The digest must be one the store can keep (sha256); else sha256 or sha512. */
  storable?: boolean;
  /** The media types the next step can use; any non-empty string when absent. */
  mediaTypes?: ReadonlySet<string>;
  /** The most bytes the content may have. */
  maxSize?: number;
}

/** Checks fields of one document, named `what` in every message. */
export class FieldCheck {
  constructor(readonly what: string) {}

  fail(path: string, problem: string): never {
    throw new UnsupportedError(`${this.what}: ${path} ${problem}`);
  }

  object(value: unknown, path: string): JsonObject {
    if (value === undefined) this.fail(path, 'is missing');
    if (typeof value !== 'object' || value === null || Array.isArray(value)) this.fail(path, `must be an object, got ${kindOf(value)}`);
    return value as JsonObject;
  }

  array(value: unknown, path: string): unknown[] {
    if (value === undefined) this.fail(path, 'is missing');
    if (!Array.isArray(value)) this.fail(path, `must be a list, got ${kindOf(value)}`);
    return value;
  }

  string(value: unknown, path: string): string {
    if (value === undefined) this.fail(path, 'is missing');
    if (typeof value !== 'string' || value === '') this.fail(path, `must be a non-empty string, got ${kindOf(value)}`);
    return value;
  }

  optionalString(value: unknown, path: string): void {
    if (value !== undefined && typeof value !== 'string') this.fail(path, `must be a string, got ${kindOf(value)}`);
  }

  /** A list of strings, or (as Docker writes an unset Cmd) null. */
  optionalStrings(value: unknown, path: string): void {
    if (value === undefined || value === null) return;
    this.array(value, path).forEach((item, i) => {
      if (typeof item !== 'string') this.fail(`${path}[${i}]`, `must be a string, got ${kindOf(item)}`);
    });
  }

  /** An object whose values are strings (annotations, labels), or null. */
  optionalStringMap(value: unknown, path: string): void {
    if (value === undefined || value === null) return;
    for (const [key, item] of Object.entries(this.object(value, path))) {
      if (typeof item !== 'string') this.fail(`${path}[${quoted(key)}]`, `must be a string, got ${kindOf(item)}`);
    }
  }

  optionalObject(value: unknown, path: string): void {
    if (value !== undefined && value !== null) this.object(value, path);
  }

  digest(value: unknown, path: string, storable = false): string {
    if (value === undefined) this.fail(path, 'is missing');
    const digest = checkDigest(value, `${this.what}: ${path}`);
    if (storable && !digest.startsWith('sha256:')) this.fail(path, `is ${digest.slice(0, digest.indexOf(':'))}: only sha256 blobs can be stored (the store keeps blobs/sha256)`);
    return digest;
  }

  size(value: unknown, path: string, max?: number): number {
    if (value === undefined) this.fail(path, 'is missing');
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) this.fail(path, `must be a byte count, got ${quoted(value)}`);
    if (max !== undefined && value > max) this.fail(path, `is ${value} bytes, more than the ${formatBytes(max)} allowed`);
    return value;
  }

  descriptor(value: unknown, path: string, rules: DescriptorRules = {}): Descriptor {
    const fields = this.object(value, path);
    const mediaType = this.string(fields.mediaType, `${path}.mediaType`);
    if (rules.mediaTypes && !rules.mediaTypes.has(mediaType)) this.fail(`${path}.mediaType`, `${quoted(mediaType)} is not a type this toolkit can use`);
    this.digest(fields.digest, `${path}.digest`, rules.storable);
    this.size(fields.size, `${path}.size`, rules.maxSize);
    this.optionalStrings(fields.urls, `${path}.urls`);
    this.optionalStringMap(fields.annotations, `${path}.annotations`);
    if (fields.platform !== undefined) this.platform(fields.platform, `${path}.platform`);
    return fields as unknown as Descriptor;
  }

  platform(value: unknown, path: string): Platform {
    const fields = this.object(value, path);
    this.string(fields.os, `${path}.os`);
    this.string(fields.architecture, `${path}.architecture`);
    this.optionalString(fields.variant, `${path}.variant`);
    return fields as unknown as Platform;
  }
}

function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${quoted(value)}`;
}

export function formatBytes(bytes: number): string {
  return bytes % (1 << 20) === 0 ? `${bytes / (1 << 20)} MiB` : `${bytes} bytes`;
}
