/*
 * ns-enter-prelude: the mounts bwrap cannot make with their flags (a noexec tmpfs or bind, a
 * root overlay of a rootless container), made before bwrap starts, then bwrap exec'd. One
 * static program in place of util-linux unshare + sh + one mount(8) per mount: three to four
 * execs fewer on every start of a container that has such a mount (runc's default config
 * has one, /dev/shm), about a third of bwrap's own start-up.
 *
 *   ns-enter-prelude [--unshare-mount] [--mount WHAT KIND SOURCE TARGET OPTIONS DIR]... -- ARGV...
 *
 * --unshare-mount: a mount namespace of its own, all of it private (as `unshare --mount
 * --propagation private`), so that the mounts go when the container goes; without it the
 * caller made one (util-linux unshare --user --mount, rootless).
 * KIND: tmpfs or overlay (mount(2) of that type; OPTIONS as mount(8) takes them, the flags
 * among them as flags, the rest as data; an overlay's relative lowerdir names are relative to
 * DIR), or bind-noexec (SOURCE bound recursively at TARGET, then made noexec, its other flags kept;
 * a SOURCE that is not a dir gets a file as its mount point, in place of the empty dir TARGET).
 * A failure is one line on fd 3 (the info fd ns-enter reads), "mount-failed: WHAT: REASON",
 * and exit status 125, as the shell prelude it replaces reported it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define INFO_FD 3
#define MOUNT_FAILED "mount-failed: "

struct mount_step {
  const char *what, *kind, *source, *target, *options, *dir;
};

static void fail(const char *what, const char *action, int error) {
  dprintf(INFO_FD, MOUNT_FAILED "%s: %s: %s\n", what, action, strerror(error));
  _exit(125);
}

struct mount_flag {
  const char *name;
  unsigned long set, clear;
};

static const struct mount_flag FLAGS[] = {
    {"ro", MS_RDONLY, 0},   {"rw", 0, MS_RDONLY},          {"nosuid", MS_NOSUID, 0},        {"suid", 0, MS_NOSUID},
    {"nodev", MS_NODEV, 0}, {"dev", 0, MS_NODEV},          {"noexec", MS_NOEXEC, 0},        {"exec", 0, MS_NOEXEC},
    {"noatime", MS_NOATIME, 0}, {"relatime", MS_RELATIME, 0}, {"strictatime", MS_STRICTATIME, 0},
};

/* mount(8)'s reading of -o: the flag words as flags (the later of two opposites wins), the rest joined as data. */
static unsigned long split_options(const char *options, char *data) {
  unsigned long flags = 0;
  char *copy = strdup(options);
  if (copy == NULL) fail("options", "out of memory", ENOMEM);
  data[0] = '\0';
  for (char *word = strtok(copy, ","); word != NULL; word = strtok(NULL, ",")) {
    const struct mount_flag *flag = NULL;
    for (size_t i = 0; i < sizeof FLAGS / sizeof FLAGS[0]; i++)
      if (strcmp(word, FLAGS[i].name) == 0) flag = &FLAGS[i];
    if (flag != NULL) {
      flags = (flags & ~flag->clear) | flag->set;
      continue;
    }
    if (data[0] != '\0') strcat(data, ",");
    strcat(data, word);
  }
  free(copy);
  return flags;
}

/* The flags a remount must repeat (the kernel refuses to clear a locked one), from what the mount has now. */
static unsigned long current_flags(const struct mount_step *step) {
  struct statvfs info;
  if (statvfs(step->target, &info) != 0) fail(step->what, step->target, errno);
  unsigned long flags = 0;
  if (info.f_flag & ST_RDONLY) flags |= MS_RDONLY;
  if (info.f_flag & ST_NOSUID) flags |= MS_NOSUID;
  if (info.f_flag & ST_NODEV) flags |= MS_NODEV;
  if (info.f_flag & ST_NOATIME) flags |= MS_NOATIME;
  if (info.f_flag & ST_NODIRATIME) flags |= MS_NODIRATIME;
  if (info.f_flag & ST_RELATIME) flags |= MS_RELATIME;
  return flags;
}

/* ns-enter made every mount point a dir; a file is bound on a file (runc binds files too): the dir becomes an empty file. */
static void file_mount_point(const struct mount_step *step) {
  struct stat source;
  if (stat(step->source, &source) != 0) fail(step->what, step->source, errno);
  if (S_ISDIR(source.st_mode)) return;
  if (rmdir(step->target) != 0) fail(step->what, step->target, errno);
  int fd = open(step->target, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) fail(step->what, step->target, errno);
  close(fd);
}

static void mount_step(const struct mount_step *step) {
  if (strcmp(step->kind, "bind-noexec") == 0) {
    file_mount_point(step);
    if (mount(step->source, step->target, NULL, MS_BIND | MS_REC, NULL) != 0) fail(step->what, "bind", errno);
    if (mount(NULL, step->target, NULL, MS_REMOUNT | MS_BIND | MS_NOEXEC | current_flags(step), NULL) != 0) fail(step->what, "remount noexec", errno);
    return;
  }
  if (strcmp(step->kind, "tmpfs") != 0 && strcmp(step->kind, "overlay") != 0) fail(step->what, step->kind, EINVAL);
  char *data = malloc(strlen(step->options) + 1);
  if (data == NULL) fail(step->what, "out of memory", ENOMEM);
  unsigned long flags = split_options(step->options, data);
  int cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (step->dir[0] != '\0' && chdir(step->dir) != 0) fail(step->what, step->dir, errno);
  if (mount(step->source, step->target, step->kind, flags, data) != 0) fail(step->what, step->kind, errno);
  if (cwd >= 0 && fchdir(cwd) != 0) fail(step->what, "back to the working directory", errno);
  if (cwd >= 0) close(cwd);
  free(data);
}

int main(int argc, char **argv) {
  int i = 1;
  if (i < argc && strcmp(argv[i], "--unshare-mount") == 0) {
    if (unshare(CLONE_NEWNS) != 0) fail("a mount namespace", "unshare", errno);
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) fail("a mount namespace", "make / private", errno);
    i++;
  }
  while (i + 6 < argc && strcmp(argv[i], "--mount") == 0) {
    struct mount_step step = {argv[i + 1], argv[i + 2], argv[i + 3], argv[i + 4], argv[i + 5], argv[i + 6]};
    mount_step(&step);
    i += 7;
  }
  if (i + 1 >= argc || strcmp(argv[i], "--") != 0) {
    fprintf(stderr, "ns-enter: usage: ns-enter-prelude [--unshare-mount] [--mount WHAT KIND SOURCE TARGET OPTIONS DIR]... -- ARGV...\n");
    return 125;
  }
  execvp(argv[i + 1], argv + i + 1);
  fail(argv[i + 1], "exec", errno);
  return 125;
}
