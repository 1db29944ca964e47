/* `nograd plot RUN.h5 [--out RUN.png]`: a picture of a run. The drawing is Python's (matplotlib, h5py): this
 * command finds the nograd Python package and runs its plot module (tools/python/nograd/plot.py, which
 * documents the panels, the formats and the messages) with the arguments as given, and returns its exit code.
 *
 * The package is looked for beside this program first, where `cmake --install` puts it (NOGRAD_BIN_TO_PY,
 * relative to the binary's directory), then in the source tree it was built from (NOGRAD_SOURCE_PYTHON), so
 * that both an installed prefix, moved or not, and a build directory work. The interpreter is $NOGRAD_PYTHON,
 * else the one the build was configured with (NOGRAD_DEFAULT_PYTHON: Debian's /usr/bin/python3, which has
 * python3-matplotlib and python3-h5py). The module runs as a child process, so that MPI is finalized as for
 * every command; only rank 0 runs it and every rank returns its code. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/commands.h"

#ifndef NOGRAD_BIN_TO_PY
#define NOGRAD_BIN_TO_PY "../lib/python3/dist-packages"
#endif
#ifndef NOGRAD_SOURCE_PYTHON
#define NOGRAD_SOURCE_PYTHON ""
#endif
#ifndef NOGRAD_DEFAULT_PYTHON
#define NOGRAD_DEFAULT_PYTHON "/usr/bin/python3"
#endif
#define MAX_PLOT_ARGS 64 /* more arguments than `nograd plot` has options, by far */

extern char **environ;

/* Whether dir/nograd/plot.py exists. */
static bool has_plot_module(const char *dir) {
  char path[2 * PATH_MAX];
  struct stat sb;
  snprintf(path, sizeof path, "%s/nograd/plot.py", dir);
  return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* The directory that holds the nograd package into out, or 0 when neither place has it (both are named in
 * `tried` for the message). */
static int find_package(char *out, size_t len, char *tried, size_t tried_len) {
  char self[PATH_MAX] = "";
  ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
  if (k > 0) {
    self[k] = '\0';
    char *slash = strrchr(self, '/');
    if (slash) *slash = '\0';
    snprintf(out, len, "%s/%s", self, NOGRAD_BIN_TO_PY);
    if (has_plot_module(out)) return 1;
  }
  snprintf(tried, tried_len, "%s", k > 0 ? out : "(the program's own path is unknown)");
  if (NOGRAD_SOURCE_PYTHON[0] && has_plot_module(NOGRAD_SOURCE_PYTHON)) {
    snprintf(out, len, "%s", NOGRAD_SOURCE_PYTHON);
    return 1;
  }
  size_t used = strlen(tried);
  if (NOGRAD_SOURCE_PYTHON[0] && used < tried_len)
    snprintf(tried + used, tried_len - used, ", %s", NOGRAD_SOURCE_PYTHON);
  return 0;
}

/* Runs `python -m nograd.plot ARGS` with the package's directory first on PYTHONPATH; its exit code, or
 * NG_EXIT_FAILURE when it cannot be started or dies of a signal. Rank 0 only. */
static int run_plot(int argc, char **argv) {
  char dir[PATH_MAX + 64], tried[2 * PATH_MAX + 128];
  if (!find_package(dir, sizeof dir, tried, sizeof tried)) {
    fprintf(stderr,
            "nograd plot: the nograd Python package (nograd/plot.py) is in none of the places this program "
            "looks: "
            "%s; reinstall nograd (cmake --install)\n",
            tried);
    return NG_EXIT_FAILURE;
  }
  const char *old = getenv("PYTHONPATH");
  char *pythonpath = malloc(strlen(dir) + (old ? strlen(old) : 0) + 2);
  if (!pythonpath) return NG_EXIT_FAILURE;
  sprintf(pythonpath, "%s%s%s", dir, old && *old ? ":" : "", old && *old ? old : "");
  int failed = setenv("PYTHONPATH", pythonpath, 1);
  free(pythonpath);
  if (failed) {
    fprintf(stderr, "nograd plot: cannot set PYTHONPATH: %s\n", strerror(errno));
    return NG_EXIT_FAILURE;
  }
  const char *python = getenv("NOGRAD_PYTHON");
  if (!python || !*python) python = NOGRAD_DEFAULT_PYTHON;
  char *args[MAX_PLOT_ARGS + 4] = {(char *)python, "-m", "nograd.plot"};
  int n = 3;
  for (int i = 2; i < argc && n < MAX_PLOT_ARGS + 3; i++)
    args[n++] = argv[i];
  args[n] = NULL;
  /* the child starts with default signal handling and an empty mask, whatever MPI set up here */
  posix_spawnattr_t attr;
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  sigaddset(&defaults, SIGINT);
  sigaddset(&defaults, SIGTERM);
  posix_spawnattr_init(&attr);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid;
  int e = posix_spawnp(&pid, python, NULL, &attr, args, environ);
  posix_spawnattr_destroy(&attr);
  if (e != 0) {
    fprintf(stderr,
            "nograd plot: cannot start %s: %s (set NOGRAD_PYTHON to a Python 3 with h5py and matplotlib)\n",
            python, strerror(e));
    return NG_EXIT_FAILURE;
  }
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return NG_EXIT_FAILURE;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  fprintf(stderr, "nograd plot: %s was killed by signal %d\n", python, WTERMSIG(status));
  return NG_EXIT_FAILURE;
}

int ng_cmd_plot(MPI_Comm comm, int argc, char **argv) {
  int rank, code = NG_EXIT_OK;
  MPI_Comm_rank(comm, &rank);
  if (rank == 0) {
    fflush(stdout); /* the child writes to the same descriptors */
    code = run_plot(argc, argv);
  }
  MPI_Bcast(&code, 1, MPI_INT, 0, comm);
  return code;
}
