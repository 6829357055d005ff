/* Probe of the ptrace platform's own machinery (tests/sentry/test_ptrace.py):
 * calls parked on a worker (FIFO opens, one end waiting for the other),
 * signals arriving meanwhile, threads, the reserved socket of a process that
 * changes its credentials, exec.  Each argument is one check printing
 * "<check> <values...>".  Static: gcc -static -O2 -pthread. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) && errno == EINTR) {}
}

static volatile sig_atomic_t got_usr1;
static void on_usr1(int sig) { (void)sig; got_usr1++; }

/* fifo-read=PATH: a child opens PATH for writing after 300 ms and writes
 * "x"; we open it for reading first (waits for the writer). */
static void fifo_read(const char *path, int signal_us) {
    unlink(path);
    if (mkfifo(path, 0600)) { printf("fifo-read mkfifo %d\n", errno); return; }
    pid_t me = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        if (signal_us) { sleep_ms(100); kill(me, SIGUSR1); }
        sleep_ms(300);
        int fd = open(path, O_WRONLY);
        if (fd >= 0) { write(fd, "x", 1); close(fd); }
        _exit(fd >= 0 ? 0 : 1);
    }
    int fd = open(path, O_RDONLY);
    int e = errno;
    char c = '-';
    if (fd >= 0) { read(fd, &c, 1); close(fd); }
    int st;
    waitpid(pid, &st, 0);
    printf("%s %d %d %c child=%d usr1=%d\n", signal_us ? "fifo-read-signal" : "fifo-read",
           fd >= 0, fd >= 0 ? 0 : e, c, WIFEXITED(st) ? WEXITSTATUS(st) : -1, (int)got_usr1);
    fflush(stdout);
    unlink(path);
}

/* fifo-write=PATH: we open for writing first, the child reads after 300 ms. */
static void fifo_write(const char *path) {
    unlink(path);
    if (mkfifo(path, 0600)) { printf("fifo-write mkfifo %d\n", errno); return; }
    pid_t pid = fork();
    if (pid == 0) {
        sleep_ms(300);
        int fd = open(path, O_RDONLY);
        char c = 0;
        if (fd >= 0) { read(fd, &c, 1); close(fd); }
        _exit(c == 'y' ? 0 : 1);
    }
    int fd = open(path, O_WRONLY);
    int e = errno;
    if (fd >= 0) { write(fd, "y", 1); close(fd); }
    int st;
    waitpid(pid, &st, 0);
    printf("fifo-write %d %d child=%d\n", fd >= 0, fd >= 0 ? 0 : e, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    fflush(stdout);
    unlink(path);
}

static const char *thread_path;
static void *opener(void *arg) {
    long bad = 0;
    for (int i = 0; i < 200; i++) {
        int fd = open(thread_path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) { bad++; continue; }
        char c;
        if (read(fd, &c, 1) != 1) bad++;
        close(fd);
    }
    return (void *)bad;
}

/* threads=PATH: 4 threads opening and reading PATH at once. */
static void threads(const char *path) {
    pthread_t t[4];
    thread_path = path;
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, opener, NULL);
    long bad = 0;
    for (int i = 0; i < 4; i++) { void *r; pthread_join(t[i], &r); bad += (long)r; }
    printf("threads bad %ld\n", bad);
    fflush(stdout);
}

static void reserved_ino(char *out, size_t n) {
    ssize_t r = readlink("/proc/self/fd/1023", out, n - 1);
    out[r > 0 ? r : 0] = 0;
}

/* setuid-private=PATH: a forked child that becomes uid 1000 gets a reserved
 * socket of its own (its parent keeps the one they shared), and still opens
 * files.  Prints whether the child's socket differs from the parent's
 * before and after setuid, and whether its open worked. */
static void setuid_private(const char *path) {
    char parent[64], before[64], after[64];
    reserved_ino(parent, sizeof parent);
    int p[2];
    pipe(p);
    pid_t pid = fork();
    if (pid == 0) {
        reserved_ino(before, sizeof before);
        int ok = setresuid(1000, 1000, 1000) == 0;
        reserved_ino(after, sizeof after);
        int fd = open(path, O_RDONLY);
        dprintf(p[1], "setuid-private setuid=%d same-before=%d same-after=%d open=%d\n", ok,
                !strcmp(parent, before), !strcmp(parent, after), fd >= 0);
        _exit(0);
    }
    close(p[1]);
    char buf[256] = {0};
    read(p[0], buf, sizeof buf - 1);
    waitpid(pid, NULL, 0);
    int fd = open(path, O_RDONLY);  /* and the parent's channel still works */
    buf[strcspn(buf, "\n")] = 0;
    printf("%s parent-open=%d\n", buf, fd >= 0);
    fflush(stdout);
}

/* rt-during-opens=PATH: a child opens and closes PATH in a loop (every
 * open an fd injection) while we queue it N real-time signals (queued, never
 * merged); it counts them in a handler, then reports.  None may be lost. */
static volatile sig_atomic_t rt_count, rt_stop;
static void on_rt(int sig) { if (sig == SIGRTMIN) rt_count++; else rt_stop = 1; }

static void rt_during_opens(const char *path) {
    enum { N = 3000 };
    int p[2];
    pipe(p);
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGRTMIN);
    sigaddset(&block, SIGRTMIN + 1);
    sigprocmask(SIG_BLOCK, &block, &old);  /* until the child's handlers are set */
    pid_t pid = fork();
    if (pid == 0) {
        struct sigaction sa = {0};
        sa.sa_handler = on_rt;
        sa.sa_flags = SA_RESTART;
        sigaction(SIGRTMIN, &sa, NULL);
        sigaction(SIGRTMIN + 1, &sa, NULL);
        sigprocmask(SIG_SETMASK, &old, NULL);
        long opens = 0;
        while (!rt_stop) {
            int fd = open(path, O_RDONLY);
            if (fd >= 0) { close(fd); opens++; }
        }
        dprintf(p[1], "rt-during-opens sent=%d got=%d opens>0=%d\n", N, (int)rt_count, opens > 0);
        _exit(0);
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    close(p[1]);
    sleep_ms(50);
    union sigval v = {0};
    for (int i = 0; i < N; i++) {
        while (sigqueue(pid, SIGRTMIN, v) != 0 && errno == EAGAIN) sleep_ms(1);
        if (i % 16 == 0) sleep_ms(0), sched_yield();
    }
    sleep_ms(200);  /* every one queued before the last: RT signals go in order */
    sigqueue(pid, SIGRTMIN + 1, v);
    char buf[128] = {0};
    read(p[0], buf, sizeof buf - 1);
    waitpid(pid, NULL, 0);
    printf("%s", buf);
}

/* term-at-exec=N: N times, a vforked child execs "/ptprobe open-pause=PATH"
 * (its first open is the first fd injected into its new address space)
 * and gets SIGTERM 0, 5, 10... us after the exec: it must die of it every
 * time, whenever it lands.  Prints how many did not within a second. */
static void term_at_exec(int n) {
    int lost = 0;
    for (int i = 0; i < n; i++) {
        pid_t pid = vfork();
        if (pid == 0) {
            execl("/ptprobe", "ptprobe", "open-pause=/etc/hello", (char *)NULL);
            _exit(127);
        }
        struct timespec t0, t;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        long wait_ns = (long)(i % 100) * 5000;
        do clock_gettime(CLOCK_MONOTONIC, &t);
        while ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) < wait_ns);
        kill(pid, SIGTERM);
        int st = 0, done = 0;
        for (int k = 0; k < 1000 && !done; k++) {
            if (waitpid(pid, &st, WNOHANG) == pid) done = 1;
            else sleep_ms(1);
        }
        if (!done) { kill(pid, SIGKILL); waitpid(pid, &st, 0); }
        if (!(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM)) lost++;
    }
    printf("term-at-exec tries=%d lost=%d\n", n, lost);
}

/* scribble=PATH: the scratch page where the tracer's injected recvmsg
 * finds its msghdr (the anonymous page whose msg_iov points 64 bytes into
 * itself) is overwritten before some opens: every open still gets PATH. */
static void scribble(const char *path) {
    struct stat want;
    if (stat(path, &want)) { printf("scribble stat %d\n", errno); return; }
    int fd = open(path, O_RDONLY);  /* the page is mapped by the first fd */
    if (fd >= 0) close(fd);
    unsigned long page = 0;
    char line[512];
    FILE *maps = fopen("/proc/self/maps", "r");
    if (!maps) printf("scribble-maps %d\n", errno);
    while (maps && fgets(line, sizeof line, maps)) {
        unsigned long lo, hi;
        char perms[5];
        if (sscanf(line, "%lx-%lx %4s", &lo, &hi, perms) != 3 || strncmp(perms, "rw", 2))
            continue;
        for (unsigned long p = lo; p < hi && !page; p += 4096)  /* (it may merge with a neighbour) */
            if (*(unsigned long *)(p + 16) == p + 64) page = p;
        if (page) break;
    }
    if (maps) fclose(maps);
    int opens = 0, same = 0;
    for (int i = 0; i < 6 && page; i++) {
        if (i % 2 == 0) memset((void *)page, 0xff, 128);  /* msghdr, iovec, data, control */
        fd = open(path, O_RDONLY);
        struct stat st;
        if (fd >= 0) {
            opens++;
            if (!fstat(fd, &st) && st.st_ino == want.st_ino && st.st_dev == want.st_dev) same++;
            close(fd);
        }
    }
    printf("scribble found=%d opens=%d same=%d\n", page != 0, opens, same);
    fflush(stdout);
}

int main(int argc, char **argv) {
    struct sigaction sa = {0};
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        if (!strncmp(a, "fifo-read=", 10)) fifo_read(a + 10, 0);
        else if (!strncmp(a, "fifo-read-signal=", 17)) fifo_read(a + 17, 1);
        else if (!strncmp(a, "fifo-write=", 11)) fifo_write(a + 11);
        else if (!strncmp(a, "threads=", 8)) threads(a + 8);
        else if (!strncmp(a, "setuid-private=", 15)) setuid_private(a + 15);
        else if (!strncmp(a, "rt-during-opens=", 16)) rt_during_opens(a + 16);
        else if (!strncmp(a, "term-at-exec=", 13)) term_at_exec(atoi(a + 13));
        else if (!strncmp(a, "scribble=", 9)) scribble(a + 9);
        else if (!strncmp(a, "emfile=", 7)) {
            /* opens until the soft RLIMIT_NOFILE is reached: EMFILE */
            struct rlimit rl;
            getrlimit(RLIMIT_NOFILE, &rl);
            rl.rlim_cur = 32;
            setrlimit(RLIMIT_NOFILE, &rl);
            int n = 0, fd;
            while ((fd = open(a + 7, O_RDONLY)) >= 0 && n < 100) n++;
            printf("emfile %s under32=%d\n", fd < 0 ? strerrorname_np(errno) : "none", n < 32);
            rl.rlim_cur = rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &rl);
        }
        else if (!strncmp(a, "open-pause=", 11)) {
            if (open(a + 11, O_RDONLY) < 0) printf("open-pause %d\n", errno);
            fflush(stdout);
            for (;;) pause();
        }
        else if (!strcmp(a, "euid1000")) {
            /* only the effective uid lowered (as perl's $> does): the next
             * exec is of a non-dumpable process, whose /proc entries are
             * root's */
            if (setresuid(-1, 1000, -1) != 0) printf("euid1000 -1 %d\n", errno);
        } else if (!strncmp(a, "exec=", 5)) {
            /* exec=PATH: run PATH with the remaining arguments */
            fflush(stdout);
            execv(a + 5, &argv[i]);
            printf("exec -1 %d\n", errno);
            return 0;
        } else if (!strcmp(a, "ptrace")) {
            /* the container tracing itself: its own child, and its parent */
            pid_t c = fork();
            if (c == 0) { sleep_ms(2000); _exit(0); }
            long r1 = syscall(SYS_ptrace, 16 /* PTRACE_ATTACH */, c, 0, 0);
            int e1 = errno;
            long r2 = syscall(SYS_ptrace, 0 /* PTRACE_TRACEME */, 0, 0, 0);
            int e2 = errno;
            kill(c, SIGKILL);
            waitpid(c, NULL, 0);
            printf("ptrace attach %ld %d traceme %ld %d\n", r1, r1 < 0 ? e1 : 0, r2, r2 < 0 ? e2 : 0);
        } else if (!strncmp(a, "openat2-opath=", 14)) {
            /* a parked call (openat2) whose handler lets the kernel run it */
            struct { unsigned long long flags, mode, resolve; } how = {O_PATH, 0, 0};
            int fd = syscall(SYS_openat2, AT_FDCWD, a + 14, &how, sizeof how);
            int fl = fd >= 0 ? fcntl(fd, F_GETFL) : -1;
            printf("openat2-opath %d %d opath=%d\n", fd >= 0, fd < 0 ? errno : 0,
                   fl >= 0 && (fl & O_PATH) != 0);
        } else if (!strcmp(a, "sendmsg")) {
            /* a parked call (an emulated send) on a socketpair */
            int sv[2];
            socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
            struct iovec iov = {"ping", 4};
            struct msghdr m = {0};
            m.msg_iov = &iov;
            m.msg_iovlen = 1;
            long n = sendmsg(sv[0], &m, 0);
            char buf[8] = {0};
            read(sv[1], buf, 4);
            printf("sendmsg %ld %s\n", n, buf);
        } else if (!strcmp(a, "pid")) {
            printf("pid %d\n", getpid());
        } else printf("unknown %s\n", a);
        fflush(stdout);
    }
    return 0;
}
