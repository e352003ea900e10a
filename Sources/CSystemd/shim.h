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

/* Receives up to `count` (at most 64) datagrams in one system call (recvmmsg, waiting only for
 * the first), datagram i into buffers[i * length], its length in lengths[i] and its sender's PID
 * in pids[i] (SCM_CREDENTIALS; the socket needs SO_PASSCRED; 0 if none came). Returns how many
 * came, or -1 with errno set. (struct mmsghdr and recvmmsg are declared only under _GNU_SOURCE,
 * so the system call is made directly, with a struct of the same layout.) */
#include <sys/syscall.h>
#include <unistd.h>
struct medic_mmsghdr { struct msghdr msg_hdr; unsigned int msg_len; };
static inline int medic_recv_batch_with_pids(int fd, char *buffers, unsigned long length, int count, long *lengths, int *pids) {
    struct credentials { int pid; unsigned uid; unsigned gid; };
    struct medic_mmsghdr messages[64];
    struct iovec iovs[64];
    union { struct cmsghdr align; char data[CMSG_SPACE(sizeof(struct credentials))]; } controls[64];
    if (count > 64) count = 64;
    memset(messages, 0, sizeof(messages[0]) * count);
    for (int i = 0; i < count; i++) {
        iovs[i].iov_base = buffers + i * length;
        iovs[i].iov_len = length;
        messages[i].msg_hdr.msg_iov = &iovs[i];
        messages[i].msg_hdr.msg_iovlen = 1;
        messages[i].msg_hdr.msg_control = controls[i].data;
        messages[i].msg_hdr.msg_controllen = sizeof(controls[i].data);
    }
    int received = (int)syscall(SYS_recvmmsg, fd, messages, count, MSG_CMSG_CLOEXEC | 0x10000 /* MSG_WAITFORONE */, NULL);
    for (int i = 0; i < received; i++) {
        lengths[i] = messages[i].msg_len;
        pids[i] = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&messages[i].msg_hdr); c; c = CMSG_NXTHDR(&messages[i].msg_hdr, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == 0x02 /* SCM_CREDENTIALS */ &&
                c->cmsg_len == CMSG_LEN(sizeof(struct credentials))) {
                struct credentials credentials;
                memcpy(&credentials, CMSG_DATA(c), sizeof(credentials));
                pids[i] = credentials.pid;
            }
        }
    }
    return received;
}
#endif
