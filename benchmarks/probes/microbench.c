/*
 * Syscall microbenchmarks, run inside a container by benchmarks/run.py.
 *
 *   microbench [-b SECONDS] [-d DIR] [OP...]
 *
 * Each op is repeated in doubling batches until the time budget (default
 * 0.3 s) is spent; the result is microseconds per op.  The output is one JSON
 * object on stdout: {"budget_s": B, "ops": {"getpid": {"us": 0.21, "n": 1400000},
 * "stat": {"error": "stat: Function not implemented (errno 38)"}, ...}}.
 * An op that fails records its error and the program goes on with the next
 * one: a sandbox that lacks a syscall must not hide the other figures.
 *
 * Built with `gcc -static -O2`: no dynamic loader, no libc caching of getpid
 * (syscall(SYS_getpid) is used anyway).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char err[256];
static const char *dir = "/tmp";
static const char *exist_path = "/etc/passwd";
static const char *read_path = "/bin/busybox";
static const char *true_path = "/bin/true";
static int pipefd[2] = {-1, -1};
static int readfd = -1;
static char buf[4096];
static char scratch[512];

#define FAIL(what) do { snprintf(err, sizeof err, "%s: %s (errno %d)", what, strerror(errno), errno); return -1; } while (0)

static int op_getpid(void) { syscall(SYS_getpid); return 0; }

static int op_open_close(void) {
    int fd = open(exist_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) FAIL("open");
    if (close(fd) < 0) FAIL("close");
    return 0;
}

static int op_stat(void) {
    struct stat st;
    if (stat(exist_path, &st) < 0) FAIL("stat");
    return 0;
}

static int op_stat_enoent(void) {
    struct stat st;
    if (stat("/nonexistent/file", &st) == 0) { errno = EEXIST; FAIL("stat missing file succeeded"); }
    if (errno != ENOENT) FAIL("stat missing file");
    return 0;
}

static int op_pipe(void) {
    if (pipefd[0] < 0 && pipe(pipefd) < 0) FAIL("pipe");
    if (write(pipefd[1], buf, 64) != 64) FAIL("write pipe");
    if (read(pipefd[0], buf, 64) != 64) FAIL("read pipe");
    return 0;
}

static int op_pread(void) {
    if (readfd < 0 && (readfd = open(read_path, O_RDONLY | O_CLOEXEC)) < 0) FAIL("open");
    if (pread(readfd, buf, 4096, 0) != 4096) FAIL("pread");
    return 0;
}

static int op_fork_wait(void) {
    int status;
    pid_t pid = fork();
    if (pid < 0) FAIL("fork");
    if (pid == 0) _exit(0);
    if (waitpid(pid, &status, 0) != pid) FAIL("waitpid");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) { errno = ECHILD; FAIL("child status"); }
    return 0;
}

static int op_fork_exec_wait(void) {
    int status;
    pid_t pid = fork();
    if (pid < 0) FAIL("fork");
    if (pid == 0) {
        execl(true_path, "true", (char *)NULL);
        _exit(127);
    }
    if (waitpid(pid, &status, 0) != pid) FAIL("waitpid");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        snprintf(err, sizeof err, "exec %s: child status 0x%x", true_path, status);
        return -1;
    }
    return 0;
}

static int op_create_unlink(void) {
    int fd = open(scratch, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) FAIL("create");
    if (write(fd, buf, 4096) != 4096) FAIL("write");
    if (close(fd) < 0) FAIL("close");
    if (unlink(scratch) < 0) FAIL("unlink");
    return 0;
}

/* /proc/meminfo as free(1) reads it: synthesized from the container's
 * cgroup by runsc-py (and by gVisor), the host's under runc. */
static int op_read_meminfo(void) {
    int fd = open("/proc/meminfo", O_RDONLY | O_CLOEXEC);
    if (fd < 0) FAIL("open meminfo");
    if (read(fd, buf, 4096) <= 0) FAIL("read meminfo");
    if (close(fd) < 0) FAIL("close");
    return 0;
}

static const struct { const char *name; int (*fn)(void); } OPS[] = {
    {"getpid", op_getpid},
    {"open_close", op_open_close},
    {"stat", op_stat},
    {"stat_enoent", op_stat_enoent},
    {"pipe_64", op_pipe},
    {"pread_4k", op_pread},
    {"fork_wait", op_fork_wait},
    {"fork_exec_wait", op_fork_exec_wait},
    {"create_write_unlink", op_create_unlink},
    {"read_meminfo", op_read_meminfo},
};
#define NOPS (sizeof OPS / sizeof OPS[0])

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void json_str(const char *s) {
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20) printf("\\u%04x", *s);
        else putchar(*s);
    }
    putchar('"');
}

static void run(int i, double budget, int first) {
    long n = 0, batch = 1;
    double t0, elapsed = 0;
    err[0] = 0;
    /* warm-up: one call (opens the pipe / the read fd, faults pages in) */
    if (OPS[i].fn() < 0) goto out;
    t0 = now();
    while (elapsed < budget) {
        for (long k = 0; k < batch; k++)
            if (OPS[i].fn() < 0) goto out;
        n += batch;
        elapsed = now() - t0;
        if (batch < (1L << 20)) batch *= 2;
    }
out:
    printf("%s\n    ", first ? "" : ",");
    json_str(OPS[i].name);
    if (err[0]) {
        printf(": {\"error\": ");
        json_str(err);
        printf(", \"n\": %ld}", n);
    } else {
        printf(": {\"us\": %.4f, \"n\": %ld}", elapsed * 1e6 / n, n);
    }
    fflush(stdout);
}

int main(int argc, char **argv) {
    double budget = 0.3;
    int opt;
    while ((opt = getopt(argc, argv, "b:d:")) != -1) {
        if (opt == 'b') budget = atof(optarg);
        else if (opt == 'd') dir = optarg;
        else { fprintf(stderr, "usage: %s [-b SECONDS] [-d DIR] [OP...]\n", argv[0]); return 2; }
    }
    snprintf(scratch, sizeof scratch, "%s/microbench.%d", dir, (int)getpid());
    memset(buf, 'x', sizeof buf);
    printf("{\"budget_s\": %g, \"ops\": {", budget);
    int first = 1;
    for (size_t i = 0; i < NOPS; i++) {
        int wanted = optind >= argc;
        for (int a = optind; a < argc; a++)
            if (strcmp(argv[a], OPS[i].name) == 0) wanted = 1;
        if (!wanted) continue;
        run((int)i, budget, first);
        first = 0;
    }
    printf("\n}}\n");
    return 0;
}
