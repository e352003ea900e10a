#ifndef MEDIC_SPAWN_H
#define MEDIC_SPAWN_H

#include <sys/types.h>
#include <spawn.h>
#include <stddef.h>

/// How a program run by medic_run ended.
struct medic_run_result {
    /// wait status as waitpid gives it (valid when error == 0).
    int status;
    /// 1 when the time limit passed and the process group was killed.
    int timed_out;
    /// Bytes of output kept in the buffer, and bytes seen in all.
    size_t kept;
    size_t total;
    /// 0, or the errno of what failed (fork, pipe, or in the child: chdir, setuid, execve).
    int error;
    /// Which call failed, when error != 0.
    const char *failed_call;
};

/// Runs argv[0] (an absolute path) with exactly argv and envp, in its own process group, in
/// `directory`, as uid/gid with `groups` (when uid is not (uid_t)-1), stdin from /dev/null and
/// stdout+stderr into one pipe. Keeps the first `capacity` bytes of output in `output`. After
/// `timeout_ms` the whole process group gets SIGTERM, then SIGKILL a second later. Blocks until
/// the program has exited. No shell is involved at any point.
void medic_run(char *const argv[], char *const envp[], const char *directory, uid_t uid, gid_t gid,
               const gid_t *groups, size_t ngroups, long timeout_ms, char *output, size_t capacity,
               struct medic_run_result *result);


/// posix_spawn_file_actions_addclosefrom_np (glibc 2.34+), which Swift's Glibc module does not
/// show: the child closes every descriptor from `from` up.
int medic_spawn_close_from(posix_spawn_file_actions_t *actions, int from);

#endif
