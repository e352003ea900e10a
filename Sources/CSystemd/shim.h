#ifndef MEDIC_CSYSTEMD_SHIM_H
#define MEDIC_CSYSTEMD_SHIM_H
#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>
#include <systemd/sd-id128.h>
#include <errno.h>
#include <sys/eventfd.h>
#include <sys/uio.h>

/* glibc >= 2.32 declares this only under _GNU_SOURCE. */
extern const char *strerrorname_np(int errnum);

/* The symbolic name of an errno ("ECONNRESET"), or NULL if unknown. */
static inline const char *medic_errno_name(int errnum) { return strerrorname_np(errnum); }

#include <sys/socket.h>
#include <string.h>

/* Receives one datagram and the sender's PID (SCM_CREDENTIALS; the socket needs SO_PASSCRED).
 * Returns the datagram's length, or -1 with errno set; *pid is 0 if no credentials came. */
/// The PID, uid and gid of the process at the other end of a connected Unix socket, as the
/// kernel vouches for them (SO_PEERCRED). Returns 0, or -errno.
static inline int medic_peer_credentials(int fd, int *pid, unsigned *uid, unsigned *gid) {
    struct { int pid; unsigned uid; unsigned gid; } credentials;
    socklen_t length = sizeof(credentials);
    if (getsockopt(fd, SOL_SOCKET, 17 /* SO_PEERCRED */, &credentials, &length) < 0) return -errno;
    *pid = credentials.pid;
    *uid = credentials.uid;
    *gid = credentials.gid;
    return 0;
}

static inline long medic_recv_with_pid(int fd, void *buffer, unsigned long length, int *pid) {
    struct { int pid; unsigned uid; unsigned gid; } credentials;
    union { struct cmsghdr align; char data[CMSG_SPACE(sizeof(credentials))]; } control;
    struct iovec iov = { .iov_base = buffer, .iov_len = length };
    struct msghdr message = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.data, .msg_controllen = sizeof(control.data) };
    long received = recvmsg(fd, &message, MSG_CMSG_CLOEXEC);
    *pid = 0;
    if (received < 0) return received;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&message); c; c = CMSG_NXTHDR(&message, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == 0x02 /* SCM_CREDENTIALS */ &&
            c->cmsg_len == CMSG_LEN(sizeof(credentials))) {
            memcpy(&credentials, CMSG_DATA(c), sizeof(credentials));
            *pid = credentials.pid;
        }
    }
    return received;
}
#endif
