/**
 * `list` and `ps`: the containers under a state dir (a table as podman ps shows it: id, image,
 * command, status, pid, created; or runc's JSON array of states) and the processes of one
 * (runc's: `ps -ef` lines of the container's pids, or the pids as JSON).
 */
import { execFile } from 'node:child_process';
import { ContainerPartsError } from '../core/errors.js';
import { findProgram } from '../core/host.js';
import { containerProcesses } from './processes.js';
import { currentStatus, listRecords, ociState, readRecord, type ContainerRecord } from './state.js';

export interface ListOptions {
  format: 'table' | 'json';
  /** Only the ids (runc list -q). */
  quiet?: boolean;
}

export function listing(root: string, options: ListOptions): string {
  const records = listRecords(root);
  if (options.quiet) return records.map((r) => `${r.id}\n`).join('');
  if (options.format === 'json') return `${JSON.stringify(records.map((r) => ({ ...ociState(r), image: r.image ?? '', command: r.command })))}\n`;
  const rows = [['ID', 'IMAGE', 'COMMAND', 'STATUS', 'PID', 'CREATED', 'BUNDLE'], ...records.map(row)];
  return table(rows);
}

function row(record: ContainerRecord): string[] {
  const state = ociState(record);
  const command = record.command.join(' ');
  return [record.id, record.image ?? '-', command.length > 30 ? `${command.slice(0, 27)}...` : command, state.status, String(state.pid), record.created, record.bundle];
}

/** Columns padded as tabwriter pads runc's: the widest cell plus three spaces. */
function table(rows: string[][]): string {
  const widths = (rows[0] as string[]).map((_, column) => Math.max(...rows.map((r) => (r[column] ?? '').length)));
  return rows.map((r) => r.map((cell, column) => (column === r.length - 1 ? cell : cell.padEnd((widths[column] as number) + 3))).join('').trimEnd() + '\n').join('');
}

/** ps: the container's pids as JSON, or the lines `ps PSARGS` (default -ef) prints for them, under its header. */
export async function processTable(root: string, id: string, options: { format: 'table' | 'json'; psArgs: string[] }): Promise<string> {
  const record = readRecord(root, id);
  const status = currentStatus(record);
  if (status !== 'created' && status !== 'running') throw new ContainerPartsError('container not running');
  const pids = containerProcesses(record.pid);
  if (options.format === 'json') return `${JSON.stringify(pids)}\n`;
  const text = await new Promise<string>((resolve, reject) => {
    execFile(findProgram('ps'), options.psArgs.length > 0 ? options.psArgs : ['-ef'], { maxBuffer: 64 << 20 }, (err, stdout) => (err ? reject(new ContainerPartsError(`ps: ${err.message.split('\n')[0]}`)) : resolve(stdout)));
  });
  const [header = '', ...lines] = text.split('\n');
  const column = header.trim().split(/\s+/).indexOf('PID');
  if (column === -1) throw new ContainerPartsError("ps: its output has no PID column (give ps options that show it, such as -ef)");
  const wanted = new Set(pids.map(String));
  return [header, ...lines.filter((l) => wanted.has(l.trim().split(/\s+/)[column] ?? ''))].join('\n') + '\n';
}
