/*
 * ns-enter-exec: the last step of ns-enter's start-up inside the container, and the host's
 * end of a container's terminal. Static, so it needs nothing of the container's (no libc) and
 * nothing of the host's inside the container: bwrap executes it from an fd ns-enter holds
 * open (/proc/self/fd/N), so no file of the host is bound in, and it closes that fd (and every
 * other fd above stderr) before it execs the command, leaving no trace.
 *
 * In the container (as the container's root, after bwrap made the namespaces and mounts):
 *   ns-enter-exec [--start-fd FD] [--rlimit NAME:SOFT:HARD]... [--console FD] [--cwd DIR] [--stderr FD]
 *                 [--umask OCTAL] --uid N --gid N (--groups G,G | --clear-groups | --keep-groups)
 *                 --caps BOUNDING:INHERITABLE:AMBIENT:EFFECTIVE:PERMITTED (hex masks)
 *                 [--init] -- CMD ARGS...
 * sets the rlimits, HOME (from the container's /etc/passwd, else /, unless the env has one),
 * makes a missing working directory (as runc does), allocates a pty in the container's own
 * devpts and sends its master over the console socket, sets groups, gid, uid, the five
 * capability sets and no_new_privs, finds CMD, waits for one byte on the start fd (oci-runtime's
 * start: EOF means the runtime is gone, and it exits) and execs CMD (with --init: runs as PID 1 from a private
 * copy of itself, forwarding signals to CMD and reaping zombies, as catatonit does).
 *
 * On the host: ns-enter-exec relay -- ARGV... runs ARGV with a console socket on fd 8,
 * receives the pty master and copies between it and its own stdin/stdout (the user's
 * terminal, in raw mode while it runs, restored afterwards); the window size follows SIGWINCH.
 * ns-enter-exec relay --console-socket PATH -- ARGV... sends the master to the unix socket at
 * PATH instead, as runc does for --console-socket (podman's conmon holds the terminal then).
 *
 * Every message starts with "ns-enter: " and says what in the config or command is wrong.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>
#include <linux/capability.h>

#define CONSOLE_FD 8
#define INIT_NAME "ns-enter-init"

static void die(int status, const char *format, ...) {
  char line[1024];
  va_list args;
  va_start(args, format);
  int n = vsnprintf(line, sizeof line - 1, format, args);
  va_end(args);
  if (n < 0) n = 0;
  if (n > (int)sizeof line - 2) n = sizeof line - 2;
  line[n++] = '\n';
  dprintf(2, "ns-enter: %.*s", n, line);
  _exit(status);
}

/* ---------- the container side ---------- */

struct plan {
  uid_t uid;
  gid_t gid;
  int set_groups; /* 1: the list below (may be empty); 0: keep the groups (setgroups is denied) */
  gid_t groups[NGROUPS_MAX];
  size_t ngroups;
  uint64_t caps[5]; /* bounding, inheritable, ambient, effective, permitted */
  const char *cwd;
  int console_fd;
  gid_t console_gid; /* the devpts mount's gid= (runc: tty, 5), else (gid_t)-1: the opener's */
  int stderr_fd;
  int init;
  int umask; /* process.user.umask, or -1: the inherited one */
  int start_fd; /* oci-runtime create: wait here for start, just before the exec, or -1 */
  char **command;
};

static const struct { const char *name; int resource; } RLIMITS[] = {
  {"RLIMIT_AS", RLIMIT_AS}, {"RLIMIT_CORE", RLIMIT_CORE}, {"RLIMIT_CPU", RLIMIT_CPU},
  {"RLIMIT_DATA", RLIMIT_DATA}, {"RLIMIT_FSIZE", RLIMIT_FSIZE}, {"RLIMIT_LOCKS", RLIMIT_LOCKS},
  {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK}, {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE}, {"RLIMIT_NICE", RLIMIT_NICE},
  {"RLIMIT_NOFILE", RLIMIT_NOFILE}, {"RLIMIT_NPROC", RLIMIT_NPROC}, {"RLIMIT_RSS", RLIMIT_RSS},
  {"RLIMIT_RTPRIO", RLIMIT_RTPRIO}, {"RLIMIT_RTTIME", RLIMIT_RTTIME}, {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
  {"RLIMIT_STACK", RLIMIT_STACK},
};

/* A limit as the config gives it; past 2^64-1 (JSON numbers round up) it is unlimited. */
static rlim_t limit_value(const char *text, const char *whole) {
  char *end;
  errno = 0;
  unsigned long long value = strtoull(text, &end, 10);
  if (end == text || (*end != ':' && *end != '\0')) die(2, "process.rlimits: %s is not NAME:SOFT:HARD", whole);
  return errno == ERANGE ? RLIM_INFINITY : (rlim_t)value;
}

static void set_rlimit(const char *spec) {
  const char *colon = strchr(spec, ':');
  if (!colon) die(2, "process.rlimits: %s is not NAME:SOFT:HARD", spec);
  size_t length = (size_t)(colon - spec);
  for (size_t i = 0; i < sizeof RLIMITS / sizeof RLIMITS[0]; i++) {
    if (strlen(RLIMITS[i].name) != length || strncmp(RLIMITS[i].name, spec, length) != 0) continue;
    const char *hard = strchr(colon + 1, ':');
    if (!hard) die(2, "process.rlimits: %s is not NAME:SOFT:HARD", spec);
    struct rlimit limit = {limit_value(colon + 1, spec), limit_value(hard + 1, spec)};
    if (setrlimit(RLIMITS[i].resource, &limit) != 0) die(1, "process.rlimits: cannot set %.*s to %s: %s", (int)length, spec, colon + 1, strerror(errno));
    return;
  }
  die(2, "process.rlimits: unknown limit %.*s", (int)length, spec);
}

static unsigned long number(const char *text, const char *flag) {
  char *end;
  errno = 0;
  unsigned long value = strtoul(text, &end, 10);
  if (end == text || *end != '\0' || errno) die(2, "%s: %s is not a number", flag, text);
  return value;
}

static void parse_groups(struct plan *plan, const char *list) {
  plan->set_groups = 1;
  for (const char *at = list; *at;) {
    if (plan->ngroups == NGROUPS_MAX) die(2, "process.user.additionalGids: more than %d groups", NGROUPS_MAX);
    char *end;
    plan->groups[plan->ngroups++] = (gid_t)strtoul(at, &end, 10);
    if (end == at || (*end != ',' && *end != '\0')) die(2, "process.user.additionalGids: %s is not a list of gids", list);
    at = *end == ',' ? end + 1 : end;
  }
}

static void parse_caps(struct plan *plan, const char *text) {
  const char *at = text;
  for (int i = 0; i < 5; i++) {
    char *end;
    plan->caps[i] = strtoull(at, &end, 16);
    if (end == at || *end != (i < 4 ? ':' : '\0')) die(2, "--caps: %s is not five hex masks", text);
    at = end + 1;
  }
}

/* oci-runtime create: the container says it is set up (one byte: create returns then), and waits until start writes one byte; EOF means its supervisor is gone. */
static void wait_for_start(int fd) {
  char go;
  ssize_t n;
  if (write(fd, "R", 1) != 1) die(1, "the runtime's supervisor ended before the container was created");
  do n = read(fd, &go, 1); while (n < 0 && errno == EINTR);
  if (n != 1) die(1, "the runtime's supervisor ended before the container was started");
  close(fd);
}

static void parse_plan(struct plan *plan, int argc, char **argv) {
  memset(plan, 0, sizeof *plan);
  plan->console_fd = plan->stderr_fd = -1;
  plan->console_gid = (gid_t)-1;
  plan->set_groups = 1;
  plan->umask = -1;
  plan->start_fd = -1;
  for (int i = 1; i < argc; i++) {
    const char *flag = argv[i];
    if (strcmp(flag, "--") == 0) {
      if (i + 1 >= argc) die(2, "process.args: nothing to run");
      plan->command = argv + i + 1;
      return;
    }
    if (strcmp(flag, "--init") == 0) { plan->init = 1; continue; }
    if (strcmp(flag, "--clear-groups") == 0) { plan->set_groups = 1; plan->ngroups = 0; continue; }
    if (strcmp(flag, "--keep-groups") == 0) { plan->set_groups = 0; continue; }
    if (i + 1 >= argc) die(2, "%s needs a value", flag);
    const char *value = argv[++i];
    if (strcmp(flag, "--uid") == 0) plan->uid = (uid_t)number(value, "process.user.uid");
    else if (strcmp(flag, "--gid") == 0) plan->gid = (gid_t)number(value, "process.user.gid");
    else if (strcmp(flag, "--groups") == 0) parse_groups(plan, value);
    else if (strcmp(flag, "--caps") == 0) parse_caps(plan, value);
    else if (strcmp(flag, "--rlimit") == 0) set_rlimit(value);
    else if (strcmp(flag, "--cwd") == 0) plan->cwd = value;
    else if (strcmp(flag, "--console") == 0) plan->console_fd = (int)number(value, flag);
    else if (strcmp(flag, "--console-gid") == 0) plan->console_gid = (gid_t)number(value, "mounts: devpts gid=");
    else if (strcmp(flag, "--stderr") == 0) plan->stderr_fd = (int)number(value, flag);
    else if (strcmp(flag, "--start-fd") == 0) plan->start_fd = (int)number(value, flag);
    else if (strcmp(flag, "--umask") == 0) {
      char *end;
      unsigned long mask = strtoul(value, &end, 8);
      if (end == value || *end != '\0' || mask > 0777) die(2, "process.user.umask: %s is not a umask", value);
      plan->umask = (int)mask;
    }
    else die(2, "ns-enter-exec: unknown flag %s", flag);
  }
  die(2, "process.args: nothing to run");
}

/* runc: HOME from the user's entry in the container's /etc/passwd, else /, unless the env sets it. */
static void set_home(uid_t uid) {
  if (getenv("HOME")) return;
  const char *home = "/";
  static char line[4096];
  /* O_NONBLOCK and a regular-file check: an image's /etc/passwd may be a FIFO. */
  int fd = open("/etc/passwd", O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  struct stat info;
  FILE *file = fd >= 0 && fstat(fd, &info) == 0 && S_ISREG(info.st_mode) ? fdopen(fd, "r") : NULL;
  if (!file && fd >= 0) close(fd);
  while (file && fgets(line, sizeof line, file)) {
    char *fields[7];
    int n = 0;
    for (char *cursor = line; n < 7; n++) fields[n] = strsep(&cursor, ":\n");
    if (!fields[6] || !fields[2] || !fields[5] || fields[5][0] == '\0') continue;
    char *end;
    unsigned long id = strtoul(fields[2], &end, 10);
    if (end == fields[2] || *end != '\0' || id != uid) continue;
    home = fields[5];
    break;
  }
  setenv("HOME", home, 1);
  if (file) fclose(file);
}

/* mkdir -p, 0755, as runc makes a missing working directory. */
static int make_dirs(const char *path) {
  char buffer[PATH_MAX];
  if (strlen(path) >= sizeof buffer) return errno = ENAMETOOLONG, -1;
  strcpy(buffer, path);
  for (char *slash = buffer + 1;; slash++) {
    if (*slash != '/' && *slash != '\0') continue;
    char saved = *slash;
    *slash = '\0';
    if (mkdir(buffer, 0755) != 0 && errno != EEXIST) return -1;
    *slash = saved;
    if (saved == '\0') return 0;
  }
}

/* Returns 0 when done, 1 when the user may be allowed where root is not (retried after the switch). PWD says where, as bwrap's --chdir set it. */
static int enter_cwd(const char *cwd) {
  if (!cwd) return 0;
  setenv("PWD", cwd, 1);
  if (chdir(cwd) == 0) return 0;
  if (errno == EACCES) return 1;
  if (errno == ENOENT) {
    if (make_dirs(cwd) != 0) die(1, "process.cwd: %s does not exist and cannot be made: %s", cwd, strerror(errno));
    if (chdir(cwd) == 0) return 0;
  }
  die(1, "process.cwd: cannot change to %s: %s", cwd, strerror(errno));
  return 0;
}

/* fd over a unix socket (SCM_RIGHTS), with `data` as the message; the number of bytes sent, or -1. */
static ssize_t send_fd_with(int socket, int fd, const char *data, size_t length) {
  struct iovec iov = {(void *)data, length};
  union { char buffer[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } control;
  struct msghdr message = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buffer, .msg_controllen = sizeof control.buffer};
  struct cmsghdr *header = CMSG_FIRSTHDR(&message);
  header->cmsg_level = SOL_SOCKET;
  header->cmsg_type = SCM_RIGHTS;
  header->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(header), &fd, sizeof fd);
  return sendmsg(socket, &message, 0);
}

static void send_fd(int socket, int fd) {
  if (send_fd_with(socket, fd, "M", 1) != 1) die(1, "process.terminal: cannot hand the terminal to ns-enter: %s", strerror(errno));
}

/* A new pty in the container's own devpts: the master goes to the relay, the slave is returned. */
static int open_console(int console_fd, uid_t uid, gid_t gid) {
  /* gid: the devpts mount's gid= as the kernel would give it (runc's default config: tty), or -1. */
  int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) die(1, "process.terminal: cannot open /dev/ptmx in the container: %s", strerror(errno));
  char name[64];
  if (unlockpt(master) != 0 || ptsname_r(master, name, sizeof name) != 0) die(1, "process.terminal: cannot unlock the new pty: %s", strerror(errno));
  /* The peer of this very master, not whatever the image put at /dev/pts/N (as runc does). */
  int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0) die(1, "process.terminal: cannot open %s: %s", name, strerror(errno));
  /* The process's user owns its terminal, as after login (and as runc leaves it); a rootless
     namespace may not map the group (then the opener's stays) or the uid (then it stays root's). */
  if (fchown(slave, uid, gid) != 0 && fchown(slave, uid, (gid_t)-1) != 0 && errno != EINVAL) die(1, "process.terminal: cannot give %s to uid %u: %s", name, (unsigned)uid, strerror(errno));
  send_fd(console_fd, master);
  close(master);
  /* The relay answers once it has set the window size and raw mode, so that the command's
     first look at its terminal (stty size, a shell's prompt) sees them. EOF: no answer, go on. */
  char ack;
  ssize_t n;
  do n = read(console_fd, &ack, 1); while (n < 0 && errno == EINTR);
  close(console_fd);
  return slave;
}

static int last_cap(void) {
  int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
  char text[16] = {0};
  int last = fd >= 0 && read(fd, text, sizeof text - 1) > 0 ? atoi(text) : 40;
  if (fd >= 0) close(fd);
  return last;
}

static void set_credentials(const struct plan *plan) {
  int last = last_cap();
  for (int cap = 0; cap <= last && cap < 64; cap++) {
    if (plan->caps[0] & (1ULL << cap)) continue;
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) die(1, "process.capabilities.bounding: cannot drop capability %d: %s", cap, strerror(errno));
  }
  if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) die(1, "cannot keep capabilities across the user switch: %s", strerror(errno));
  if (plan->set_groups && setgroups(plan->ngroups, plan->groups) != 0) die(1, "process.user.additionalGids: cannot set the groups: %s", strerror(errno));
  if (setresgid(plan->gid, plan->gid, plan->gid) != 0) die(1, "process.user.gid: cannot become gid %u: %s (is it mapped in the user namespace?)", (unsigned)plan->gid, strerror(errno));
  if (setresuid(plan->uid, plan->uid, plan->uid) != 0) die(1, "process.user.uid: cannot become uid %u: %s (is it mapped in the user namespace?)", (unsigned)plan->uid, strerror(errno));
  if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0) die(1, "cannot reset keepcaps: %s", strerror(errno));
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  for (int word = 0; word < 2; word++) {
    data[word].effective = (uint32_t)(plan->caps[3] >> (32 * word));
    data[word].permitted = (uint32_t)(plan->caps[4] >> (32 * word));
    data[word].inheritable = (uint32_t)(plan->caps[1] >> (32 * word));
  }
  if (syscall(SYS_capset, &header, data) != 0) die(1, "process.capabilities: cannot set the capability sets: %s", strerror(errno));
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) die(1, "process.capabilities.ambient: %s", strerror(errno));
  for (int cap = 0; cap <= last && cap < 64; cap++) {
    if (!(plan->caps[2] & (1ULL << cap))) continue;
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) != 0) die(1, "process.capabilities.ambient: cannot raise capability %d: %s", cap, strerror(errno));
  }
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) die(1, "cannot set no_new_privs: %s", strerror(errno));
}

/* The program execvp would run, found on the container's PATH as the container's user; exits 127 or 126 as a shell does. */
static const char *resolve_command(const char *name) {
  static char path[PATH_MAX];
  if (strchr(name, '/')) {
    if (access(name, F_OK) != 0) die(127, "%s: no such file in the container", name);
    if (access(name, X_OK) != 0) die(126, "%s: not executable in the container: %s", name, strerror(errno));
    return name;
  }
  const char *search = getenv("PATH");
  if (!search) search = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  int denied = 0;
  for (const char *dir = search;; ) {
    const char *colon = strchrnul(dir, ':');
    int length = (int)(colon - dir);
    if (snprintf(path, sizeof path, "%.*s/%s", length, length ? dir : ".", name) < (int)sizeof path) {
      struct stat info;
      if (stat(path, &info) == 0 && S_ISREG(info.st_mode)) {
        if (access(path, X_OK) == 0) return path;
        denied = 1;
      }
    }
    if (*colon == '\0') break;
    dir = colon + 1;
  }
  if (denied) die(126, "%s: found on PATH but not executable for uid %u in the container", name, (unsigned)getuid());
  die(127, "%s: command not found in the container (PATH=%s)", name, search);
  return NULL;
}

/* With a terminal: the pty becomes stdin, stdout, stderr and the controlling terminal; else the real stderr replaces the start-up one. */
static void final_stdio(const struct plan *plan, int slave) {
  if (slave >= 0) {
    if (setsid() < 0 && errno != EPERM) die(1, "process.terminal: setsid: %s", strerror(errno));
    if (ioctl(slave, TIOCSCTTY, 0) != 0) die(1, "process.terminal: cannot make the pty the controlling terminal: %s", strerror(errno));
    for (int fd = 0; fd < 3; fd++) if (dup2(slave, fd) < 0) die(1, "process.terminal: dup2: %s", strerror(errno));
    close(slave);
  }
  if (plan->stderr_fd >= 0) {
    if (slave < 0 && dup2(plan->stderr_fd, 2) < 0) die(1, "dup2: %s", strerror(errno));
    close(plan->stderr_fd);
  }
}

/* --init: PID 1 runs from a private copy of this program (a memfd), so /proc/1/exe is no file of the host. */
static void exec_init(int self_fd, char **command) {
  int copy = memfd_create(INIT_NAME, MFD_CLOEXEC);
  struct stat info;
  if (copy < 0 || fstat(self_fd, &info) != 0) die(1, "--init: cannot copy the init: %s", strerror(errno));
  for (off_t offset = 0; offset < info.st_size;) {
    if (sendfile(copy, self_fd, &offset, (size_t)(info.st_size - offset)) <= 0) die(1, "--init: cannot copy the init: %s", strerror(errno));
  }
  int count = 0;
  while (command[count]) count++;
  char **argv = calloc((size_t)count + 2, sizeof *argv);
  if (!argv) die(1, "out of memory");
  argv[0] = INIT_NAME;
  memcpy(argv + 1, command, (size_t)count * sizeof *argv);
  close(self_fd);
  syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC);
  fexecve(copy, argv, environ);
  die(1, "--init: cannot start the init: %s", strerror(errno));
}

static int container_main(int argc, char **argv) {
  struct plan plan;
  parse_plan(&plan, argc, argv);
  set_home(plan.uid);
  int retry_cwd = enter_cwd(plan.cwd);
  int slave = plan.console_fd >= 0 ? open_console(plan.console_fd, plan.uid, plan.console_gid) : -1;
  set_credentials(&plan);
  if (retry_cwd && chdir(plan.cwd) != 0) die(1, "process.cwd: uid %u cannot change to %s: %s", (unsigned)plan.uid, plan.cwd, strerror(errno));
  const char *program = resolve_command(plan.command[0]);
  /* Created as runc creates: everything done (the terminal sent, the user switched, the command found) but the exec. */
  if (plan.start_fd >= 0) wait_for_start(plan.start_fd);
  final_stdio(&plan, slave);
  if (plan.umask >= 0) umask((mode_t)plan.umask);
  if (plan.init) {
    char self[64];
    /* bwrap ran us as /proc/self/fd/N: that fd is the program to copy. */
    int self_fd = sscanf(argv[0], "/proc/self/fd/%63s", self) == 1 ? atoi(self) : open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    exec_init(self_fd, plan.command);
  }
  /* Nothing of ns-enter's is left open: not this program's fd, not bwrap's status fds. */
  syscall(SYS_close_range, 3, ~0U, 0);
  execv(program, plan.command);
  die(errno == ENOENT ? 127 : 126, "%s: cannot run it in the container: %s", plan.command[0], strerror(errno));
  return 1;
}

/* PID 1 with --init: run the command, forward signals to it, reap every child, exit as it did. */
static int init_main(char **command) {
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, &old);
  pid_t child = fork();
  if (child < 0) die(1, "--init: fork: %s", strerror(errno));
  if (child == 0) {
    setpgid(0, 0);
    if (isatty(0)) tcsetpgrp(0, getpid());
    sigprocmask(SIG_SETMASK, &old, NULL);
    execvp(command[0], command);
    die(errno == ENOENT ? 127 : 126, "%s: cannot run it in the container: %s", command[0], strerror(errno));
  }
  for (;;) {
    siginfo_t info;
    int signal = sigwaitinfo(&all, &info);
    if (signal < 0) continue;
    if (signal != SIGCHLD) {
      kill(child, signal);
      continue;
    }
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
      if (pid != child) continue;
      return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
    }
  }
}

/* ---------- the host side: the terminal relay ---------- */

static int receive_fd(int socket) {
  char data;
  struct iovec iov = {&data, 1};
  union { char buffer[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } control;
  struct msghdr message = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buffer, .msg_controllen = sizeof control.buffer};
  ssize_t n;
  do n = recvmsg(socket, &message, MSG_CMSG_CLOEXEC); while (n < 0 && errno == EINTR);
  if (n <= 0) return -1;
  struct cmsghdr *header = CMSG_FIRSTHDR(&message);
  if (!header || header->cmsg_type != SCM_RIGHTS) return -1;
  int fd;
  memcpy(&fd, CMSG_DATA(header), sizeof fd);
  return fd;
}

/*
 * Until the helper sends the master, the container does not run yet: a signal for ns-enter
 * (SIGTERM, or SIGUSR1 when ns-enter died) stops the start-up (bwrap, then its child, die).
 * Afterwards ns-enter sends signals to the container's process itself.
 */
static int await_master(int socket, int signals, pid_t child) {
  for (;;) {
    struct pollfd fds[2] = {{socket, POLLIN, 0}, {signals, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    struct signalfd_siginfo info;
    if ((fds[1].revents & POLLIN) && read(signals, &info, sizeof info) == sizeof info && info.ssi_signo != SIGCHLD && info.ssi_signo != SIGWINCH) {
      kill(child, info.ssi_signo == SIGUSR1 ? SIGKILL : (int)info.ssi_signo);
    }
    if (fds[0].revents) return receive_fd(socket);
  }
}

static struct termios saved_termios;
static int terminal_raw = 0;

static void restore_terminal(void) {
  if (terminal_raw) tcsetattr(0, TCSANOW, &saved_termios);
  terminal_raw = 0;
}

static void follow_window_size(int master) {
  struct winsize size;
  if (ioctl(0, TIOCGWINSZ, &size) == 0) ioctl(master, TIOCSWINSZ, &size);
}

static int write_all(int fd, const char *data, ssize_t length) {
  while (length > 0) {
    ssize_t n = write(fd, data, (size_t)length);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    data += n;
    length -= n;
  }
  return 0;
}

/* Copies until the container has exited and its terminal is drained; returns the child's status. */
static int relay_loop(int master, pid_t child, int signals) {
  char buffer[16384];
  int input_open = 1, status = -1;
  for (;;) {
    struct pollfd fds[3] = {{signals, POLLIN, 0}, {master, POLLIN, 0}, {input_open ? 0 : -1, POLLIN, 0}};
    if (poll(fds, 3, status == -1 ? -1 : 0) < 0 && errno != EINTR) break;
    if (fds[0].revents & POLLIN) {
      struct signalfd_siginfo info;
      if (read(signals, &info, sizeof info) == sizeof info) {
        if (info.ssi_signo == SIGWINCH) follow_window_size(master);
        /* ns-enter died (kill -9): the container goes with it (bwrap dies with its parent, us), the terminal is restored. */
        if (info.ssi_signo == SIGUSR1) { kill(child, SIGKILL); waitpid(child, &status, 0); break; }
        if (info.ssi_signo == SIGCHLD && waitpid(child, &status, WNOHANG) == child) continue;
      }
    }
    if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = read(master, buffer, sizeof buffer);
      if (n > 0) { write_all(1, buffer, n); continue; }
      if (n < 0 && errno == EINTR) continue;
      /* EIO: every slave fd is closed, the container is done with its terminal. */
      if (status == -1) { waitpid(child, &status, 0); }
      break;
    }
    if (fds[2].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = read(0, buffer, sizeof buffer);
      if (n > 0) write_all(master, buffer, n);
      else if (n == 0 || errno != EINTR) input_open = 0;
    }
    if (status != -1 && !(fds[1].revents & POLLIN)) break;
  }
  return status;
}

/* --console-socket: the master goes to the caller's socket (runc's protocol: SCM_RIGHTS, the pty's name as the data), not to a copy loop of ours. */
static void send_to_console_socket(const char *path, int master) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un address = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof address.sun_path) die(1, "--console-socket %s: the path is too long for a unix socket", path);
  strcpy(address.sun_path, path);
  if (fd < 0 || connect(fd, (struct sockaddr *)&address, sizeof address) != 0) die(1, "--console-socket %s: cannot connect: %s", path, strerror(errno));
  unsigned int number = 0;
  char name[64];
  snprintf(name, sizeof name, ioctl(master, TIOCGPTN, &number) == 0 ? "/dev/pts/%u" : "pty", number);
  if (send_fd_with(fd, master, name, strlen(name)) < 0) die(1, "--console-socket %s: cannot send the terminal: %s", path, strerror(errno));
  close(fd);
}

/* After the master went to the console socket: wait for the child (the runtime's own death kills it), and exit as it did. */
static int wait_relayed(pid_t child, int signals) {
  for (;;) {
    struct signalfd_siginfo info;
    if (read(signals, &info, sizeof info) != sizeof info) continue;
    if (info.ssi_signo == SIGUSR1) kill(child, SIGKILL);
    int status;
    if (waitpid(child, &status, WNOHANG) == child) return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
  }
}

static int relay_main(char **command, const char *console_socket) {
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) die(1, "cannot make the console socket: %s", strerror(errno));
  sigset_t handled;
  sigemptyset(&handled);
  for (int s = 0, list[] = {SIGCHLD, SIGWINCH, SIGUSR1, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP, SIGTTIN, SIGTTOU}; s < 10; s++) sigaddset(&handled, list[s]);
  sigset_t old;
  sigprocmask(SIG_BLOCK, &handled, &old);
  pid_t parent = getppid();
  if (prctl(PR_SET_PDEATHSIG, SIGUSR1, 0, 0, 0) != 0 || getppid() != parent) die(1, "ns-enter is gone");
  pid_t child = fork();
  if (child < 0) die(1, "fork: %s", strerror(errno));
  if (child == 0) {
    sigprocmask(SIG_SETMASK, &old, NULL);
    /* The container gets no fd of the user's terminal, not even for a moment: only the new pty. */
    int null = open("/dev/null", O_RDWR);
    /* dup2 onto itself keeps close-on-exec: clear it, the socket may already be fd 8. */
    if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(pair[1], CONSOLE_FD) < 0 || fcntl(CONSOLE_FD, F_SETFD, 0) < 0) die(1, "cannot set up the relay's child: %s", strerror(errno));
    if (null > 2 && null != CONSOLE_FD) close(null);
    execvp(command[0], command);
    die(1, "cannot run %s: %s", command[0], strerror(errno));
  }
  close(pair[1]);
  /* A reader that went away (ns-enter ... | head) must not kill us before the terminal is restored. */
  signal(SIGPIPE, SIG_IGN);
  int signals = signalfd(-1, &handled, SFD_CLOEXEC);
  int master = await_master(pair[0], signals, child);
  if (master < 0) {
    close(pair[0]);
    int status;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR) {}
    return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
  }
  if (console_socket) {
    send_to_console_socket(console_socket, master);
    close(master);
    write_all(pair[0], "A", 1);
    close(pair[0]);
    return wait_relayed(child, signals);
  }
  if (isatty(0) && tcgetattr(0, &saved_termios) == 0) {
    struct termios raw = saved_termios;
    cfmakeraw(&raw);
    terminal_raw = tcsetattr(0, TCSANOW, &raw) == 0;
    atexit(restore_terminal);
  }
  follow_window_size(master);
  /* The container waits for this before it runs the command (open_console). */
  write_all(pair[0], "A", 1);
  close(pair[0]);
  int status = relay_loop(master, child, signals);
  restore_terminal();
  if (status == -1) return 1;
  return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

int main(int argc, char **argv) {
  if (argc > 0 && strcmp(argv[0], INIT_NAME) == 0) return init_main(argv + 1);
  if (argc > 2 && strcmp(argv[1], "relay") == 0 && strcmp(argv[2], "--") == 0 && argc > 3) return relay_main(argv + 3, NULL);
  if (argc > 5 && strcmp(argv[1], "relay") == 0 && strcmp(argv[2], "--console-socket") == 0 && strcmp(argv[4], "--") == 0) return relay_main(argv + 5, argv[3]);
  return container_main(argc, argv);
}
