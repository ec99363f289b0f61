/** Where the detached supervisor's program is, and its report fd: what create needs of it without loading the executor. */
import { fileURLToPath } from 'node:url';

/** fd 3 of the supervisor: the pipe create reads the report from. */
export const REPORT_FD = 3;

export function supervisorProgram(): string {
  return fileURLToPath(new URL('./supervisor-main.js', import.meta.url));
}
