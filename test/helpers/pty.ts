/**
 * A terminal of the test's own: python3's pty module runs a shell command on a new pty (the
 * test's "user terminal"), answers what it prints with the given keystrokes or window sizes,
 * and reports everything printed and the exit status. Each step waits for a text; the whole
 * run has a deadline, after which the command is killed (no test hangs).
 */
import { exec } from './exec.js';

export interface PtyStep {
  /** Wait until the output so far contains this. */
  waitFor: string;
  /** Then type this. */
  send?: string;
  /** Then set the terminal's window size (rows, cols): the foreground process group gets SIGWINCH. */
  resize?: [number, number];
}

export interface PtyRun {
  output: string;
  status: number;
  /** Steps whose text never came (the run was killed at the deadline). */
  timedOut: boolean;
}

const DRIVER = String.raw`
import fcntl, json, os, pty, select, signal, struct, sys, termios, time
spec = json.loads(sys.argv[1])
pid, master = pty.fork()
if pid == 0:
    os.execvp('sh', ['sh', '-c', spec['command']])
fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack('HHHH', spec['rows'], spec['cols'], 0, 0))
output, steps, deadline, timed_out = b'', list(spec['steps']), time.monotonic() + spec['timeout'], False
while True:
    while steps and steps[0]['waitFor'].encode() in output:
        step = steps.pop(0)
        if 'resize' in step:
            fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack('HHHH', step['resize'][0], step['resize'][1], 0, 0))
        if 'send' in step:
            os.write(master, step['send'].encode())
    left = deadline - time.monotonic()
    if left <= 0:
        timed_out = True
        os.kill(pid, signal.SIGKILL)
        break
    ready, _, _ = select.select([master], [], [], min(left, 1.0))
    if not ready:
        continue
    try:
        chunk = os.read(master, 65536)
    except OSError:
        break
    if not chunk:
        break
    output += chunk
_, status = os.waitpid(pid, 0)
code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
print(json.dumps({'output': output.decode('utf8', 'replace'), 'status': code, 'timedOut': timed_out or bool(steps)}))
`;

/** Runs `command` (a shell command line) on a new pty of `rows` x `cols`. */
export async function runOnPty(command: string, options: { steps?: PtyStep[]; rows?: number; cols?: number; timeoutSeconds?: number } = {}): Promise<PtyRun> {
  const spec = { command, steps: options.steps ?? [], rows: options.rows ?? 24, cols: options.cols ?? 80, timeout: options.timeoutSeconds ?? 30 };
  const result = await exec('python3', ['-c', DRIVER, JSON.stringify(spec)], { timeoutMs: (spec.timeout + 15) * 1000 });
  if (result.status !== 0) throw new Error(`the pty driver failed: ${result.stderr}`);
  return JSON.parse(result.stdout) as PtyRun;
}
