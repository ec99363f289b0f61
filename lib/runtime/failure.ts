/** runc's one exit status for every error of a runtime command. */
import { ContainerPartsError, UsageError } from '../core/errors.js';

/** Bad input to a runtime command (a config, an id) is a failure (exit 1), as every runc error is. */
export function asFailure(err: unknown): never {
  if (err instanceof UsageError) throw new ContainerPartsError(err.userMessage, { cause: err });
  throw err;
}
