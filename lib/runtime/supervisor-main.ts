/**
 * The detached supervisor's program: `node supervisor-main.js REQUEST-JSON`, spawned by create
 * in a session of its own, with the container's stdio as its 0-2 and a pipe to create on fd 3,
 * on which it writes one line (the Report) and which it then closes. It claims the container
 * first (claim.ts) when the request says from what. It exits with the
 * container's exit status. It never writes to its stderr: that is the container's.
 */
import { closeSync, writeSync } from 'node:fs';
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

async function main(): Promise<void> {
  const request = JSON.parse(process.argv[2] ?? '{}') as SuperviseRequest;
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
