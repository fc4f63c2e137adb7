/* Hostile arguments to the socket, epoll, event-descriptor and *at calls: wild pointers
 * at every level of their structures.  Each result and errno is printed. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static const char *ename(int e) {
    switch (e) {
    case EFAULT: return "EFAULT"; case EINVAL: return "EINVAL"; case EBADF: return "EBADF";
    case ENOTSOCK: return "ENOTSOCK"; case ENOTCONN: return "ENOTCONN"; case EAGAIN: return "EAGAIN";
    case EMSGSIZE: return "EMSGSIZE"; case ENOENT: return "ENOENT"; case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EDESTADDRREQ: return "EDESTADDRREQ"; case EOPNOTSUPP: return "EOPNOTSUPP"; case E2BIG: return "E2BIG";
    case ENOBUFS: return "ENOBUFS"; case ENOPROTOOPT: return "ENOPROTOOPT"; case EPERM: return "EPERM";
    default: { static char b[16]; snprintf(b, sizeof b, "errno%d", e); return b; }
    }
}

#define T(what, ...) do { errno = 0; long r_ = syscall(__VA_ARGS__); printf("%-36s %ld %s\n", what, r_, r_ < 0 ? ename(errno) : ""); } while (0)

static void *bad[] = { (void *)1, (void *)0x1000, (void *)0xdead00000000, (void *)0x7fffffffffff, (void *)-1 };

int main(void) {
    int sv[2];
    socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
    int tcp = socket(AF_INET, SOCK_STREAM, 0);
    int ep = epoll_create1(0);
    char ok[64] = "data";
    socklen_t len = 16;
    for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        void *b = bad[i];
        printf("-- pointer #%u\n", i);
        T("connect addr", SYS_connect, tcp, b, 16);
        T("bind addr", SYS_bind, tcp, b, 16);
        T("sendto buf", SYS_sendto, sv[0], b, 4, 0, NULL, 0);
        T("sendto addr", SYS_sendto, sv[0], ok, 4, 0, b, 16);
        T("recvfrom buf", SYS_recvfrom, sv[1], b, 4, MSG_DONTWAIT, NULL, NULL);
        T("recvfrom addrlen", SYS_recvfrom, sv[1], ok, 4, MSG_DONTWAIT, ok, b);
        T("sendmsg msghdr", SYS_sendmsg, sv[0], b, 0);
        T("recvmsg msghdr", SYS_recvmsg, sv[1], b, MSG_DONTWAIT);
        struct iovec iov = { ok, 4 };
        struct msghdr m = { .msg_iov = b, .msg_iovlen = 1 };
        T("sendmsg iov array", SYS_sendmsg, sv[0], &m, 0);
        m.msg_iov = &iov; iov.iov_base = b;
        T("sendmsg iov base", SYS_sendmsg, sv[0], &m, 0);
        iov.iov_base = ok; m.msg_control = b; m.msg_controllen = 32;
        T("sendmsg control", SYS_sendmsg, sv[0], &m, 0);
        m.msg_control = NULL; m.msg_controllen = 0; m.msg_name = b; m.msg_namelen = 16;
        T("sendmsg name", SYS_sendmsg, tcp, &m, 0);
        T("getsockopt optval", SYS_getsockopt, tcp, SOL_SOCKET, SO_TYPE, b, &len);
        T("getsockopt optlen", SYS_getsockopt, tcp, SOL_SOCKET, SO_TYPE, ok, b);
        T("setsockopt optval", SYS_setsockopt, tcp, SOL_SOCKET, SO_REUSEADDR, b, 4);
        T("ioctl SIOCGIFINDEX ifreq", SYS_ioctl, tcp, SIOCGIFINDEX, b);
        T("ioctl SIOCGIFCONF ifconf", SYS_ioctl, tcp, SIOCGIFCONF, b);
        struct ifconf ifc = { .ifc_len = 40, .ifc_buf = b };
        T("ioctl SIOCGIFCONF ifc_buf", SYS_ioctl, tcp, SIOCGIFCONF, &ifc);
        T("getsockname", SYS_getsockname, tcp, b, &len);
        T("socketpair sv", SYS_socketpair, AF_UNIX, SOCK_STREAM, 0, b);
        T("accept addrlen", SYS_accept, tcp, ok, b);
        T("epoll_ctl event", SYS_epoll_ctl, ep, EPOLL_CTL_ADD, sv[0], b);
        T("epoll_wait events", SYS_epoll_wait, ep, b, 4, 0);
        T("epoll_pwait sigmask", SYS_epoll_pwait, ep, ok, 1, 0, b, 8);
        T("timerfd_settime", SYS_timerfd_settime, sv[0], 0, b, NULL);
        T("statx buf", SYS_statx, AT_FDCWD, "/", 0, 0x7ff, b);
        T("statx path", SYS_statx, AT_FDCWD, b, 0, 0x7ff, ok);
        T("openat2 how", SYS_openat2, AT_FDCWD, "/", b, 24);
        T("readlinkat buf", SYS_readlinkat, AT_FDCWD, "/proc/self/exe", b, 10);
        T("sendmmsg vec", SYS_sendmmsg, sv[0], b, 2, 0);
        T("recvmmsg vec", SYS_recvmmsg, sv[1], b, 2, MSG_DONTWAIT, NULL);
        T("vmsplice iov", SYS_vmsplice, sv[0], b, 1, 0);
    }
    printf("-- bad values\n");
    T("socket bad family", SYS_socket, 12345, SOCK_STREAM, 0);
    T("recvmsg on a non-socket", SYS_recvmsg, 0, ok, 0);
    T("epoll_ctl on the monitor's side", SYS_epoll_ctl, ep, EPOLL_CTL_ADD, 65000, ok);
    T("epoll_wait maxevents 0", SYS_epoll_wait, ep, ok, 0, 0);
    T("openat2 small size", SYS_openat2, AT_FDCWD, "/", ok, 8);
    return 0;
}
