/**
 * A non-root account for rootless tests, made with `useradd -m` (which also gives it a
 * /etc/subuid range) and removed with its home when the test is done: a test leaves no users.
 */
import { exec, mustExec } from './exec.js';

export interface TestUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
  /** Runs a program as the user (runuser), with HOME set and no inherited XDG dirs of root's. */
  run(program: string, args: string[], options?: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }): ReturnType<typeof exec>;
  remove(): Promise<void>;
}

/** `useraddArgs`: more useradd options, e.g. `-K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0` for a user without a subordinate range. */
export async function createTestUser(name: string, useraddArgs: string[] = []): Promise<TestUser> {
  // A user left by a test run that was killed: start from a clean account.
  if ((await exec('id', ['-u', name])).status === 0) await exec('userdel', ['-r', '-f', name]);
  await mustExec('useradd', ['-m', ...useraddArgs, name]);
  const uid = Number((await mustExec('id', ['-u', name])).trim());
  const gid = Number((await mustExec('id', ['-g', name])).trim());
  const home = (await mustExec('sh', ['-c', `getent passwd ${name} | cut -d: -f6`])).trim();
  return {
    name,
    uid,
    gid,
    home,
    run: (program, args, options = {}) =>
      exec('runuser', ['-u', name, '--', program, ...args], { ...options, env: { HOME: home, XDG_DATA_HOME: '', XDG_RUNTIME_DIR: '', CONTAINER_PARTS_STORE: '', ...options.env } }),
    async remove() {
      await exec('pkill', ['-KILL', '-u', name]);
      await exec('userdel', ['-r', '-f', name]);
    },
  };
}
