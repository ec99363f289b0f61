/** Where the detached supervisor's program is, and its report fd: what create needs of it without loading the executor. */
import { fileURLToPath } from 'node:url';
import { distPath } from '../core/paths.js';

/** fd 3 of the supervisor: the pipe create reads the report from. */
export const REPORT_FD = 3;

/**
 * The supervisor beside the code that runs: esbuild's bundle of it (dist/libexec/, made by
 * postbuild: one file to load, not the executor's ~60 modules, ~15 ms of each create) for the
 * bundled commands, tsc's module for tsc's output (CP_TOOLS_UNBUNDLED, the mutation runs).
 */
export function supervisorProgram(): string {
  const unbundled = distPath(import.meta.url, 'lib', 'runtime', 'supervisor-path.js');
  if (fileURLToPath(import.meta.url) === unbundled) return distPath(import.meta.url, 'lib', 'runtime', 'supervisor-main.js');
  return distPath(import.meta.url, 'libexec', 'oci-runtime-supervisor.js');
}
