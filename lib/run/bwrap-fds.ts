/**
 * The fds the supervisor and the container's start-up talk on: bwrap writes JSON to the info
 * and status fds and waits to read one byte from the block fd; the mount prelude (run before
 * bwrap, see mount-prelude.ts) reports its failure on the info fd.
 */
export const FD_INFO = 3;
export const FD_STATUS = 4;
export const FD_BLOCK = 5;

/** What the outer shell reports on the info fd when a mount it makes fails. */
export const MOUNT_FAILED = 'mount-failed: ';

/** ns-enter-exec, open for bwrap to run as /proc/self/fd/6 (see privileges.ts). */
export const FD_HELPER = 6;
/** The container's stderr, which the helper puts on fd 2 just before it execs (until then fd 2 is ns-enter's, for start-up errors). */
export const FD_STDERR = 7;
/** With a terminal: the socket the helper sends the pty's master on (the relay's, see native/ns-enter-exec.c). */
export const FD_CONSOLE = 8;
/** With linux.seccomp: the compiled filter (seccomp-filter.ts), which bwrap reads with --seccomp and loads just before it execs the helper. */
export const FD_SECCOMP = 9;
/** oci-runtime create: the helper, all set up, writes one byte here (created), then waits to read one (`start`) before it execs; at EOF (the supervisor is gone) it exits. */
export const FD_START = 10;
