#define _GNU_SOURCE
#include "medic_spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Reads once from the pipe into the bounded buffer; 0 at end of file or on an error. */
static int keep(int fd, char *output, size_t capacity, struct medic_run_result *result) {
    char buffer[4096];
    ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0) return errno == EINTR || errno == EAGAIN;
    if (n == 0) return 0;
    size_t room = result->kept < capacity ? capacity - result->kept : 0;
    size_t take = (size_t)n < room ? (size_t)n : room;
    memcpy(output + result->kept, buffer, take);
    result->kept += take;
    result->total += (size_t)n;
    return 1;
}

/* In the child, only async-signal-safe calls: report the failing call through the pipe. */
static void child_fail(int fd, const char *call) {
    int code = errno;
    char message[96];
    size_t n = strlen(call);
    if (n > 64) n = 64;
    memcpy(message, "\x01medic-spawn:", 13);
    memcpy(message + 13, call, n);
    message[13 + n] = ':';
    memcpy(message + 14 + n, &code, sizeof(code));
    (void)!write(fd, message, 14 + n + sizeof(code));
    _exit(127);
}

void medic_run(char *const argv[], char *const envp[], const char *directory, uid_t uid, gid_t gid,
               const gid_t *groups, size_t ngroups, long timeout_ms, char *output, size_t capacity,
               struct medic_run_result *result) {
    memset(result, 0, sizeof(*result));
    int out[2], report[2];
    if (pipe2(out, O_CLOEXEC) < 0) { result->error = errno; result->failed_call = "pipe"; return; }
    if (pipe2(report, O_CLOEXEC) < 0) {
        result->error = errno; result->failed_call = "pipe";
        close(out[0]); close(out[1]);
        return;
    }
    pid_t pid = fork();
    if (pid < 0) {
        result->error = errno; result->failed_call = "fork";
        close(out[0]); close(out[1]); close(report[0]); close(report[1]);
        return;
    }
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        for (int s = 1; s < NSIG; s++) signal(s, SIG_DFL);
        /* medicd raised its own soft descriptor limit; a script gets the usual 1024 (select()). */
        struct rlimit files;
        if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur > 1024) { files.rlim_cur = 1024; setrlimit(RLIMIT_NOFILE, &files); }
        if (setpgid(0, 0) < 0) child_fail(report[1], "setpgid");
        int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (devnull < 0 || dup2(devnull, 0) < 0) child_fail(report[1], "open /dev/null");
        if (dup2(out[1], 1) < 0 || dup2(out[1], 2) < 0) child_fail(report[1], "dup2");
        if (chdir(directory) < 0) child_fail(report[1], "chdir");
        if (uid != (uid_t)-1) {
            if (setgroups(ngroups, groups) < 0) child_fail(report[1], "setgroups");
            if (setgid(gid) < 0) child_fail(report[1], "setgid");
            if (setuid(uid) < 0) child_fail(report[1], "setuid");
        }
        execve(argv[0], argv, envp);
        child_fail(report[1], "execve");
    }
    close(out[1]);
    close(report[1]);
    /* The child's own failure report, if any: EOF (closed on exec) means it ran. */
    char message[96];
    ssize_t reported = read(report[0], message, sizeof(message));
    close(report[0]);
    if (reported > 14 && message[0] == '\x01') {
        int code = 0;
        memcpy(&code, message + reported - sizeof(code), sizeof(code));
        static __thread char call[80];
        size_t n = (size_t)reported - sizeof(code) - 14;
        if (n >= sizeof(call)) n = sizeof(call) - 1;
        memcpy(call, message + 13, n);
        call[n] = 0;
        result->error = code;
        result->failed_call = call;
    }
    long deadline = now_ms() + timeout_ms, kill_at = -1;
    int open_pipe = 1;
    for (;;) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            result->status = status;
            /* Take what is already in the pipe; a grandchild keeping it open is not waited for. */
            while (open_pipe) {
                struct pollfd p = {.fd = out[0], .events = POLLIN};
                if (poll(&p, 1, 20) <= 0 || !keep(out[0], output, capacity, result)) break;
            }
            break;
        }
        long now = now_ms();
        if (!result->timed_out && now >= deadline) {
            result->timed_out = 1;
            kill(-pid, SIGTERM);
            kill(-pid, SIGCONT);
            kill_at = now + 1000;
        }
        if (kill_at >= 0 && now >= kill_at) {
            kill(-pid, SIGKILL);
            kill_at = -1;
            /* Whatever still holds the pipe (a daemonised grandchild) no longer matters. */
            if (open_pipe) { close(out[0]); open_pipe = 0; }
        }
        long wait = result->timed_out ? (kill_at >= 0 ? kill_at - now : 50) : deadline - now;
        if (wait < 1) wait = 1;
        if (wait > 50) wait = 50;
        if (open_pipe) {
            struct pollfd p = {.fd = out[0], .events = POLLIN};
            int ready = poll(&p, 1, (int)wait);
            if (ready > 0 && !keep(out[0], output, capacity, result)) {
                close(out[0]);
                open_pipe = 0;
            }
        } else {
            struct timespec pause = {.tv_sec = 0, .tv_nsec = wait * 1000000L};
            nanosleep(&pause, NULL);
        }
    }
    if (open_pipe) close(out[0]);
}

int medic_spawn_close_from(posix_spawn_file_actions_t *actions, int from) {
    return posix_spawn_file_actions_addclosefrom_np(actions, from);
}
