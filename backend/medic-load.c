/*
 * medic-load: an open-loop HTTP load generator for Medic's pool tests and benchmarks. Sends
 * GET / to 127.0.0.1:PORT at a steady rate whatever the answers (so a stalled backend cannot slow
 * the stream down), each request on its own connection, and prints one JSON line at the end:
 * sent, ok (2xx), failed (any other status, a connection error or a timeout), stalled (took
 * longer than --stall-ms, whatever the answer), affected (failed or stalled: a request the user
 * noticed), and the count of each status.
 * Usage: medic-load --port N --rate PER_S --duration-ms N [--timeout-ms N] [--stall-ms N]
 * SIGTERM or SIGINT ends the sending early; requests in flight are still waited for.
 *
 * medic-load --datagrams PATH --duration-ms N [--every-ms N]: "WATCHDOG=1" datagrams to the
 * unix socket PATH instead, for the heartbeat socket: one every N ms (a steady heartbeat), or
 * without --every-ms as fast as the socket takes them (a flood); then {"sent":N}.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 8192

struct conn {
    int fd;
    long start_us;
    int sent;
    char head[16];
    int head_len;
};

static volatile sig_atomic_t stop_sending = 0;
static void on_signal(int sig) { (void)sig; stop_sending = 1; }

static long now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000L + ts.tv_nsec / 1000L;
}

static long sent = 0, ok = 0, failed = 0, stalled = 0, affected = 0, errors = 0, timeouts = 0;
static long statuses[600];
static long stall_us, timeout_us;

static void finish(struct conn *c, int status) {
    long took = now_us() - c->start_us;
    int good = status >= 200 && status < 300;
    if (took > stall_us) stalled++;
    if (good) ok++;
    else failed++;
    if (!good || took > stall_us) affected++;
    if (status > 0 && status < 600) statuses[status]++;
    close(c->fd);
    c->fd = -1;
}

/* Sends datagrams to a unix socket every `every_ms`, or as fast as it takes them (a send waits
 * while its queue is full). */
static int datagrams_to(const char *path, long duration_ms, long every_ms) {
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un address = { .sun_family = AF_UNIX };
    if (fd < 0 || strlen(path) >= sizeof address.sun_path) { perror("medic-load: socket"); return 1; }
    strcpy(address.sun_path, path);
    const char beat[] = "WATCHDOG=1";
    long sent = 0, end = now_us() + duration_ms * 1000;
    while (!stop_sending && now_us() < end) {
        if (sendto(fd, beat, sizeof beat - 1, 0, (struct sockaddr *)&address, sizeof address) > 0) sent++;
        else if (errno != EINTR && errno != EAGAIN) usleep(1000);
        if (every_ms > 0) usleep(every_ms * 1000);
    }
    printf("{\"sent\":%ld}\n", sent);
    return 0;
}

int main(int argc, char **argv) {
    int port = 0;
    long rate = 500, duration_ms = 5000, timeout_ms = 10000, stall_ms = 1000;
    const char *datagrams = NULL;
    long every_ms = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--datagrams")) datagrams = argv[i + 1];
        else if (!strcmp(argv[i], "--every-ms")) every_ms = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--port")) port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--rate")) rate = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--duration-ms")) duration_ms = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--timeout-ms")) timeout_ms = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--stall-ms")) stall_ms = atol(argv[i + 1]);
        else { fprintf(stderr, "medic-load: unknown option %s\n", argv[i]); return 2; }
    }
    signal(SIGTERM, on_signal);
    if (datagrams) return datagrams_to(datagrams, duration_ms, every_ms);
    if (port <= 0 || rate <= 0) { fprintf(stderr, "medic-load: --port and --rate are required\n"); return 2; }
    stall_us = stall_ms * 1000;
    timeout_us = timeout_ms * 1000;
    struct rlimit files;
    if (getrlimit(RLIMIT_NOFILE, &files) == 0) { files.rlim_cur = files.rlim_max; setrlimit(RLIMIT_NOFILE, &files); }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    /* A parent may start it with every signal blocked (threads that block them pass the mask on). */
    sigset_t ending;
    sigemptyset(&ending);
    sigaddset(&ending, SIGTERM);
    sigaddset(&ending, SIGINT);
    sigprocmask(SIG_UNBLOCK, &ending, NULL);
    static struct conn conns[MAX_CONNS];
    static struct pollfd fds[MAX_CONNS];
    static int index_of[MAX_CONNS];
    for (int i = 0; i < MAX_CONNS; i++) conns[i].fd = -1;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const char request[] = "GET / HTTP/1.0\r\nHost: medic-load\r\n\r\n";
    long begin = now_us(), end = begin + duration_ms * 1000, interval = 1000000L / rate, next = begin;
    for (;;) {
        long now = now_us();
        int active = 0;
        while (!stop_sending && now >= next && next < end) {
            next += interval;
            int slot = -1;
            for (int i = 0; i < MAX_CONNS; i++) if (conns[i].fd < 0) { slot = i; break; }
            sent++;
            if (slot < 0) { failed++; errors++; continue; }
            int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (fd < 0) { failed++; errors++; continue; }
            conns[slot] = (struct conn){.fd = fd, .start_us = now};
            if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 && errno != EINPROGRESS) {
                errors++;
                finish(&conns[slot], 0);
            }
        }
        int n = 0;
        for (int i = 0; i < MAX_CONNS; i++) {
            if (conns[i].fd < 0) continue;
            if (now - conns[i].start_us > timeout_us) { timeouts++; finish(&conns[i], 0); continue; }
            fds[n] = (struct pollfd){.fd = conns[i].fd, .events = conns[i].sent ? POLLIN : POLLOUT};
            index_of[n++] = i;
            active++;
        }
        if ((stop_sending || next >= end) && active == 0) break;
        long wait_us = (!stop_sending && next < end) ? next - now_us() : 5000;
        if (wait_us > 5000) wait_us = 5000;
        if (wait_us < 0) wait_us = 0;
        poll(fds, (nfds_t)n, (int)((wait_us + 999) / 1000));
        for (int k = 0; k < n; k++) {
            struct conn *c = &conns[index_of[k]];
            if (!fds[k].revents) continue;
            if (!c->sent) {
                int err = 0;
                socklen_t len = sizeof(err);
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
                if (err || send(c->fd, request, sizeof(request) - 1, MSG_NOSIGNAL) < 0) { errors++; finish(c, 0); continue; }
                c->sent = 1;
                continue;
            }
            char buffer[4096];
            ssize_t got = read(c->fd, buffer, sizeof(buffer));
            if (got > 0) {
                int take = got < (ssize_t)(sizeof(c->head) - 1 - c->head_len) ? (int)got : (int)(sizeof(c->head) - 1 - c->head_len);
                memcpy(c->head + c->head_len, buffer, (size_t)take);
                c->head_len += take;
                continue;
            }
            if (got < 0 && errno == EAGAIN) continue;
            c->head[c->head_len] = 0;
            int status = 0;
            if (got == 0 && sscanf(c->head, "HTTP/1.%*d %d", &status) != 1) status = 0;
            if (status == 0) errors++;
            finish(c, status);
        }
    }
    printf("{\"sent\": %ld, \"ok\": %ld, \"failed\": %ld, \"stalled\": %ld, \"affected\": %ld, \"errors\": %ld, \"timeouts\": %ld, \"status\": {", sent, ok,
           failed, stalled, affected, errors, timeouts);
    int first = 1;
    for (int s = 100; s < 600; s++) {
        if (!statuses[s]) continue;
        printf("%s\"%d\": %ld", first ? "" : ", ", s, statuses[s]);
        first = 0;
    }
    printf("}}\n");
    return 0;
}
