/**
 * Typed errors. Every failure a user can cause or meet carries the one-line message the
 * command prints; the tools print `<command>: <message>` and exit with `exitCode`, and show a
 * stack only with --debug. Like umoci's sentinel errors, callers test the class, not the text.
 */
import { constants as osConstants } from 'node:os';

export class ContainerPartsError extends Error {
  /** 1: the operation failed; 2: the input or the command line is wrong. */
  readonly exitCode: number = 1;
  /** An optional second sentence that tells the user what to try ("maybe --rootless will help?"). */
  readonly hint?: string;

  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.hint = options.hint;
  }

  /** The single line a user sees. */
  get userMessage(): string {
    return this.hint ? `${this.message} (${this.hint})` : this.message;
  }
}

/** A flag, an argument or the piped document is wrong; nothing was done. */
export class UsageError extends ContainerPartsError {
  override readonly exitCode = 2;
}

/** The piped document (or --input file) is empty, not JSON, or does not match the schema. */
export class InputError extends UsageError {}

/** A reference (docker://…, oci:…, busybox:latest) cannot be parsed. */
export class ReferenceError extends UsageError {}

/** Content is missing: a blob, a manifest, a tag, a file the user named (umoci's ErrNotExist). */
export class NotFoundError extends ContainerPartsError {}

/** Content does not match its digest or size (the store never keeps such a blob). */
export class DigestMismatchError extends ContainerPartsError {}

/** The registry said no, or could not be reached, after retries. */
export class RegistryError extends ContainerPartsError {
  constructor(message: string, readonly status?: number, options: { hint?: string; cause?: unknown } = {}) {
    super(message, options);
  }
}

/** The registry asked for credentials we do not have, or refused the ones we sent. */
export class AuthError extends RegistryError {}

/** The content is of a kind we refuse (schema1 manifests, unknown media types, hostile layers). */
export class UnsupportedError extends ContainerPartsError {}

/** A layer tries to reach outside its destination, or is otherwise unsafe to apply. */
export class UnsafeLayerError extends ContainerPartsError {}

/** The kernel or the host lacks what the operation needs (overlay, user namespaces, an executor). */
export class HostError extends ContainerPartsError {}

/** A signal stopped the command before its work began; it exits 128+N, as a shell reports death by signal N. */
export class InterruptedError extends ContainerPartsError {
  override readonly exitCode: number;

  constructor(readonly signal: NodeJS.Signals, message: string) {
    super(message);
    this.exitCode = 128 + (osConstants.signals[signal] ?? 0);
  }
}

/** A write would replace something that is there already (umoci's ErrClobber). */
export class ClobberError extends ContainerPartsError {}

/** Formats any thrown value as the one line the user sees. */
export function describeError(err: unknown): string {
  if (err instanceof ContainerPartsError) return err.userMessage;
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    const path = (err as NodeJS.ErrnoException).path;
    if (code && path) return `${systemErrorText(code)}: ${path}`;
    return err.message.split('\n')[0] ?? String(err);
  }
  return String(err);
}

const SYSTEM_ERROR_TEXT: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EEXIST: 'already exists',
  ENOSPC: 'no space left on device',
  EROFS: 'read-only file system',
  ENOTDIR: 'not a directory',
  EISDIR: 'is a directory',
  ELOOP: 'too many levels of symbolic links',
  EDQUOT: 'disk quota exceeded',
  EIO: 'input/output error',
};

/** The errno's text as strerror(3) words it (`no space left on device`). */
export function systemErrorText(code: string): string {
  return SYSTEM_ERROR_TEXT[code] ?? code;
}

export function exitCodeOf(err: unknown): number {
  return err instanceof ContainerPartsError ? err.exitCode : 1;
}
