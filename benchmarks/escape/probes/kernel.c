/* Host-kernel state and attack surface: kernel memory, bpf, perf,
 * userfaultfd, io_uring, keyrings, modules, kexec (the /proc and /sys knobs
 * are in knobs.c, the other host secrets in secrets.c). */
#include "common.h"
#include <linux/bpf.h>
#include <linux/kexec.h>
#include <linux/perf_event.h>
#include <sys/syscall.h>

static int kcore(const char *name) {
    int fd = open("/proc/kcore", O_RDONLY);
    if (fd < 0) return BLOCKED("open /proc/kcore: %s", ERR);
    unsigned char b[64];
    ssize_t n = read(fd, b, sizeof b);
    close(fd);
    if (n >= 4 && memcmp(b, "\177ELF", 4) == 0) return ESCAPED("/proc/kcore readable: host kernel memory ELF");
    return BLOCKED("/proc/kcore opens but reads %zd bytes (masked)", n);
}

static int kallsyms(const char *name) {
    FILE *f = fopen("/proc/kallsyms", "r");
    if (!f) return BLOCKED("open /proc/kallsyms: %s", ERR);
    char line[256];
    int lines = 0, nonzero = 0;
    while (fgets(line, sizeof line, f) && lines < 2000) {
        lines++;
        unsigned long long a = strtoull(line, NULL, 16);
        if (a) nonzero++;
    }
    fclose(f);
    if (nonzero) return ESCAPED("%d/%d symbols with real host kernel addresses (KASLR leak)", nonzero, lines);
    if (lines) return ALLOWED("%d symbols, all addresses zeroed", lines);
    return BLOCKED("/proc/kallsyms is empty");
}

static int bpf_prog_load(const char *name) {
    struct bpf_insn insns[2] = {
        {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = 0},
        {.code = BPF_JMP | BPF_EXIT},
    };
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
    a.insns = (unsigned long)insns;
    a.insn_cnt = 2;
    a.license = (unsigned long)"GPL";
    long fd = syscall(SYS_bpf, BPF_PROG_LOAD, &a, sizeof a);
    if (fd < 0) return BLOCKED("bpf(BPF_PROG_LOAD): %s", ERR);
    close(fd);
    return ALLOWED("host kernel verified and loaded a socket-filter program");
}

static int perf_event(const char *name) {
    struct perf_event_attr a;
    memset(&a, 0, sizeof a);
    a.type = PERF_TYPE_SOFTWARE;
    a.size = sizeof a;
    a.config = PERF_COUNT_SW_CPU_CLOCK;
    a.disabled = 1;
    long fd = syscall(SYS_perf_event_open, &a, 0, -1, -1, 0);
    if (fd < 0) return BLOCKED("perf_event_open: %s", ERR);
    close(fd);
    return ALLOWED("perf_event_open(SW_CPU_CLOCK, self) succeeded");
}

static int userfaultfd_(const char *name) {
    long fd = syscall(SYS_userfaultfd, 0);
    if (fd < 0) return BLOCKED("userfaultfd: %s", ERR);
    close(fd);
    return ALLOWED("userfaultfd created");
}

static int io_uring(const char *name) {
    unsigned char params[120];
    memset(params, 0, sizeof params);
    long fd = syscall(425 /* io_uring_setup */, 4, params);
    if (fd < 0) return BLOCKED("io_uring_setup: %s", ERR);
    close(fd);
    return ALLOWED("io_uring instance created");
}

static int add_key(const char *name) {
    long k = syscall(SYS_add_key, "user", "escape-probe", "x", 1, -3 /* session keyring */);
    if (k < 0) return BLOCKED("add_key(user): %s", ERR);
    return ALLOWED("key %ld added to the session keyring", k);
}

/* Module loading and kexec: called with arguments the kernel rejects only
 * AFTER its permission checks, so nothing is loaded either way. */
static int init_module_(const char *name) {
    static char junk[64] = "not a module";
    if (syscall(SYS_init_module, junk, sizeof junk, "") == 0) return ESCAPED("init_module loaded junk?!");
    if (errno == EPERM || errno == ENOSYS || errno == EACCES) return BLOCKED("init_module: %s", ERR);
    return ESCAPED("init_module passed the permission check (%s on a junk image): a real module would load", ERR);
}
static int finit_module_(const char *name) {
    int fd = open("/proc/self/exe", O_RDONLY);
    if (syscall(SYS_finit_module, fd, "", 0) == 0) return ESCAPED("finit_module loaded a module?!");
    if (errno == EPERM || errno == ENOSYS || errno == EACCES) return BLOCKED("finit_module: %s", ERR);
    return ESCAPED("finit_module passed the permission check (%s on a non-module): a real module would load", ERR);
}
static int kexec_load_(const char *name) {
    /* nr_segments > KEXEC_SEGMENT_MAX: EINVAL after the CAP_SYS_BOOT check. */
    if (syscall(SYS_kexec_load, 0UL, 1000UL, NULL, 0UL) == 0) return ESCAPED("kexec_load succeeded?!");
    if (errno == EPERM || errno == ENOSYS || errno == EACCES) return BLOCKED("kexec_load: %s", ERR);
    return ESCAPED("kexec_load passed the permission check (%s on 1000 segments): could replace the host kernel", ERR);
}

static const struct probe probes[] = {
    {"kcore", kcore}, {"kallsyms", kallsyms}, {"bpf_prog_load", bpf_prog_load},
    {"perf_event_open", perf_event}, {"userfaultfd", userfaultfd_}, {"io_uring_setup", io_uring},
    {"add_key", add_key}, {"init_module", init_module_}, {"finit_module", finit_module_},
    {"kexec_load", kexec_load_},
};
PROBE_MAIN(probes)
