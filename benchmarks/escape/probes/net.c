/* Network escape probes: reaching the cloud metadata address (by literal,
 * IPv4-mapped IPv6, UDP, and a name resolved by a DNS answer), changing the
 * routing the runtime's policy relies on, and raw sockets.
 *
 * Each container has a network namespace of its own with only a loopback.
 * To give an attempt something to reach, a probe first tries to put the
 * metadata address on its own loopback (RTM_NEWADDR: needs CAP_NET_ADMIN,
 * which a sandbox may refuse whatever the capabilities) and to listen
 * there.  Nothing leaves the container's namespace.
 *   BLOCKED  refused by the sandbox (EACCES/EPERM)
 *   ALLOWED  the sandbox let the call through, but nothing was there to
 *            reach (no route in this empty namespace), or it changed only
 *            the container's own namespace
 *   ESCAPED  the metadata address was reached (a connection or datagram
 *            arrived), or the runtime's own kernel backstop rule was removed */
#include "common.h"
#include <arpa/inet.h>
#include <linux/fib_rules.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

#define META "169.254.169.254"

static int nl_talk(void *req, int len) {
    int s = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
    if (s < 0) return errno;
    struct sockaddr_nl k = {.nl_family = AF_NETLINK};
    if (sendto(s, req, len, 0, (struct sockaddr *)&k, sizeof k) < 0) { int e = errno; close(s); return e; }
    char buf[4096];
    int n = recv(s, buf, sizeof buf, 0), e = EINVAL;
    if (n >= (int)NLMSG_LENGTH(sizeof(struct nlmsgerr)) && ((struct nlmsghdr *)buf)->nlmsg_type == NLMSG_ERROR)
        e = -((struct nlmsgerr *)NLMSG_DATA((struct nlmsghdr *)buf))->error;
    close(s);
    return e;
}

/* Put META/32 on lo; 0 or an errno. */
static int add_meta_addr(void) {
    struct { struct nlmsghdr h; struct ifaddrmsg a; struct nlattr l; struct in_addr ip; } r;
    memset(&r, 0, sizeof r);
    r.h.nlmsg_len = sizeof r; r.h.nlmsg_type = RTM_NEWADDR;
    r.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
    r.a.ifa_family = AF_INET; r.a.ifa_prefixlen = 32; r.a.ifa_index = 1;
    r.l.nla_len = NLA_HDRLEN + 4; r.l.nla_type = IFA_LOCAL;
    inet_pton(AF_INET, META, &r.ip);
    int e = nl_talk(&r, sizeof r);
    return e == EEXIST ? 0 : e;
}

static int listener(int type, int port) {
    int s = socket(AF_INET, type, 0), one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, META, &a.sin_addr);
    if (bind(s, (struct sockaddr *)&a, sizeof a) < 0 || (type == SOCK_STREAM && listen(s, 4) < 0)) {
        close(s);
        return -1;
    }
    return s;
}

static int tcp_verdict(const char *name, struct sockaddr *sa, socklen_t len, const char *how) {
    int setup = add_meta_addr();
    int l = setup == 0 ? listener(SOCK_STREAM, 80) : -1;
    int s = socket(sa->sa_family, SOCK_STREAM, 0);
    struct timeval tv = {2, 0};
    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int r = connect(s, sa, len), e = errno;
    close(s);
    if (l >= 0) close(l);
    if (r == 0) return ESCAPED("connected to the metadata address by %s", how);
    if (e == EACCES || e == EPERM) return BLOCKED("connect by %s: %s", how, strerror(e));
    return ALLOWED("connect by %s not refused by the sandbox: %s (nothing listens in this "
                   "namespace; own address setup: %s)", how, strerror(e), setup ? strerror(setup) : "ok");
}

static int p_literal(const char *name) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(80)};
    inet_pton(AF_INET, META, &a.sin_addr);
    return tcp_verdict(name, (struct sockaddr *)&a, sizeof a, "IPv4 literal");
}

static int p_mapped(const char *name) {
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(80)};
    inet_pton(AF_INET6, "::ffff:" META, &a.sin6_addr);
    return tcp_verdict(name, (struct sockaddr *)&a, sizeof a, "IPv4-mapped IPv6");
}

static int p_udp(const char *name) {
    int setup = add_meta_addr();
    int l = setup == 0 ? listener(SOCK_DGRAM, 53) : -1;
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(53)};
    inet_pton(AF_INET, META, &a.sin_addr);
    int r = sendto(s, "q", 1, 0, (struct sockaddr *)&a, sizeof a), e = errno;
    close(s);
    char c;
    struct timeval tv = {0, 300000};
    if (l >= 0) setsockopt(l, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int got = l >= 0 && r == 1 && recv(l, &c, 1, 0) == 1;
    if (l >= 0) close(l);
    if (got) return ESCAPED("a datagram reached the metadata address");
    if (r < 0 && (e == EACCES || e == EPERM)) return BLOCKED("sendto: %s", strerror(e));
    return ALLOWED("sendto not refused by the sandbox: %s", r < 0 ? strerror(e) : "sent, nobody there");
}

/* A resolver's view: ask a DNS server (ours, on the loopback) for a name
 * and connect to the address in its answer. */
static int p_dns(const char *name) {
    int srv = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in d = {.sin_family = AF_INET, .sin_port = htons(5353)};
    d.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(srv, (struct sockaddr *)&d, sizeof d) < 0) return ALLOWED("no loopback DNS server: %s", ERR);
    int cli = socket(AF_INET, SOCK_DGRAM, 0);
    static const unsigned char q[] = {0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0,
        8, 'm','e','t','a','d','a','t','a', 6, 'g','o','o','g','l','e', 8, 'i','n','t','e','r','n','a','l', 0,
        0, 1, 0, 1};
    if (sendto(cli, q, sizeof q, 0, (struct sockaddr *)&d, sizeof d) < 0)
        return BLOCKED("query to the loopback resolver: %s", ERR);
    unsigned char buf[512];
    struct sockaddr_in from; socklen_t fl = sizeof from;
    int n = recvfrom(srv, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
    if (n < 12) return ALLOWED("the query did not arrive: %s", ERR);
    /* the answer: the question, then A META */
    static const unsigned char ans[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 169, 254, 169, 254};
    buf[2] = 0x81; buf[3] = 0x80; buf[7] = 1;
    memcpy(buf + n, ans, sizeof ans);
    sendto(srv, buf, n + sizeof ans, 0, (struct sockaddr *)&from, fl);
    int m = recv(cli, buf, sizeof buf, 0);
    close(srv); close(cli);
    if (m < (int)sizeof ans) return ALLOWED("no DNS answer: %s", ERR);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(80)};
    memcpy(&a.sin_addr, buf + m - 4, 4);
    return tcp_verdict(name, (struct sockaddr *)&a, sizeof a, "a name resolved over DNS");
}

static int rule_exists(int pref) {
    int s = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
    if (s < 0) return 0;
    struct { struct nlmsghdr h; struct fib_rule_hdr f; } r;
    memset(&r, 0, sizeof r);
    r.h.nlmsg_len = sizeof r; r.h.nlmsg_type = RTM_GETRULE; r.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    r.f.family = AF_INET;
    send(s, &r, sizeof r, 0);
    static char buf[32768];
    int found = 0, done = 0;
    while (!done) {
        int n = recv(s, buf, sizeof buf, 0);
        if (n <= 0) break;
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (unsigned)n); h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR) { done = 1; break; }
            struct fib_rule_hdr *f = NLMSG_DATA(h);
            int alen = h->nlmsg_len - NLMSG_LENGTH(sizeof *f);
            for (struct rtattr *a = (struct rtattr *)(f + 1); RTA_OK(a, alen); a = RTA_NEXT(a, alen))
                if (a->rta_type == FRA_PRIORITY && *(unsigned *)RTA_DATA(a) == (unsigned)pref) found = 1;
        }
    }
    close(s);
    return found;
}

static int p_route(const char *name) {
    int had = rule_exists(100);
    struct { struct nlmsghdr h; struct fib_rule_hdr f; struct nlattr a; unsigned pref; } d;
    memset(&d, 0, sizeof d);
    d.h.nlmsg_len = sizeof d; d.h.nlmsg_type = RTM_DELRULE; d.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
    d.f.family = AF_INET; d.f.action = FR_ACT_PROHIBIT;
    d.a.nla_len = NLA_HDRLEN + 4; d.a.nla_type = FRA_PRIORITY; d.pref = 100;
    int del = had ? nl_talk(&d, sizeof d) : ENOENT;
    struct { struct nlmsghdr h; struct rtmsg r; struct nlattr a; struct in_addr dst; struct nlattr o; int oif; } rt;
    memset(&rt, 0, sizeof rt);
    rt.h.nlmsg_len = sizeof rt; rt.h.nlmsg_type = RTM_NEWROUTE;
    rt.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
    rt.r.rtm_family = AF_INET; rt.r.rtm_dst_len = 32; rt.r.rtm_table = RT_TABLE_MAIN;
    rt.r.rtm_protocol = RTPROT_BOOT; rt.r.rtm_scope = RT_SCOPE_LINK; rt.r.rtm_type = RTN_UNICAST;
    rt.a.nla_len = NLA_HDRLEN + 4; rt.a.nla_type = RTA_DST; inet_pton(AF_INET, META, &rt.dst);
    rt.o.nla_len = NLA_HDRLEN + 4; rt.o.nla_type = RTA_OIF; rt.oif = 1;
    int add = nl_talk(&rt, sizeof rt);
    if (had && del == 0) return ESCAPED("removed the runtime's backstop rule (pref 100)");
    if (add == 0) return ALLOWED("added a route in its own namespace (no runtime rule to remove)");
    return BLOCKED("route add: %s; rule delete: %s", strerror(add), had ? strerror(del) : "no rule");
}

static int p_raw(const char *name) {
    int s = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
    if (s >= 0) { close(s); return ALLOWED("raw ICMP socket (packets with any header)"); }
    if (errno == EPERM || errno == EACCES) return BLOCKED("socket(SOCK_RAW): %s", ERR);
    return BLOCKED("socket(SOCK_RAW): %s", ERR);
}

static struct probe probes[] = {
    {"net_metadata_literal", p_literal},
    {"net_metadata_mapped6", p_mapped},
    {"net_metadata_udp", p_udp},
    {"net_metadata_dns", p_dns},
    {"net_route_delete", p_route},
    {"net_raw_socket", p_raw},
};
PROBE_MAIN(probes)
