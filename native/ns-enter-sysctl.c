/*
 * ns-enter-sysctl: linux.sysctl of a container, written while it waits on bwrap's block fd.
 * Joins the network, IPC and UTS namespaces of the container's first process (its user
 * namespace first with --user, rootless), not its mount namespace (the host's /proc/sys shows
 * what the writer's namespaces hold), and writes each value. One static program in place of
 * util-linux nsenter and a shell: two execs fewer on every run with a sysctl (podman's default
 * config has one, net.ipv4.ping_group_range).
 *
 *   ns-enter-sysctl PID [--user] -- PATH VALUE [PATH VALUE]...
 *
 * A failure is one line on stderr naming the file and the reason, exit status 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int fail(const char *what, int error) {
  fprintf(stderr, "%s: %s\n", what, strerror(error));
  return 1;
}

static int write_value(const char *path, const char *value) {
  int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (fd < 0) return fail(path, errno);
  size_t length = strlen(value);
  char *line = malloc(length + 2);
  if (line == NULL) return fail(path, ENOMEM);
  memcpy(line, value, length);
  line[length] = '\n';
  ssize_t written = write(fd, line, length + 1);
  int error = errno;
  free(line);
  if (written != (ssize_t)(length + 1)) return fail(path, written < 0 ? error : EIO);
  if (close(fd) != 0) return fail(path, errno);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 3) return fail("usage: ns-enter-sysctl PID [--user] -- PATH VALUE...", EINVAL);
  int i = 2, user = 0;
  if (strcmp(argv[i], "--user") == 0) user = 1, i++;
  if (i >= argc || strcmp(argv[i], "--") != 0 || (argc - i - 1) % 2 != 0) return fail("usage: ns-enter-sysctl PID [--user] -- PATH VALUE...", EINVAL);
  const char *types[] = {"user", "net", "ipc", "uts"};
  int fds[4];
  /* Every namespace opened before any is joined: /proc/PID is the host's until then. */
  for (int t = user ? 0 : 1; t < 4; t++) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%s/ns/%s", argv[1], types[t]);
    fds[t] = open(path, O_RDONLY | O_CLOEXEC);
    if (fds[t] < 0) return fail(path, errno);
  }
  for (int t = user ? 0 : 1; t < 4; t++) {
    if (setns(fds[t], 0) == 0) continue;
    char what[96];
    snprintf(what, sizeof what, "joining the %s namespace of %s", types[t], argv[1]);
    return fail(what, errno);
  }
  for (int p = i + 1; p + 1 < argc; p += 2)
    if (write_value(argv[p], argv[p + 1]) != 0) return 1;
  return 0;
}
