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
