/* Network probe: the network policy tests (tests/test_network.py) and the
 * network benchmarks (benchmarks/_netcases.py).
 * Static; each mode prints KEY=VALUE lines, VALUE "ok" or an errno name.
 *
 *   netprobe connect ADDR PORT        TCP connect (ADDR v4 or v6 literal)
 *   netprobe udp ADDR PORT            UDP sendto
 *   netprobe sendmsg ADDR PORT        UDP sendmsg with msg_name
 *   netprobe sendmmsg ADDR PORT       UDP sendmmsg, 2 messages
 *   netprobe bind ADDR PORT           TCP bind + listen
 *   netprobe race GOOD BAD PORT N     N connects to GOOD while a thread
 *                                     flips the sockaddr to BAD; prints how
 *                                     many landed on BAD (getpeername)
 *   netprobe netlink                  route netlink: dump, then mutations
 *                                     by send, sendto (with address),
 *                                     sendmsg and write
 *   netprobe raw                      socket(AF_INET, SOCK_RAW, ICMP)
 *   netprobe connrate ADDR PORT N     N connect+close, prints us per connect
 *   netprobe scm                      SCM_RIGHTS over a socketpair (sendmsg)
 *   netprobe sendrate N               N UDP sendmsg with a destination, then N
 *                                     send on a connected socket, to a loopback
 *                                     receiver: microseconds per call
 *   netprobe sigpipe                  sendmsg on a socket whose peer is gone:
 *                                     killed by SIGPIPE (prints only if not)
 *   netprobe serve PORT N             accept and close N connections on
 *                                     127.0.0.1:PORT (gives up after 60 s)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/fib_rules.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static const char *ename(int e) {
    switch (e) {
    case 0: return "ok";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case ECONNREFUSED: return "ECONNREFUSED";
    case ENETUNREACH: return "ENETUNREACH";
    case EHOSTUNREACH: return "EHOSTUNREACH";
    case EINVAL: return "EINVAL";
    case ETIMEDOUT: return "ETIMEDOUT";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case ENOSYS: return "ENOSYS";
    case EBADF: return "EBADF";
    default: { static char b[32]; snprintf(b, sizeof b, "E%d", e); return b; }
    }
}

static socklen_t mkaddr(const char *a, int port, struct sockaddr_storage *ss) {
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, a, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET; s4->sin_port = htons(port); return sizeof *s4;
    }
    if (inet_pton(AF_INET6, a, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6; s6->sin6_port = htons(port); return sizeof *s6;
    }
    fprintf(stderr, "bad address %s\n", a); exit(2);
}

static int res(int r) { return r < 0 ? errno : 0; }

static int do_connect(const char *a, int port) {
    struct sockaddr_storage ss; socklen_t n = mkaddr(a, port, &ss);
    int s = socket(ss.ss_family, SOCK_STREAM, 0);
    struct timeval tv = {2, 0};
    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int e = res(connect(s, (struct sockaddr *)&ss, n));
    close(s);
    return e;
}

static int udp_sock(int fam) { return socket(fam, SOCK_DGRAM, 0); }

static int do_udp(const char *mode, const char *a, int port) {
    struct sockaddr_storage ss; socklen_t n = mkaddr(a, port, &ss);
    int s = udp_sock(ss.ss_family), e;
    char data[] = "probe";
    if (!strcmp(mode, "udp")) {
        e = res(sendto(s, data, sizeof data, 0, (struct sockaddr *)&ss, n));
    } else if (!strcmp(mode, "sendmsg")) {
        struct iovec iov = {data, sizeof data};
        struct msghdr m = {.msg_name = &ss, .msg_namelen = n, .msg_iov = &iov, .msg_iovlen = 1};
        e = res(sendmsg(s, &m, 0));
    } else {
        struct iovec iov = {data, sizeof data};
        struct mmsghdr mm[2];
        memset(mm, 0, sizeof mm);
        for (int i = 0; i < 2; i++) {
            mm[i].msg_hdr.msg_name = &ss; mm[i].msg_hdr.msg_namelen = n;
            mm[i].msg_hdr.msg_iov = &iov; mm[i].msg_hdr.msg_iovlen = 1;
        }
        int r = sendmmsg(s, mm, 2, 0);
        e = r < 0 ? errno : (r == 2 && mm[0].msg_len == sizeof data ? 0 : EINVAL);
    }
    close(s);
    return e;
}

static int do_bind(const char *a, int port) {
    struct sockaddr_storage ss; socklen_t n = mkaddr(a, port, &ss);
    int s = socket(ss.ss_family, SOCK_STREAM, 0), one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int e = res(bind(s, (struct sockaddr *)&ss, n));
    if (!e) e = res(listen(s, 4));
    close(s);
    return e;
}

/* --- race: a thread rewrites the sockaddr while connect is in flight --- */
static struct sockaddr_storage race_addr, good, bad;
static socklen_t race_len;
static volatile int stop;

static void *flipper(void *arg) {
    (void)arg;
    while (!stop) {
        memcpy(&race_addr, &bad, race_len);
        memcpy(&race_addr, &good, race_len);
    }
    return NULL;
}

static void do_race(const char *g, const char *b, int port, int n) {
    race_len = mkaddr(g, port, &good);
    mkaddr(b, port, &bad);
    memcpy(&race_addr, &good, race_len);
    pthread_t t;
    pthread_create(&t, NULL, flipper, NULL);
    int landed_bad = 0, ok = 0, refused = 0, other = 0;
    for (int i = 0; i < n; i++) {
        int s = socket(good.ss_family, SOCK_STREAM, 0);
        if (connect(s, (struct sockaddr *)&race_addr, race_len) == 0) {
            struct sockaddr_storage peer; socklen_t pl = sizeof peer;
            getpeername(s, (struct sockaddr *)&peer, &pl);
            if (memcmp(&((struct sockaddr_in *)&peer)->sin_addr, &((struct sockaddr_in *)&bad)->sin_addr, 4) == 0)
                landed_bad++;
            else
                ok++;
        } else if (errno == EACCES) {
            refused++;
        } else {
            other++;
        }
        close(s);
        /* UDP too: sendto with the racing address */
        int u = udp_sock(good.ss_family);
        sendto(u, "x", 1, 0, (struct sockaddr *)&race_addr, race_len);
        close(u);
    }
    stop = 1;
    pthread_join(t, NULL);
    printf("race_bad=%d\nrace_good=%d\nrace_refused=%d\nrace_other=%d\n", landed_bad, ok, refused, other);
}

/* --- netlink --- */
static int nl_request(int s, int how, int type, int flags, void *body, int blen) {
    char buf[256];
    struct nlmsghdr *h = (struct nlmsghdr *)buf;
    memset(buf, 0, sizeof buf);
    h->nlmsg_len = NLMSG_LENGTH(blen);
    h->nlmsg_type = type;
    h->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
    h->nlmsg_seq = 1;
    memcpy(NLMSG_DATA(h), body, blen);
    struct sockaddr_nl k = {.nl_family = AF_NETLINK};
    int r;
    if (how == 0) r = send(s, buf, h->nlmsg_len, 0);
    else if (how == 1) r = sendto(s, buf, h->nlmsg_len, 0, (struct sockaddr *)&k, sizeof k);
    else if (how == 2) {
        struct iovec iov = {buf, h->nlmsg_len};
        struct msghdr m = {.msg_name = &k, .msg_namelen = sizeof k, .msg_iov = &iov, .msg_iovlen = 1};
        r = sendmsg(s, &m, 0);
    } else r = write(s, buf, h->nlmsg_len);
    if (r < 0) return errno;
    char in[8192];
    int n = recv(s, in, sizeof in, 0);
    if (n < (int)NLMSG_LENGTH(sizeof(struct nlmsgerr))) return EINVAL;
    struct nlmsghdr *a = (struct nlmsghdr *)in;
    if (a->nlmsg_type == NLMSG_ERROR) return -((struct nlmsgerr *)NLMSG_DATA(a))->error;
    return 0;
}

static void do_netlink(void) {
    int s = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
    if (s < 0) { printf("nl_socket=%s\n", ename(errno)); return; }
    /* a dump must work */
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
    char buf[256];
    struct nlmsghdr *h = (struct nlmsghdr *)buf;
    memset(buf, 0, sizeof buf);
    h->nlmsg_len = NLMSG_LENGTH(sizeof ifi); h->nlmsg_type = RTM_GETLINK;
    h->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP; h->nlmsg_seq = 2;
    memcpy(NLMSG_DATA(h), &ifi, sizeof ifi);
    int dump = send(s, buf, h->nlmsg_len, 0) < 0 ? errno : 0;
    for (int done = 0; !dump && !done;) {  /* read the dump to its NLMSG_DONE */
        static char in[32768];
        int n = recv(s, in, sizeof in, 0);
        if (n <= 0) { dump = n < 0 ? errno : EINVAL; break; }
        for (struct nlmsghdr *m = (struct nlmsghdr *)in; NLMSG_OK(m, (unsigned)n); m = NLMSG_NEXT(m, n))
            if (m->nlmsg_type == NLMSG_DONE) done = 1;
            else if (m->nlmsg_type == NLMSG_ERROR) { dump = -((struct nlmsgerr *)NLMSG_DATA(m))->error; done = 1; }
    }
    printf("nl_dump=%s\n", ename(dump));
    /* mutations: delete the backstop's first rule; add a route-table rule */
    static const char *hows[] = {"send", "sendto", "sendmsg", "write"};
    for (int how = 0; how < 4; how++) {
        struct { struct fib_rule_hdr f; struct nlattr a; unsigned int pref; } del;
        memset(&del, 0, sizeof del);
        del.f.family = AF_INET; del.f.action = FR_ACT_PROHIBIT;
        del.a.nla_len = NLA_HDRLEN + 4; del.a.nla_type = FRA_PRIORITY; del.pref = 100;
        printf("nl_delrule_%s=%s\n", hows[how], ename(nl_request(s, how, RTM_DELRULE, 0, &del, sizeof del)));
        struct { struct rtmsg r; struct nlattr a; unsigned int dst; } rt;
        memset(&rt, 0, sizeof rt);
        rt.r.rtm_family = AF_INET; rt.r.rtm_dst_len = 32; rt.r.rtm_table = RT_TABLE_MAIN;
        rt.r.rtm_protocol = RTPROT_BOOT; rt.r.rtm_scope = RT_SCOPE_UNIVERSE; rt.r.rtm_type = RTN_UNREACHABLE;
        rt.a.nla_len = NLA_HDRLEN + 4; rt.a.nla_type = RTA_DST; inet_pton(AF_INET, "192.0.2.1", &rt.dst);
        printf("nl_newroute_%s=%s\n", hows[how],
               ename(nl_request(s, how, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, &rt, sizeof rt)));
    }
    close(s);
}

static void do_connrate(const char *a, int port, int n) {
    struct sockaddr_storage ss; socklen_t len = mkaddr(a, port, &ss);
    struct timespec t0, t1;
    int fails = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < n; i++) {
        int s = socket(ss.ss_family, SOCK_STREAM, 0);
        if (connect(s, (struct sockaddr *)&ss, len) < 0) fails++;
        close(s);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double us = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / 1e3 / n;
    printf("connect_us=%.2f\nconnect_fails=%d\n", us, fails);
}

static void do_scm(void) {
    int sv[2];
    socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
    int p[2];
    pipe(p);
    char c = 'x';
    struct iovec iov = {&c, 1};
    union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } u;
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof u.b};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
    cm->cmsg_level = SOL_SOCKET; cm->cmsg_type = SCM_RIGHTS; cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &p[1], sizeof(int));
    int e = res(sendmsg(sv[0], &m, 0));
    printf("scm_send=%s\n", ename(e));
    struct msghdr r = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof u.b};
    if (recvmsg(sv[1], &r, 0) == 1) {
        int fd; memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&r)), sizeof fd);
        e = res(write(fd, "y", 1));
        char got = 0;
        if (!e && read(p[0], &got, 1) != 1) e = EINVAL;
        printf("scm_fd_works=%s\n", got == 'y' ? "ok" : ename(e ? e : EINVAL));
    } else {
        printf("scm_fd_works=%s\n", ename(errno));
    }
}

static void do_serve(int port, int n) {
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 1024) < 0) {
        printf("serve=%s\n", ename(errno)); return;
    }
    alarm(60);
    for (int i = 0; i < n; i++) {
        int c = accept(s, NULL, NULL);
        if (c >= 0) close(c);
    }
}

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static void do_sendrate(int n) {
    int r = socket(AF_INET, SOCK_DGRAM, 0), s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    bind(r, (struct sockaddr *)&a, sizeof a);
    getsockname(r, (struct sockaddr *)&a, &al);
    char buf[64] = {0}, sink[64];
    struct iovec iov = {buf, sizeof buf};
    struct msghdr m = {.msg_name = &a, .msg_namelen = sizeof a, .msg_iov = &iov, .msg_iovlen = 1};
    int fails = 0;
    double t0 = now_us();
    for (int i = 0; i < n; i++) {
        if (sendmsg(s, &m, 0) < 0) fails++;
        if ((i & 31) == 31) while (recv(r, sink, sizeof sink, MSG_DONTWAIT) > 0) {}
    }
    double t1 = now_us();
    while (recv(r, sink, sizeof sink, MSG_DONTWAIT) > 0) {}
    connect(s, (struct sockaddr *)&a, sizeof a);
    double t2 = now_us();
    for (int i = 0; i < n; i++) {
        if (send(s, buf, sizeof buf, 0) < 0) fails++;
        if ((i & 31) == 31) while (recv(r, sink, sizeof sink, MSG_DONTWAIT) > 0) {}
    }
    double t3 = now_us();
    printf("sendmsg_us=%.2f\nsend_us=%.2f\nsend_fails=%d\n", (t1 - t0) / n, (t3 - t2) / n, fails);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc < 2) return 2;
    const char *m = argv[1];
    if (!strcmp(m, "connect") && argc >= 4) printf("connect=%s\n", ename(do_connect(argv[2], atoi(argv[3]))));
    else if ((!strcmp(m, "udp") || !strcmp(m, "sendmsg") || !strcmp(m, "sendmmsg")) && argc >= 4)
        printf("%s=%s\n", m, ename(do_udp(m, argv[2], atoi(argv[3]))));
    else if (!strcmp(m, "bind") && argc >= 4) printf("bind=%s\n", ename(do_bind(argv[2], atoi(argv[3]))));
    else if (!strcmp(m, "race") && argc >= 6) do_race(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]));
    else if (!strcmp(m, "netlink")) do_netlink();
    else if (!strcmp(m, "raw")) printf("raw=%s\n", ename(res(socket(AF_INET, SOCK_RAW, IPPROTO_ICMP))));
    else if (!strcmp(m, "connrate") && argc >= 5) do_connrate(argv[2], atoi(argv[3]), atoi(argv[4]));
    else if (!strcmp(m, "scm")) do_scm();
    else if (!strcmp(m, "sigpipe")) {
        int sv[2];
        socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
        close(sv[1]);
        char c = 'x';
        struct iovec iov = {&c, 1};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
        int e = res(sendmsg(sv[0], &mh, 0));
        printf("sigpipe=survived %s\n", ename(e));
    }
    else if (!strcmp(m, "sendrate") && argc >= 3) do_sendrate(atoi(argv[2]));
    else if (!strcmp(m, "serve") && argc >= 4) do_serve(atoi(argv[2]), atoi(argv[3]));
    else return 2;
    return 0;
}
