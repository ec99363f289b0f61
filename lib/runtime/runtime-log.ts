/**
 * --log FILE and --log-format text|json, as runc writes them: one line per message, appended;
 * json is `{"level":"error","msg":"…","time":"…"}` (podman reads the last error from it when a
 * runtime command fails). Without --log nothing is written.
 */
import { appendFileSync } from 'node:fs';

export type LogFormat = 'text' | 'json';

export interface LogTarget {
  file?: string;
  format: LogFormat;
}

export type Level = 'error' | 'warning' | 'info' | 'debug';

export class RuntimeLog {
  constructor(private readonly target: LogTarget) {}

  get options(): LogTarget {
    return this.target;
  }

  error(message: string): void {
    this.write('error', message);
  }

  warn(message: string): void {
    this.write('warning', message);
  }

  write(level: Level, message: string): void {
    if (this.target.file === undefined) return;
    const time = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    const line = this.target.format === 'json' ? JSON.stringify({ level, msg: message, time }) : `time=${JSON.stringify(time)} level=${level} msg=${JSON.stringify(message)}`;
    try {
      appendFileSync(this.target.file, `${line}\n`);
    } catch {
      // a log that cannot be written is no reason to fail the operation it reports on
    }
  }
}
