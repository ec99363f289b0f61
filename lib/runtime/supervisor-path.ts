/** Where the detached supervisor's program is, and its report fd: what create needs of it without loading the executor. */
import { distPath } from '../core/paths.js';

/** fd 3 of the supervisor: the pipe create reads the report from. */
export const REPORT_FD = 3;

/** tsc's module, not a bundle: the commands run bundled from dist/bin/, the supervisor is its own program. */
export function supervisorProgram(): string {
  return distPath(import.meta.url, 'lib', 'runtime', 'supervisor-main.js');
}
