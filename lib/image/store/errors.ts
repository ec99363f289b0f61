/**
 * The store's sentinel errors, like umoci's oci/cas (ErrNotExist, ErrInvalid, ErrClobber):
 * callers test the class, not the text; each carries the one line the user sees.
 */
import { ContainerPartsError, NotFoundError, systemErrorText, UnsupportedError } from '../../core/errors.js';

/** A blob the store does not have (cas.ErrNotExist for blobs). */
export class BlobNotExistError extends NotFoundError {
  constructor(readonly digest: string, where: string) {
    super(`blob ${digest} is not in the store ${where}`);
  }
}

/** A name index.json does not have, or a layout that names several images when one was asked for. */
export class NameNotExistError extends NotFoundError {}

/** A directory that is not an OCI layout, or one whose oci-layout or index.json we cannot read (cas.ErrInvalid). */
export class InvalidLayoutError extends UnsupportedError {}

/** A write into the store failed (a full disk, a read-only store): the file and the errno's text, one line. */
export class StoreWriteError extends ContainerPartsError {
  constructor(readonly path: string, cause: NodeJS.ErrnoException) {
    super(`cannot write ${path}: ${systemErrorText(cause.code ?? 'EIO')}`, { cause });
  }
}

/** A file-system error as the store's one line, naming the file it names (else `path`); other errors pass through. */
export function asWriteError(err: unknown, path: string): unknown {
  const errno = err as NodeJS.ErrnoException;
  return err instanceof Error && typeof errno.code === 'string' && errno.syscall ? new StoreWriteError(errno.path ?? path, errno) : err;
}
