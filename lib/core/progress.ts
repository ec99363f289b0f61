/**
 * Per-item progress on stderr: a live display on a terminal, one line per event for CI logs
 * (--progress=plain), nothing in a pipe. img-fetch reports blobs, img-unpack layers.
 */
export type ProgressMode = 'auto' | 'plain' | 'none';

export interface ItemProgress {
  add(bytes: number): void;
  /** Something happened on the way (a retry, a resumed download). */
  note(message: string): void;
  /** Finished: bytes, time and rate, and `detail` after them (e.g. the number of entries). */
  done(detail?: string): void;
  failed(reason: string): void;
}

export interface Progress {
  item(label: string, total?: number): ItemProgress;
  /** An item there was nothing to do for (a blob already in the store). */
  skipped(label: string, note: string): void;
  finish(): void;
}

export function createProgress(mode: ProgressMode, stderr: NodeJS.WritableStream & { isTTY?: boolean }, quiet: boolean): Progress {
  if (quiet || mode === 'none' || (mode === 'auto' && !stderr.isTTY)) return SILENT;
  return mode === 'plain' ? new PlainProgress(stderr) : new TerminalProgress(stderr);
}

export const SILENT_ITEM: ItemProgress = { add() {}, note() {}, done() {}, failed() {} };
const SILENT: Progress = { item: () => SILENT_ITEM, skipped() {}, finish() {} };

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

function rate(bytes: number, startedAt: number): string {
  const seconds = Math.max((Date.now() - startedAt) / 1000, 0.001);
  return `${formatBytes(bytes / seconds)}/s`;
}

/** The line an item ends with: `done, 1.0 MiB in 0.12 s (8.3 MiB/s), 412 entries`. */
function doneText(bytes: number, startedAt: number, detail?: string): string {
  return `done, ${formatBytes(bytes)} in ${((Date.now() - startedAt) / 1000).toFixed(2)} s (${rate(bytes, startedAt)})${detail ? `, ${detail}` : ''}`;
}

class PlainProgress implements Progress {
  constructor(private readonly out: NodeJS.WritableStream) {}
  item(label: string, total?: number): ItemProgress {
    const startedAt = Date.now();
    let bytes = 0;
    this.out.write(`${label}: start${total !== undefined ? ` (${formatBytes(total)})` : ''}\n`);
    return {
      add: (n) => {
        bytes += n;
      },
      note: (message) => {
        this.out.write(`${label}: ${message}\n`);
      },
      done: (detail) => {
        this.out.write(`${label}: ${doneText(bytes, startedAt, detail)}\n`);
      },
      failed: (reason) => {
        this.out.write(`${label}: ${reason}\n`);
      },
    };
  }
  skipped(label: string, note: string): void {
    this.out.write(`${label}: ${note}\n`);
  }
  finish(): void {}
}

interface Row {
  label: string;
  total?: number;
  bytes: number;
  startedAt: number;
  /** The final status. */
  note?: string;
  /** The last event (retry, resume), shown until the item is done. */
  event?: string;
}

/** Redraws one line per item in place, at most ten times a second. */
class TerminalProgress implements Progress {
  private readonly rows: Row[] = [];
  private drawn = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly out: NodeJS.WritableStream) {}

  item(label: string, total?: number): ItemProgress {
    const row: Row = { label, total, bytes: 0, startedAt: Date.now() };
    this.rows.push(row);
    this.schedule();
    return {
      add: (n) => {
        row.bytes += n;
        this.schedule();
      },
      note: (message) => {
        row.event = message;
        this.schedule();
      },
      done: (detail) => {
        row.note = doneText(row.bytes, row.startedAt, detail);
        this.schedule();
      },
      failed: (reason) => {
        row.note = reason;
        this.schedule();
      },
    };
  }

  skipped(label: string, note: string): void {
    this.rows.push({ label, bytes: 0, startedAt: Date.now(), note });
    this.schedule();
  }

  finish(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.draw();
  }

  private schedule(): void {
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.draw();
    }, 100);
  }

  private draw(): void {
    let text = this.drawn > 0 ? `\x1b[${this.drawn}A` : '';
    for (const row of this.rows) {
      const status = row.note ?? `${formatBytes(row.bytes)}${row.total ? ` / ${formatBytes(row.total)}` : ''} ${rate(row.bytes, row.startedAt)}${row.event ? ` (${row.event})` : ''}`;
      text += `\x1b[2K${row.label}  ${status}\n`;
    }
    this.drawn = this.rows.length;
    this.out.write(text);
  }
}
