/* Sockets, epoll and event descriptors, through the loopback and socketpairs: every
 * result printed, so the km run must match the native run. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <signal.h>
#include <sys/un.h>
#include <unistd.h>

#define R(what, expr) do { errno = 0; long r_ = (long)(expr); printf("%-34s %ld%s%s\n", what, r_ < 0 ? -1L : r_, r_ < 0 ? " " : "", r_ < 0 ? strerror(errno) : ""); } while (0)
#define OK(what, cond) printf("%-34s %s\n", what, (cond) ? "ok" : "FAILED")

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    setvbuf(stdout, NULL, _IONBF, 0);
    char buf[256];
    /* TCP on loopback */
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    R("setsockopt SO_REUSEADDR", setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one));
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK), .sin_port = 0 };
    R("bind", bind(s, (struct sockaddr *)&a, sizeof a));
    socklen_t al = sizeof a;
    R("getsockname", getsockname(s, (struct sockaddr *)&a, &al));
    OK("got a port", a.sin_port != 0 && al == sizeof a);
    R("listen", listen(s, 8));
    int c = socket(AF_INET, SOCK_STREAM, 0);
    R("connect", connect(c, (struct sockaddr *)&a, sizeof a));
    struct sockaddr_in peer; socklen_t pl = sizeof peer;
    int srv = accept4(s, (struct sockaddr *)&peer, &pl, SOCK_CLOEXEC);
    OK("accept4", srv >= 0 && pl == sizeof peer && peer.sin_family == AF_INET);
    R("send", send(c, "ping over tcp", 13, 0));
    memset(buf, 0, sizeof buf);
    R("recv", recv(srv, buf, sizeof buf, 0));
    printf("got: %s\n", buf);
    int v = 0; socklen_t vl = sizeof v;
    R("getsockopt TCP_NODELAY", getsockopt(c, IPPROTO_TCP, TCP_NODELAY, &v, &vl));
    printf("nodelay=%d len=%u\n", v, vl);
    R("shutdown", shutdown(c, SHUT_WR));
    R("recv after shutdown", recv(srv, buf, sizeof buf, 0));
    close(c); close(srv); close(s);
    /* UDP with sendto/recvfrom and sendmmsg/recvmmsg */
    int u1 = socket(AF_INET, SOCK_DGRAM, 0), u2 = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in ua = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    bind(u2, (struct sockaddr *)&ua, sizeof ua);
    al = sizeof ua; getsockname(u2, (struct sockaddr *)&ua, &al);
    R("sendto", sendto(u1, "datagram", 8, 0, (struct sockaddr *)&ua, sizeof ua));
    struct sockaddr_in from; socklen_t fl = sizeof from;
    memset(buf, 0, sizeof buf);
    R("recvfrom", recvfrom(u2, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl));
    printf("from loopback: %d %s\n", from.sin_addr.s_addr == htonl(INADDR_LOOPBACK), buf);
    struct mmsghdr mm[3]; struct iovec mv[3]; char *words[3] = { "one", "two", "three" };
    for (int i = 0; i < 3; i++) {
        mv[i].iov_base = words[i]; mv[i].iov_len = strlen(words[i]);
        memset(&mm[i], 0, sizeof mm[i]);
        mm[i].msg_hdr.msg_iov = &mv[i]; mm[i].msg_hdr.msg_iovlen = 1;
        mm[i].msg_hdr.msg_name = &ua; mm[i].msg_hdr.msg_namelen = sizeof ua;
    }
    R("sendmmsg", sendmmsg(u1, mm, 3, 0));
    printf("msg_len: %u %u %u\n", mm[0].msg_len, mm[1].msg_len, mm[2].msg_len);
    char rb[3][16]; struct iovec rv[3]; struct mmsghdr rm[3];
    for (int i = 0; i < 3; i++) {
        memset(rb[i], 0, 16); rv[i].iov_base = rb[i]; rv[i].iov_len = 15;
        memset(&rm[i], 0, sizeof rm[i]); rm[i].msg_hdr.msg_iov = &rv[i]; rm[i].msg_hdr.msg_iovlen = 1;
    }
    R("recvmmsg", recvmmsg(u2, rm, 3, MSG_DONTWAIT, NULL));
    printf("received: %s %s %s (%u %u %u)\n", rb[0], rb[1], rb[2], rm[0].msg_len, rm[1].msg_len, rm[2].msg_len);
    close(u1); close(u2);
    /* Unix socketpair: sendmsg with SCM_RIGHTS and SCM_CREDENTIALS */
    int sv[2];
    R("socketpair", socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    char path[512]; snprintf(path, sizeof path, "%s/kt-passed.txt", dir);
    int f = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
    write(f, "passed along", 12);
    struct iovec iov = { "x", 1 };
    union { char b[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } cu;
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cu.b, .msg_controllen = sizeof cu.b };
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET; cm->cmsg_type = SCM_RIGHTS; cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &f, sizeof f);
    R("sendmsg SCM_RIGHTS", sendmsg(sv[0], &mh, 0));
    close(f);
    char one_byte; struct iovec riov = { &one_byte, 1 };
    union { char b[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } ru;
    struct msghdr rh = { .msg_iov = &riov, .msg_iovlen = 1, .msg_control = ru.b, .msg_controllen = sizeof ru.b };
    R("recvmsg SCM_RIGHTS", recvmsg(sv[1], &rh, 0));
    struct cmsghdr *rc = CMSG_FIRSTHDR(&rh);
    int got = -1;
    if (rc && rc->cmsg_type == SCM_RIGHTS) memcpy(&got, CMSG_DATA(rc), sizeof got);
    memset(buf, 0, sizeof buf);
    OK("received descriptor reads the file", got >= 0 && pread(got, buf, 12, 0) == 12 && !strcmp(buf, "passed along"));
    printf("controllen %zu flags %d\n", (size_t)rh.msg_controllen, rh.msg_flags);
    close(got); unlink(path);
    /* a descriptor that is not open cannot be sent */
    int bogus = 12345;
    memcpy(CMSG_DATA(cm), &bogus, sizeof bogus);
    R("sendmsg SCM_RIGHTS bad fd", sendmsg(sv[0], &mh, 0));
    /* unix socket bound to a path */
    int us = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un un = { .sun_family = AF_UNIX };
    snprintf(un.sun_path, sizeof un.sun_path, "%s/kt.sock", dir);
    R("bind unix", bind(us, (struct sockaddr *)&un, sizeof un));
    struct stat st;
    OK("socket file exists", stat(un.sun_path, &st) == 0 && S_ISSOCK(st.st_mode));
    unlink(un.sun_path); close(us);
    /* epoll with a pipe, an eventfd and a timerfd */
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int p[2]; pipe(p);
    int ev = eventfd(0, EFD_NONBLOCK);
    int tf = timerfd_create(CLOCK_MONOTONIC, 0);
    struct epoll_event e = { .events = EPOLLIN, .data.u64 = 1 };
    R("epoll_ctl pipe", epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &e));
    e.data.u64 = 2; R("epoll_ctl eventfd", epoll_ctl(ep, EPOLL_CTL_ADD, ev, &e));
    e.data.u64 = 3; R("epoll_ctl timerfd", epoll_ctl(ep, EPOLL_CTL_ADD, tf, &e));
    R("epoll_ctl bad fd", epoll_ctl(ep, EPOLL_CTL_ADD, 777, &e));
    struct epoll_event out[8];
    R("epoll_wait nothing", epoll_wait(ep, out, 8, 0));
    write(p[1], "x", 1);
    uint64_t one64 = 5; write(ev, &one64, 8);
    struct itimerspec its = { .it_value = { 0, 5 * 1000 * 1000 } };
    R("timerfd_settime", timerfd_settime(tf, 0, &its, NULL));
    int n = 0, seen = 0;
    for (int tries = 0; tries < 50 && seen != 7; tries++) {
        n = epoll_wait(ep, out, 8, 100);
        for (int i = 0; i < n; i++) {
            seen |= 1 << (out[i].data.u64 - 1);
            if (out[i].data.u64 == 3) { uint64_t exp; read(tf, &exp, 8); }
            if (out[i].data.u64 == 1) { char c; read(p[0], &c, 1); }
            if (out[i].data.u64 == 2) epoll_ctl(ep, EPOLL_CTL_DEL, ev, NULL);  /* level-triggered: stop watching */
        }
    }
    printf("events seen: %d\n", seen);
    uint64_t val = 0; R("eventfd read", read(ev, &val, 8)); printf("eventfd value %lu\n", (unsigned long)val);
    sigset_t mask; sigemptyset(&mask);
    R("epoll_pwait timeout", epoll_pwait(ep, out, 8, 10, &mask));
    R("epoll_wait bad maxevents", epoll_wait(ep, out, 0, 0));
    /* network interfaces: look, never touch */
    int any = socket(AF_INET, SOCK_DGRAM, 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, "lo");
    R("SIOCGIFINDEX lo", ioctl(any, SIOCGIFINDEX, &ifr));
    int lo_index = ifr.ifr_ifindex;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_ifindex = lo_index;
    R("SIOCGIFNAME", ioctl(any, SIOCGIFNAME, &ifr));
    printf("interface %d is %s\n", lo_index, ifr.ifr_name);
    R("SIOCGIFFLAGS lo", ioctl(any, SIOCGIFFLAGS, &ifr));
    OK("lo is a loopback", ifr.ifr_flags & IFF_LOOPBACK);
    struct ifconf ifc = { .ifc_len = 0, .ifc_buf = NULL };
    R("SIOCGIFCONF length", ioctl(any, SIOCGIFCONF, &ifc));
    struct ifreq reqs[32];
    int need = ifc.ifc_len;
    ifc.ifc_len = sizeof reqs; ifc.ifc_req = reqs;
    R("SIOCGIFCONF", ioctl(any, SIOCGIFCONF, &ifc));
    OK("SIOCGIFCONF length matches", ifc.ifc_len == need);
    int found_lo = 0;
    for (int i = 0; i < ifc.ifc_len / (int)sizeof reqs[0]; i++) found_lo |= !strcmp(reqs[i].ifr_name, "lo");
    OK("SIOCGIFCONF lists lo", found_lo);
    /* a device's private request (ip tunnel add's): ENODEV for a device that is not
       there, before its structure is read (km: ENOTTY, whatever the name) */
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, "kt-nosuchdev");
    R("SIOCDEVPRIVATE, no such device", ioctl(any, SIOCDEVPRIVATE, &ifr));
    R("SIOCDEVPRIVATE+3, no such device", ioctl(any, SIOCDEVPRIVATE + 3, &ifr));
    int null = open("/dev/null", O_RDONLY);
    R("SIOCDEVPRIVATE, not a socket", ioctl(null, SIOCDEVPRIVATE, &ifr));
    close(null);
    close(any);
    /* inotify */
    int in = inotify_init1(IN_NONBLOCK);
    int wd = inotify_add_watch(in, dir, IN_CREATE);
    OK("inotify_add_watch", wd >= 0);
    snprintf(path, sizeof path, "%s/kt-created", dir);
    close(open(path, O_CREAT | O_WRONLY, 0600));
    char ib[4096];
    long il = read(in, ib, sizeof ib);
    struct inotify_event *ie = (struct inotify_event *)ib;
    printf("inotify: %s %s\n", il > 0 ? "event" : "none", il > 0 ? ie->name : "");
    unlink(path);
    return 0;
}
