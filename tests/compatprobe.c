/* Calls real programs make, each answered as Linux answers them (issue 15).
 * One line per case: "LABEL ok [detail]" or "LABEL ERRNO-NAME".  Only
 * deterministic facts are printed (no pids, fd numbers or times), so the
 * output under runc and under runsc-py can be compared line by line. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <linux/futex.h>
#include <linux/filter.h>
#include <linux/membarrier.h>
#include <linux/seccomp.h>
#include <mqueue.h>
#include <poll.h>
#include <pty.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/sem.h>
#include <sys/sendfile.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <sys/times.h>
#include <sys/uio.h>
#include <grp.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static void res(const char *label, long r, const char *detail) {
    if (r < 0) printf("%s %s\n", label, strerrorname_np(errno));
    else if (detail) printf("%s ok %s\n", label, detail);
    else printf("%s ok\n", label);
    fflush(stdout);
}
static void val(const char *label, long r, long v) {
    char b[64];
    snprintf(b, sizeof b, "%ld", v);
    res(label, r, r < 0 ? NULL : b);
}

static char tmpf[64] = "/tmp/compatprobe.XXXXXX";

static void files(void) {
    int fd = mkstemp(tmpf);
    res("mkstemp", fd, NULL);
    char a[4] = "abc", b[4] = "defg", r1[4], r2[4];
    struct iovec w[2] = {{a, 3}, {b, 4}}, rd[2] = {{r1, 3}, {r2, 4}};
    val("pwritev", syscall(SYS_pwritev, fd, w, 2, 0, 0), 7);
    long n = syscall(SYS_preadv, fd, rd, 2, 0, 0);
    res("preadv", n, n == 7 && !memcmp(r1, "abc", 3) && !memcmp(r2, "defg", 4) ? "same" : "differs");
    val("pwritev2", syscall(SYS_pwritev2, fd, w, 1, 7, 0, 0), 3);
    val("preadv2", syscall(SYS_preadv2, fd, rd, 1, 7, 0, 0), 3);
    errno = posix_fadvise(fd, 0, 10, POSIX_FADV_SEQUENTIAL);
    res("fadvise64", errno ? -1 : 0, NULL);
    res("fallocate", fallocate(fd, 0, 0, 8192), NULL);
    res("sync_file_range", sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE), NULL);
    res("readahead", readahead(fd, 0, 4096), NULL);
    res("syncfs", syncfs(fd), NULL);
    sync();
    res("sync", 0, NULL);
    char out[64] = "/tmp/compatprobe-copy";
    int o = open(out, O_RDWR | O_CREAT | O_TRUNC, 0600);
    loff_t off = 0;
    val("copy_file_range", copy_file_range(fd, &off, o, NULL, 7, 0), 7);
    off_t soff = 0;
    val("sendfile", sendfile(o, fd, &soff, 3), 3);
    int p[2];
    res("pipe", pipe(p), NULL);
    loff_t in_off = 0;
    val("splice", splice(fd, &in_off, p[1], NULL, 4, 0), 4);
    int q[2];
    pipe(q);
    val("tee", tee(p[0], q[1], 4, 0), 4);
    struct iovec vv = {a, 3};
    val("vmsplice", vmsplice(q[1], &vv, 1, 0), 3);
    errno = posix_fadvise(p[0], 0, 0, POSIX_FADV_NORMAL);
    res("fadvise64-pipe", errno ? -1 : 0, NULL);
    res("getdents", syscall(SYS_getdents, open("/", O_RDONLY | O_DIRECTORY), (char[4096]){0}, 4096) > 0 ? 0 : -1, NULL);
    res("dup2", dup2(fd, 40), NULL);
    res("close_range", syscall(SYS_close_range, 40, 40, 0), NULL);
    /* O_PATH: the fd works with fcntl and AT_EMPTY_PATH calls */
    int op = open(tmpf, O_PATH);
    res("o-path-open", op, NULL);
    res("o-path-getfd", fcntl(op, F_GETFD), NULL);
    res("o-path-fchownat", fchownat(op, "", 0, 0, AT_EMPTY_PATH), NULL);
    res("o-path-fchmodat2", syscall(452, op, "", 0640, AT_EMPTY_PATH), NULL);
    struct stat st;
    fstat(fd, &st);
    printf("o-path-mode %o\n", st.st_mode & 07777);
    /* a read-only buffer: EFAULT */
    void *ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    res("stat-ro-buffer", syscall(SYS_stat, tmpf, ro), NULL);
    res("sysinfo-ro-buffer", syscall(SYS_sysinfo, ro), NULL);
    res("uname-ro-buffer", syscall(SYS_uname, ro), NULL);
    res("stat-unmapped-path", syscall(SYS_stat, (char *)8, &st), NULL);
    unlink(out);
    unlink(tmpf);
}

static void fds(void) {
    int e = syscall(SYS_epoll_create, 1);
    res("epoll_create", e, NULL);
    res("epoll_create-0", syscall(SYS_epoll_create, 0), NULL);
    struct epoll_event ev;
    struct timespec zero = {0, 0};
    val("epoll_pwait2", syscall(SYS_epoll_pwait2, e, &ev, 1, &zero, NULL, 8), 0);
    int efd = syscall(SYS_eventfd, 3);
    uint64_t v = 0;
    read(efd, &v, 8);
    res("eventfd", efd, v == 3 ? "3" : "wrong");
    int e2 = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    res("eventfd2-cloexec", e2, fcntl(e2, F_GETFD) & FD_CLOEXEC ? "cloexec" : "no");
    res("eventfd2-nonblock", read(e2, &v, 8), NULL);
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR1);
    sigprocmask(SIG_BLOCK, &m, NULL);
    int sfd = signalfd(-1, &m, SFD_CLOEXEC);
    res("signalfd4", sfd, NULL);
    raise(SIGUSR1);
    struct signalfd_siginfo si;
    long r = read(sfd, &si, sizeof si);
    res("signalfd-read", r, r > 0 && si.ssi_signo == SIGUSR1 ? "SIGUSR1" : "other");
    res("signalfd-legacy", syscall(SYS_signalfd, -1, &m, 8), NULL);
    sigaddset(&m, SIGUSR2);
    res("signalfd-update", signalfd(sfd, &m, 0) == sfd ? 0 : -1, NULL);
    int in = syscall(SYS_inotify_init);
    res("inotify_init", in, NULL);
    int in1 = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    res("inotify_init1", in1, fcntl(in1, F_GETFD) & FD_CLOEXEC ? "cloexec" : "no");
    int wd = inotify_add_watch(in1, "/tmp", IN_CREATE);
    res("inotify_add_watch", wd, NULL);
    res("inotify_rm_watch", inotify_rm_watch(in1, wd), NULL);
    res("inotify_rm_watch-bad", inotify_rm_watch(in1, 999), NULL);
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
    res("timerfd_create", tfd, NULL);
    struct itimerspec its = {{0, 0}, {100, 0}}, cur;
    res("timerfd_settime", timerfd_settime(tfd, 0, &its, NULL), NULL);
    long tg = timerfd_gettime(tfd, &cur);
    res("timerfd_gettime", tg, cur.it_value.tv_sec > 90 ? "armed" : "off");
    int mfd = memfd_create("probe", MFD_CLOEXEC);
    write(mfd, "mem", 3);
    char b[4] = {0};
    pread(mfd, b, 3, 0);
    res("memfd_create", mfd, b);
    fd_set rs;
    FD_ZERO(&rs);
    struct timeval tv = {0, 0};
    val("select", select(1, &rs, NULL, NULL, &tv), 0);
    struct pollfd pf = {efd, POLLIN, 0};
    val("poll", poll(&pf, 1, 0), 0);
    /* terminal and fd ioctls on a pty */
    int mfdt, sfdt;
    if (openpty(&mfdt, &sfdt, NULL, NULL, NULL) == 0) {
        int on = 1;
        res("ioctl-FIONBIO", ioctl(mfdt, FIONBIO, &on), NULL);
        res("ioctl-FIOASYNC", ioctl(mfdt, FIOASYNC, &on), NULL);
        res("ioctl-FIOCLEX", ioctl(mfdt, FIOCLEX), NULL);
        res("ioctl-FIONCLEX", ioctl(mfdt, FIONCLEX), NULL);
        int q = -1;
        res("ioctl-FIONREAD", ioctl(mfdt, FIONREAD, &q), NULL);
        struct winsize ws;
        res("ioctl-TIOCGWINSZ", ioctl(sfdt, TIOCGWINSZ, &ws), NULL);
        struct termios t;
        res("ioctl-TCGETS", tcgetattr(sfdt, &t), NULL);
    } else printf("openpty %s\n", strerrorname_np(errno));
}

static void sched(void) {
    val("getpriority", getpriority(PRIO_PROCESS, 0), 0);
    res("setpriority", setpriority(PRIO_PROCESS, 0, 5), NULL);
    errno = 0;
    long p = getpriority(PRIO_PROCESS, 0);
    val("getpriority-after", errno ? -1 : 0, p);
    val("sched_getscheduler", sched_getscheduler(0), SCHED_OTHER);
    struct sched_param sp;
    res("sched_getparam", sched_getparam(0, &sp), NULL);
    val("sched_get_priority_max", sched_get_priority_max(SCHED_FIFO), 99);
    val("sched_get_priority_min", sched_get_priority_min(SCHED_FIFO), 1);
    struct timespec ts;
    res("sched_rr_get_interval", sched_rr_get_interval(0, &ts), NULL);
    sp.sched_priority = 0;
    res("sched_setscheduler-batch", sched_setscheduler(0, SCHED_BATCH, &sp), NULL);
    val("sched_getscheduler-batch", sched_getscheduler(0), SCHED_BATCH);
    res("sched_setscheduler-fifo", sched_setscheduler(0, SCHED_FIFO, &(struct sched_param){.sched_priority = 1}), NULL);
    sched_setscheduler(0, SCHED_OTHER, &(struct sched_param){0});
    unsigned char attr[56] = {0};
    res("sched_getattr", syscall(SYS_sched_getattr, 0, attr, sizeof attr, 0), NULL);
    res("sched_getattr-badsize", syscall(SYS_sched_getattr, 0, attr, 10, 0), NULL);
    cpu_set_t cs;
    CPU_ZERO(&cs);
    res("sched_getaffinity", sched_getaffinity(0, sizeof cs, &cs), NULL);
    res("sched_getaffinity-small", syscall(SYS_sched_getaffinity, 0, 4, &cs), NULL);
    res("sched_getaffinity-pid-1", sched_getaffinity(-1, sizeof cs, &cs), NULL);
    res("sched_setaffinity-pid-1", sched_setaffinity(-1, sizeof cs, &cs), NULL);
    res("sched_getparam-pid-1", syscall(SYS_sched_getparam, -1, &(struct sched_param){0}), NULL);
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(0, &one);
    res("sched_setaffinity", sched_setaffinity(0, sizeof one, &one), NULL);
    res("ioprio_get", syscall(SYS_ioprio_get, 1, 0), NULL);
    res("ioprio_set", syscall(SYS_ioprio_set, 1, 0, (2 << 13) | 4), NULL);
    val("ioprio_get-after", syscall(SYS_ioprio_get, 1, 0), (2 << 13) | 4);
    res("getpriority-pgrp", getpriority(PRIO_PGRP, 0), NULL);
    res("getpriority-nosuch", getpriority(PRIO_PROCESS, 99999), NULL);
    unsigned int cpu, node;
    res("getcpu", syscall(SYS_getcpu, &cpu, &node, NULL), NULL);
    res("sched_yield", sched_yield(), NULL);
}

static void sigs_and_time(void) {
    sigset_t m, pend;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR2);
    sigprocmask(SIG_BLOCK, &m, NULL);
    raise(SIGUSR2);
    long sp_ = sigpending(&pend);
    res("rt_sigpending", sp_, sigismember(&pend, SIGUSR2) ? "SIGUSR2" : "none");
    res("rt_sigpending-small", syscall(SYS_rt_sigpending, &pend, 4), NULL);
    res("rt_sigpending-big", syscall(SYS_rt_sigpending, &pend, 16), NULL);
    struct timespec z = {0, 0};
    val("rt_sigtimedwait", sigtimedwait(&m, NULL, &z), SIGUSR2);
    union sigval sv = {.sival_int = 7};
    res("rt_sigqueueinfo", sigqueue(getpid(), SIGUSR2, sv), NULL);
    siginfo_t info;
    long s = sigtimedwait(&m, &info, &z);
    val("rt_sigqueueinfo-value", s, info.si_value.sival_int);
    struct itimerval it = {{0, 0}, {100, 0}}, got;
    res("setitimer", setitimer(ITIMER_REAL, &it, NULL), NULL);
    long gi = getitimer(ITIMER_REAL, &got);
    res("getitimer", gi, got.it_value.tv_sec > 90 ? "armed" : "off");
    it.it_value.tv_sec = 0;
    setitimer(ITIMER_REAL, &it, NULL);
    val("alarm", alarm(0), 0);
    timer_t t;
    struct sigevent sev = {.sigev_notify = SIGEV_NONE};
    res("timer_create", timer_create(CLOCK_MONOTONIC, &sev, &t), NULL);
    struct itimerspec its = {{0, 0}, {100, 0}}, cur;
    res("timer_settime", timer_settime(t, 0, &its, NULL), NULL);
    long tgt = timer_gettime(t, &cur);
    res("timer_gettime", tgt, cur.it_value.tv_sec > 90 ? "armed" : "off");
    val("timer_getoverrun", timer_getoverrun(t), 0);
    res("timer_delete", timer_delete(t), NULL);
    struct timespec r;
    long cg = syscall(SYS_clock_getres, CLOCK_MONOTONIC, &r);
    res("clock_getres", cg, r.tv_nsec == 1 ? "1ns" : "other");
    res("clock_getres-bad", syscall(SYS_clock_getres, 99, &r), NULL);
    res("clock_getres-cputime", syscall(SYS_clock_getres, CLOCK_PROCESS_CPUTIME_ID, &r), NULL);
    res("clock_nanosleep", clock_nanosleep(CLOCK_MONOTONIC, 0, &z, NULL), NULL);
    res("time", syscall(SYS_time, NULL) > 1700000000 ? 0 : -1, NULL);
    struct tms tm;
    res("times", syscall(SYS_times, &tm) > 0 ? 0 : -1, NULL);
}

static void ipc(void) {
    int shm = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
    res("shmget", shm, NULL);
    char *mem = shmat(shm, NULL, 0);
    res("shmat", mem == (void *)-1 ? -1 : 0, NULL);
    if (mem != (void *)-1) { strcpy(mem, "shm"); res("shmdt", shmdt(mem), NULL); }
    res("shmctl-rmid", shmctl(shm, IPC_RMID, NULL), NULL);
    int sem = semget(IPC_PRIVATE, 1, IPC_CREAT | 0600);
    res("semget", sem, NULL);
    struct sembuf op = {0, 1, 0};
    res("semop", semop(sem, &op, 1), NULL);
    val("semctl-getval", semctl(sem, 0, GETVAL), 1);
    struct timespec z = {0, 0};
    op.sem_op = -2;
    res("semtimedop", semtimedop(sem, &op, 1, &z), NULL);
    res("semctl-rmid", semctl(sem, 0, IPC_RMID), NULL);
    int mq = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    res("msgget", mq, NULL);
    struct { long t; char x[8]; } msg = {1, "msg"};
    res("msgsnd", msgsnd(mq, &msg, 4, 0), NULL);
    val("msgrcv", msgrcv(mq, &msg, 8, 0, IPC_NOWAIT), 4);
    res("msgctl-rmid", msgctl(mq, IPC_RMID, NULL), NULL);
    mqd_t q = mq_open("/compatprobe", O_CREAT | O_RDWR, 0600, NULL);
    res("mq_open", q, NULL);
    res("mq_send", mq_send(q, "pmq", 3, 1), NULL);
    struct mq_attr a;
    long ga = mq_getattr(q, &a);
    res("mq_getattr", ga, a.mq_curmsgs == 1 ? "1" : "?");
    char buf[8192];
    val("mq_receive", mq_receive(q, buf, sizeof buf, NULL), 3);
    res("mq_unlink", mq_unlink("/compatprobe"), NULL);
    res("mq_unlink-again", mq_unlink("/compatprobe"), NULL);
}

static void aio(void) {
    aio_context_t ctx = 0;
    res("io_setup", syscall(SYS_io_setup, 4, &ctx), NULL);
    int fd = open("/etc/hostname", O_RDONLY);
    char b[64];
    struct iocb cb = {0};
    cb.aio_fildes = fd;
    cb.aio_lio_opcode = IOCB_CMD_PREAD;
    cb.aio_buf = (unsigned long)b;
    cb.aio_nbytes = sizeof b;
    struct iocb *cbs[1] = {&cb};
    val("io_submit", syscall(SYS_io_submit, ctx, 1, cbs), 1);
    struct io_event ev;
    val("io_getevents", syscall(SYS_io_getevents, ctx, 1, 1, &ev, NULL), 1);
    res("io_destroy", syscall(SYS_io_destroy, ctx), NULL);
    close(fd);
}

static void memory(void) {
    char *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    p[0] = 1;
    unsigned char vec[2];
    long mc = mincore(p, 8192, vec);
    res("mincore", mc, vec[0] & 1 ? "resident" : "not");
    res("madvise-dontneed", madvise(p, 8192, MADV_DONTNEED), NULL);
    char *q = mremap(p, 8192, 16384, MREMAP_MAYMOVE);
    res("mremap", q == MAP_FAILED ? -1 : 0, NULL);
    res("mlock", mlock(q, 4096), NULL);
    res("munlock", munlock(q, 4096), NULL);
    res("mlock2", syscall(SYS_mlock2, q, 4096, 0), NULL);
    res("munlockall", munlockall(), NULL);
    val("membarrier-query", syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0) > 0 ? 0 : -1, 0);
    res("rseq-again", syscall(SYS_rseq, NULL, 0, 0, 0), NULL);
    void *head;
    size_t len;
    res("get_robust_list", syscall(SYS_get_robust_list, 0, &head, &len), NULL);
    res("set_robust_list", syscall(SYS_set_robust_list, head, len), NULL);
    int fd = memfd_create("rfp", 0);
    ftruncate(fd, 16384);
    char *s = mmap(NULL, 16384, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    res("remap_file_pages", syscall(SYS_remap_file_pages, s, 4096, 0, 1, 0), NULL);
    uint32_t futex = 1;
    struct { uint64_t val, uaddr; uint32_t flags, pad; } w = {0, (unsigned long)&futex, 2 /* FUTEX2_SIZE_U32 */, 0};
    struct timespec abs;
    clock_gettime(CLOCK_MONOTONIC, &abs);
    res("futex_waitv", syscall(SYS_futex_waitv, &w, 1, 0, &abs, CLOCK_MONOTONIC), NULL);
}

static void procs(void) {
    val("setfsuid-query", syscall(SYS_setfsuid, -1), 0);
    val("setfsgid-query", syscall(SYS_setfsgid, -1), 0);
    uid_t r, e, s;
    res("getresuid", getresuid(&r, &e, &s), NULL);
    gid_t g[64];
    val("getgroups-count", getgroups(0, NULL) >= 0 ? 0 : -1, 0);
    res("getgroups", getgroups(64, g), NULL);
    val("getpgid", getpgid(0) == getpgrp() ? 0 : -1, 0);
    val("getsid", getsid(0) == getsid(getpid()) ? 0 : -1, 0);
    res("getsid-nosuch", getsid(99999), NULL);
    struct { uint32_t v; int pid; } hdr = {0x20080522, 0};
    struct { uint32_t e, p, i; } data[2];
    res("capget", syscall(SYS_capget, &hdr, data), NULL);
    hdr.v = 1;
    res("capget-badversion", syscall(SYS_capget, &hdr, data), NULL);
    printf("capget-version %x\n", hdr.v);
    hdr.v = 1;
    res("capget-probe", syscall(SYS_capget, &hdr, NULL), NULL);
    val("sysfs-count", syscall(SYS_sysfs, 3) > 0 ? 0 : -1, 0);
    char fs[256];
    res("sysfs-name", syscall(SYS_sysfs, 2, 0, fs), NULL);
    res("sysfs-bad", syscall(SYS_sysfs, 9), NULL);
    struct stat st;
    stat("/", &st);
    char u[32];
    long ur = syscall(SYS_ustat, st.st_dev, u);
    printf("ustat %s\n", ur < 0 ? strerrorname_np(errno) : "ok");
    /* execveat, pidfds */
    pid_t c = fork();
    if (c == 0) {
        char *argv[] = {"true", NULL};
        syscall(SYS_execveat, AT_FDCWD, "/bin/true", argv, environ, 0);
        _exit(9);
    }
    int status;
    waitpid(c, &status, 0);
    val("execveat", WIFEXITED(status) ? 0 : -1, WEXITSTATUS(status));
    c = fork();
    if (c == 0) { pause(); _exit(0); }
    int pfd = syscall(SYS_pidfd_open, c, 0);
    res("pidfd_open", pfd, fcntl(pfd, F_GETFD) & FD_CLOEXEC ? "cloexec" : "no");
    res("pidfd_send_signal", syscall(SYS_pidfd_send_signal, pfd, SIGKILL, NULL, 0), NULL);
    waitpid(c, &status, 0);
    val("pidfd-killed", WIFSIGNALED(status) ? 0 : -1, WTERMSIG(status));
    int self = syscall(SYS_pidfd_open, getpid(), 0);
    res("pidfd_getfd", syscall(SYS_pidfd_getfd, self, 0, 0), NULL);
    res("pidfd_open-nosuch", syscall(SYS_pidfd_open, 99999, 0), NULL);
    /* own seccomp filter: getppid answers EPERM afterwards */
    c = fork();
    if (c == 0) {
        struct sock_filter f[] = {
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 1),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_fprog prog = {4, f};
        prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
        long pp = syscall(SYS_getppid);
        _exit(r == 0 && pp == -1 && errno == EPERM ? 0 : 1);
    }
    waitpid(c, &status, 0);
    val("seccomp-own-filter", 0, WEXITSTATUS(status));
    c = fork();
    if (c == 0) {
        struct sock_filter f[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
        struct sock_fprog prog = {1, f};
        prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        _exit(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0 ? 0 : 1);
    }
    waitpid(c, &status, 0);
    val("prctl-set-seccomp", 0, WEXITSTATUS(status));
    val("seccomp-actions-avail", syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &(uint32_t){SECCOMP_RET_LOG}), 0);
    res("personality-query", personality(0xffffffff), NULL);
    res("prctl-timerslack", prctl(PR_SET_TIMERSLACK, 50000, 0, 0, 0), NULL);
    val("prctl-get-timerslack", prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0), 50000);
    res("prctl-unknown", prctl(999, 0, 0, 0, 0), NULL);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_cur / 2;
    res("setrlimit-lower", setrlimit(RLIMIT_NOFILE, &rl), NULL);
    rl.rlim_max = rl.rlim_max + 1;
    res("setrlimit-raise-hard", setrlimit(RLIMIT_NOFILE, &rl), NULL);
    struct rusage ru;
    res("getrusage", getrusage(RUSAGE_SELF, &ru), NULL);
    res("unshare-files", unshare(CLONE_FILES), NULL);
}

/* AF_UNIX names: the name a socket is bound with is what getsockname,
 * getpeername, recvfrom's sender and /proc/net/unix report. */
static int unix_sock(int type) { return socket(AF_UNIX, type | SOCK_CLOEXEC, 0); }
static long unix_bind(int s, const char *path) {
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    strncpy(a.sun_path, path, sizeof a.sun_path - 1);
    return bind(s, (struct sockaddr *)&a, sizeof a);
}
static long unix_connect(int s, const char *path) {
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    strncpy(a.sun_path, path, sizeof a.sun_path - 1);
    return connect(s, (struct sockaddr *)&a, sizeof a);
}
static void name_of(const char *label, int s, int peer) {
    struct sockaddr_un a;
    socklen_t n = sizeof a;
    memset(&a, 0, sizeof a);
    long r = peer ? getpeername(s, (struct sockaddr *)&a, &n) : getsockname(s, (struct sockaddr *)&a, &n);
    char d[160];
    snprintf(d, sizeof d, "'%s' %u", n > 2 ? a.sun_path : "", (unsigned)n);
    res(label, r, r < 0 ? NULL : d);
}
static void bound(const char *label, const char *path) {
    int s = unix_sock(SOCK_STREAM);
    long r = unix_bind(s, path);
    res(label, r, NULL);
    if (r == 0) name_of(label, s, 0);
    close(s);
}
static void is_socket(const char *label, const char *path) {
    struct stat st;
    long r = lstat(path, &st);
    res(label, r, r < 0 ? NULL : S_ISSOCK(st.st_mode) ? "socket" : "other");
}
static void unix_names(void) {
    mkdir("/tmp/u", 0755);
    mkdir("/tmp/u/deep", 0755);
    mkdir("/srv/u", 0755);
    bound("unix-abs", "/tmp/u/a.sock");
    bound("unix-abs-deep", "/tmp/u/deep/a.sock");
    bound("unix-abs-slashes", "//tmp//u/b.sock");
    bound("unix-rootfs-dir", "/srv/u/a.sock");
    chdir("/tmp/u");
    bound("unix-rel", "c.sock");
    is_socket("unix-rel-made", "/tmp/u/c.sock");
    chdir("/tmp");
    bound("unix-rel-deep", "u/deep/c.sock");
    bound("unix-rel-dotdot", "u/../u/deep/d.sock");
    bound("unix-abs-dotdot", "/tmp/../tmp/./u/f.sock");
    chdir("/");
    symlink("/tmp/u", "/tmp/link");
    bound("unix-via-symlink", "/tmp/link/e.sock");
    is_socket("unix-via-symlink-made", "/tmp/u/e.sock");
    bound("unix-in-use", "/tmp/u/a.sock");
    symlink("/tmp/u/nothing", "/tmp/u/dangling");
    bound("unix-final-symlink", "/tmp/u/dangling");
    is_socket("unix-final-symlink-not-followed", "/tmp/u/nothing");
    bound("unix-missing-dir", "/tmp/none/a.sock");
    bound("unix-proc-first", "/proc/x.sock");

    long r;
    /* stream: the client sees the server's name, the server an unbound peer */
    int srv = unix_sock(SOCK_STREAM), cli = unix_sock(SOCK_STREAM);
    res("unix-listen", unix_bind(srv, "/tmp/u/srv.sock") || listen(srv, 4), NULL);
    res("unix-connect", unix_connect(cli, "/tmp/u/srv.sock"), NULL);
    name_of("unix-getpeername", cli, 1);
    struct sockaddr_un a;
    socklen_t n = sizeof a;
    int acc = accept(srv, (struct sockaddr *)&a, &n);
    val("unix-accept-peer-len", acc, n);
    name_of("unix-accepted-name", acc, 0);
    close(acc); close(cli); close(srv);

    /* peer credentials: the connecting process's ids, whoever connects */
    srv = unix_sock(SOCK_STREAM);
    unix_bind(srv, "/tmp/u/cred.sock");
    chmod("/tmp/u/cred.sock", 0777);
    listen(srv, 4);
    pid_t kid = fork();
    if (kid == 0) {
        setgroups(1, (gid_t[]){1002});
        setresgid(1001, 1001, 0);
        setresuid(1000, 1000, 0);  /* as perl's $> = $< = uid: saved uid 0 */
        int c = unix_sock(SOCK_STREAM);
        if (unix_connect(c, "/tmp/u/cred.sock") < 0) _exit(1);
        struct ucred sc;
        socklen_t l = sizeof sc;
        getsockopt(c, SOL_SOCKET, SO_PEERCRED, &sc, &l);
        char b = sc.uid == 0 && sc.gid == 0 ? 'y' : 'n';
        write(c, &b, 1);
        pause();
        _exit(0);
    }
    acc = accept(srv, NULL, NULL);
    struct ucred uc;
    socklen_t ul = sizeof uc;
    r = getsockopt(acc, SOL_SOCKET, SO_PEERCRED, &uc, &ul);
    char d[64];
    snprintf(d, sizeof d, "uid=%u gid=%u", uc.uid, uc.gid);
    res("unix-peercred-ids", r, r < 0 ? NULL : d);
    val("unix-peercred-pid-is-client", r, uc.pid == kid);
    gid_t groups[8];
    socklen_t gl = sizeof groups;
    r = getsockopt(acc, SOL_SOCKET, SO_PEERGROUPS, groups, &gl);
    snprintf(d, sizeof d, "n=%u first=%u", (unsigned)(gl / sizeof(gid_t)), gl ? groups[0] : 0);
    res("unix-peergroups", r, r < 0 ? NULL : d);
    char yn = '?';
    read(acc, &yn, 1);
    val("unix-client-sees-server-root", 0, yn == 'y');
    kill(kid, SIGKILL);
    waitpid(kid, NULL, 0);
    close(acc); close(srv);

    /* datagram: recvfrom reports the bound sender's name */
    int d1 = unix_sock(SOCK_DGRAM), d2 = unix_sock(SOCK_DGRAM);
    unix_bind(d1, "/tmp/u/d1");
    chdir("/tmp");
    unix_bind(d2, "u/d2");
    struct sockaddr_un to = {.sun_family = AF_UNIX};
    strcpy(to.sun_path, "/tmp/u/d2");
    res("unix-sendto", sendto(d1, "x", 1, 0, (struct sockaddr *)&to, sizeof to), NULL);
    char buf[4];
    n = sizeof a;
    memset(&a, 0, sizeof a);
    r = recvfrom(d2, buf, sizeof buf, 0, (struct sockaddr *)&a, &n);
    res("unix-recvfrom-sender", r, r < 0 ? NULL : a.sun_path);
    name_of("unix-dgram-rel-name", d2, 0);
    close(d1); close(d2);
    chdir("/");

    /* many binds at once: each socket gets its own name */
    for (int i = 0; i < 8; i++) {
        if (fork() == 0) {
            char p[64], want[64];
            int bad = 0;
            for (int j = 0; j < 20; j++) {
                snprintf(p, sizeof p, "/tmp/u/deep/p%d-%d", i, j);
                int s = unix_sock(SOCK_STREAM);
                if (unix_bind(s, p) < 0) bad++;
                struct sockaddr_un b;
                socklen_t m = sizeof b;
                memset(&b, 0, sizeof b);
                getsockname(s, (struct sockaddr *)&b, &m);
                snprintf(want, sizeof want, "%s", p);
                if (strcmp(b.sun_path, want)) bad++;
                close(s);
            }
            _exit(bad);
        }
    }
    int bad = 0, st;
    while (wait(&st) > 0) bad += WEXITSTATUS(st);
    val("unix-concurrent-binds-wrong", 0, bad);

    /* as an unprivileged user: its own directory, and one it cannot write */
    mkdir("/tmp/mine", 0755);
    chown("/tmp/mine", 1000, 1000);
    if (fork() == 0) {
        setgroups(0, NULL);
        setresgid(1000, 1000, 1000);
        setresuid(1000, 1000, 1000);
        bound("unix-user-own-dir", "/tmp/mine/a.sock");
        bound("unix-user-root-dir", "/tmp/u/user.sock");
        _exit(0);
    }
    wait(NULL);
    FILE *f = fopen("/proc/net/unix", "r");
    int seen = 0;
    char line[512];
    while (f && fgets(line, sizeof line, f))
        if (strstr(line, "/tmp/u/srv.sock") || strstr(line, "/proc/self/fd")) seen += strstr(line, "/proc/self/fd") ? 100 : 1;
    if (f) fclose(f);
    val("unix-proc-net-unix", 0, seen);
}

/* A process that changed its uids without exec is not dumpable: its own
 * /proc/<pid> entries belong to root, yet Linux lets it use its own fd/,
 * fdinfo/, exe and cwd (same thread group), not another's. */
static void nodump_case(const char *how) {
    char label[64];
    int other = fork();
    if (other == 0) { pause(); _exit(0); }
    pid_t kid = fork();
    if (kid == 0) {
        if (!strcmp(how, "saved-root")) {
            setresgid(1001, 1001, 0);
            setresuid(1000, 1000, 0);
        } else {
            setresgid(1001, 1001, 1001);
            setresuid(1000, 1000, 1000);
        }
        int f = open("/etc/passwd", O_RDONLY);
        int d = open("/etc", O_RDONLY | O_DIRECTORY);
        struct stat st;
        char p[64], buf[256];
        snprintf(label, sizeof label, "nodump-%s-dumpable", how);
        val(label, 0, prctl(PR_GET_DUMPABLE));
        snprintf(label, sizeof label, "nodump-%s-fstat", how);
        res(label, fstat(f, &st), NULL);
        snprintf(label, sizeof label, "nodump-%s-fstatat-empty", how);
        res(label, fstatat(f, "", &st, AT_EMPTY_PATH), NULL);
        snprintf(label, sizeof label, "nodump-%s-openat-dirfd", how);
        res(label, openat(d, "passwd", O_RDONLY), NULL);
        snprintf(label, sizeof label, "nodump-%s-stat-self-fd", how);
        snprintf(p, sizeof p, "/proc/self/fd/%d", f);
        res(label, stat(p, &st), NULL);
        snprintf(label, sizeof label, "nodump-%s-open-self-fd", how);
        res(label, open(p, O_RDONLY), NULL);
        snprintf(label, sizeof label, "nodump-%s-list-self-fd", how);
        res(label, open("/proc/self/fd", O_RDONLY | O_DIRECTORY), NULL);
        snprintf(label, sizeof label, "nodump-%s-fdinfo", how);
        snprintf(p, sizeof p, "/proc/self/fdinfo/%d", f);
        res(label, open(p, O_RDONLY), NULL);
        snprintf(label, sizeof label, "nodump-%s-readlink-exe", how);
        res(label, readlink("/proc/self/exe", buf, sizeof buf), NULL);
        snprintf(label, sizeof label, "nodump-%s-readlink-cwd", how);
        res(label, readlink("/proc/self/cwd", buf, sizeof buf), NULL);
        snprintf(label, sizeof label, "nodump-%s-environ", how);
        res(label, open("/proc/self/environ", O_RDONLY), NULL);
        snprintf(label, sizeof label, "nodump-%s-task-fd", how);
        snprintf(p, sizeof p, "/proc/self/task/%d/fd", (int)syscall(SYS_gettid));
        res(label, open(p, O_RDONLY | O_DIRECTORY), NULL);
        snprintf(label, sizeof label, "nodump-%s-other-fd", how);
        snprintf(p, sizeof p, "/proc/%d/fd", other);
        res(label, open(p, O_RDONLY | O_DIRECTORY), NULL);
        snprintf(label, sizeof label, "nodump-%s-other-exe", how);
        snprintf(p, sizeof p, "/proc/%d/exe", other);
        res(label, readlink(p, buf, sizeof buf), NULL);
        _exit(0);
    }
    waitpid(kid, NULL, 0);
    kill(other, SIGKILL);
    waitpid(other, NULL, 0);
}
static void nodump(void) {
    nodump_case("saved-root");
    nodump_case("all-ids");
}

int main(int argc, char **argv) {
    const char *only = argc > 1 ? argv[1] : "all";
    if (!strcmp(only, "all") || !strcmp(only, "files")) files();
    if (!strcmp(only, "all") || !strcmp(only, "fds")) fds();
    if (!strcmp(only, "all") || !strcmp(only, "sched")) sched();
    if (!strcmp(only, "all") || !strcmp(only, "sigs")) sigs_and_time();
    if (!strcmp(only, "all") || !strcmp(only, "ipc")) ipc();
    if (!strcmp(only, "all") || !strcmp(only, "aio")) aio();
    if (!strcmp(only, "all") || !strcmp(only, "memory")) memory();
    if (!strcmp(only, "all") || !strcmp(only, "procs")) procs();
    if (!strcmp(only, "all") || !strcmp(only, "unix")) unix_names();
    if (!strcmp(only, "all") || !strcmp(only, "nodump")) nodump();
    return 0;
}
