/*
 * medic-backend: a tiny HTTP backend that starts in about a millisecond, for Medic's demo, tests
 * and benchmarks. Plain C built with the system's C compiler (TestHost's `Backend`), so that no
 * language runtime installs crash handlers of its own: a SIGSEGV here dumps core as in the field. It answers every request with 200 and a line naming itself; /health answers
 * "ok". Usage: medic-backend [--port N] [--address IPV4] [--name TEXT] [--exit-after-ms N --exit-code N]
 * (--address: where it listens, 127.0.0.1 unless given, e.g. a test host's own address).
 * With --exit-after-ms it exits with --exit-code after that long, to play a backend that keeps
 * failing. With --status-file PATH, while PATH holds a number (e.g. 503) every answer has that
 * status, to play a backend that is running but failing its health checks; while it holds
 * "stall", every answer is a 200 head and half its body, and the connection stays open and
 * quiet (a backend hung mid-answer: its threads stuck after the first write). With
 * --leak-mb-per-s N it allocates (and touches) N MiB more every second, to play a memory leak;
 * --leak-jitter-ms N starts the leak after a random 0..N ms, so that the moment the limit is
 * crossed does not keep step with a watcher's sampling cycle. With NOTIFY_SOCKET set it sends READY=1 once it listens (for Type=notify units), and with
 * --heartbeat-ms N also WATCHDOG=1 every N ms (to systemd's watchdog, or to medicd's heartbeat
 * socket), so that a hung (SIGSTOPped) backend falls silent.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static void notify(const char *msg);
static void notify_ready(void) { notify("READY=1"); }

static void notify(const char *msg) {
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !*path) return;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    size_t len = strlen(path);
    if (len >= sizeof(addr.sun_path)) return;
    memcpy(addr.sun_path, path, len);
    if (addr.sun_path[0] == '@') addr.sun_path[0] = 0;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return;
    sendto(fd, msg, strlen(msg), 0, (struct sockaddr *)&addr,
           (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len));
    close(fd);
}

static long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

int main(int argc, char **argv) {
    int port = 8080, exit_code = 1;
    long exit_after_ms = -1;
    const char *name = "medic-backend", *address = "127.0.0.1";
    const char *status_file = NULL;
    long leak_mb_per_s = 0, leak_jitter_ms = 0, heartbeat_ms = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--port")) port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--name")) name = argv[i + 1];
        else if (!strcmp(argv[i], "--address")) address = argv[i + 1];
        else if (!strcmp(argv[i], "--exit-after-ms")) exit_after_ms = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--exit-code")) exit_code = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--status-file")) status_file = argv[i + 1];
        else if (!strcmp(argv[i], "--leak-mb-per-s")) leak_mb_per_s = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--leak-jitter-ms")) leak_jitter_ms = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--heartbeat-ms")) heartbeat_ms = atol(argv[i + 1]);
        else { fprintf(stderr, "medic-backend: unknown option %s\n", argv[i]); return 2; }
    }
    /* Whoever started us may have blocked or ignored signals: a backend must die of SIGTERM. */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    int server = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(server, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    if (inet_pton(AF_INET, address, &addr.sin_addr) != 1) {
        fprintf(stderr, "medic-backend: --address %s is not an IPv4 address\n", address);
        return 2;
    }
    if (bind(server, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(server, 128) < 0) {
        fprintf(stderr, "medic-backend: cannot listen on %s:%d: %s\n", address, port, strerror(errno));
        return 1;
    }
    printf("%s listening on %s:%d\n", name, address, port);
    notify_ready();
    long deadline = exit_after_ms >= 0 ? now_ms() + exit_after_ms : -1;
    long next_leak = now_ms(), next_beat = now_ms();
    if (leak_jitter_ms > 0) {
        srandom((unsigned)(getpid() ^ now_ms()));
        next_leak += random() % leak_jitter_ms;
    }
    for (;;) {
        int timeout = -1;
        if (heartbeat_ms > 0) {
            if (now_ms() >= next_beat) {
                notify("WATCHDOG=1");
                next_beat += heartbeat_ms;
            }
            long left = next_beat - now_ms();
            timeout = left > 0 ? (int)left : 0;
        }
        if (leak_mb_per_s > 0) {
            /* A tenth of the rate every 100 ms, touched so that it is resident. */
            if (now_ms() >= next_leak) {
                size_t size = (size_t)leak_mb_per_s * 1024 * 1024 / 10;
                char *block = malloc(size);
                if (block) memset(block, 1, size);
                next_leak += 100;
            }
            long left = next_leak - now_ms();
            if (timeout < 0 || left < timeout) timeout = left > 0 ? (int)left : 0;
        }
        if (deadline >= 0) {
            long left = deadline - now_ms();
            if (left <= 0) {
                printf("%s exiting with status %d as asked\n", name, exit_code);
                return exit_code;
            }
            if (timeout < 0 || left < timeout) timeout = (int)left;
        }
        struct pollfd p = {.fd = server, .events = POLLIN};
        if (poll(&p, 1, timeout) <= 0) continue;
        int client = accept4(server, NULL, NULL, SOCK_CLOEXEC);
        if (client < 0) continue;
        char request[2048];
        ssize_t n = recv(client, request, sizeof(request) - 1, 0);
        if (n > 0) {
            request[n] = 0;
            int health = strncmp(request, "GET /health", 11) == 0;
            int status = 200, stall = 0;
            if (status_file) {
                FILE *f = fopen(status_file, "r");
                if (f) {
                    char word[16] = "";
                    if (fscanf(f, "%15s", word) == 1) {
                        stall = strcmp(word, "stall") == 0;
                        status = atoi(word);
                    }
                    if (status < 100 || status > 599) status = 200;
                    fclose(f);
                }
            }
            if (stall) {
                static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 64\r\n\r\nhello, ";
                send(client, head, sizeof(head) - 1, 0);
                // Held open and quiet; the oldest is let go once 64 are held.
                static int stalled[64];
                static unsigned held = 0;
                if (held >= 64) close(stalled[held % 64]);
                stalled[held++ % 64] = client;
                continue;
            }
            char body[256], response[512];
            int blen = status != 200 ? snprintf(body, sizeof(body), "failing with %d\n", status)
                                     : snprintf(body, sizeof(body), health ? "ok\n" : "hello from %s (pid %d)\n", name, (int)getpid());
            int rlen = snprintf(response, sizeof(response),
                                "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                                "Connection: close\r\n\r\n%s", status, status == 200 ? "OK" : status == 503 ? "Service Unavailable" : "Error",
                                blen, body);
            send(client, response, (size_t)rlen, 0);
        }
        close(client);
    }
}
