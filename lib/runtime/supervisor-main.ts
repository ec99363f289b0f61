/**
 * The detached supervisor's program: `node supervisor-main.js [REQUEST-JSON]`, spawned by create
 * in a session of its own (without the request, early: then it reads it on fd 3), with the container's stdio as its 0-2 and a pipe to create on fd 3,
 * on which it writes one line (the Report) and which it then closes. It claims the container
 * first (claim.ts) when the request says from what. It exits with the
 * container's exit status. It never writes to its stderr: that is the container's.
 */
import { closeSync, readSync, writeSync } from 'node:fs';
import { describeError } from '../core/errors.js';
import { claimContainer } from './claim.js';
import { RuntimeLog } from './runtime-log.js';
import { superviseContainer, type Report, type SuperviseRequest } from './supervisor.js';

import { REPORT_FD, supervisorProgram } from './supervisor-path.js';

function reportOnce(): (report: Report) => void {
  let done = false;
  return (report) => {
    if (done) return;
    done = true;
    try {
      writeSync(REPORT_FD, `${JSON.stringify(report)}\n`);
      closeSync(REPORT_FD);
    } catch {
      // create is gone: nobody to tell
    }
  };
}

/** The request: argv[2], or (spawned early: early-supervisor.ts) one line create writes on REPORT_FD; undefined at EOF (create ended without it). */
function requestOf(): SuperviseRequest | undefined {
  if (process.argv[2] !== undefined) return JSON.parse(process.argv[2]) as SuperviseRequest;
  const chunks: Buffer[] = [];
  // A blocking read: there is nothing else to do until create says what to supervise.
  for (let chunk = Buffer.alloc(65536); ; chunk = Buffer.alloc(65536)) {
    const length = readSync(REPORT_FD, chunk);
    if (length === 0) return undefined;
    chunks.push(chunk.subarray(0, length));
    const text = Buffer.concat(chunks).toString('utf8');
    if (text.includes('\n')) return JSON.parse(text.slice(0, text.indexOf('\n'))) as SuperviseRequest;
  }
}

async function main(): Promise<void> {
  const request = requestOf();
  if (!request) return;
  const report = reportOnce();
  // The container's terminal, if create had one, is not the supervisor's to lose: a hangup there does not end it.
  process.on('SIGHUP', () => undefined);
  try {
    // A claim refused (a bad config, an id taken) is create's error, and nothing was made: the log is create's to write.
    if (request.claim) await claimContainer(request);
  } catch (err) {
    report({ created: false, error: describeError(err), exitCode: 1 });
    process.exitCode = 1;
    return;
  }
  try {
    const status = await superviseContainer(request, report);
    process.exitCode = status.code;
  } catch (err) {
    report({ created: false, error: describeError(err), exitCode: 1 });
    new RuntimeLog(request.log).error(describeError(err));
    process.exitCode = 1;
  }
}

if (process.argv[1] === supervisorProgram()) void main();
