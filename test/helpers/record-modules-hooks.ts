/** The load hook of record-modules.ts (it runs on node's loader thread). */
import { appendFileSync } from 'node:fs';

let log = '';

export function initialize(data: { log: string }): void {
  log = data.log;
}

export async function load(url: string, context: unknown, next: (url: string, context: unknown) => Promise<unknown>): Promise<unknown> {
  appendFileSync(log, `${url}\n`);
  return next(url, context);
}
