import CSpawn
import Glibc

/// Runs a program to its end with `medic_run`: no shell, stdin from /dev/null, its own process
/// group (SIGTERM at the timeout, SIGKILL a second later), its output and errors kept up to a
/// bound. Unlike Foundation's `Process`, nothing here waits on a descriptor the program may close
/// or hand to a child of its own: it reaps its own child only. It blocks: call it on a thread
/// of its own.
public enum ProgramRun {
    /// How a program ended.
    public struct Ended: Sendable {
        /// The wait status (valid when `error` is 0).
        public var status: Int32
        public var timedOut: Bool
        /// Its output and errors, the first `outputLimit` bytes of them.
        public var output: String
        /// Bytes written in all, and of them kept in `output`.
        public var total: Int
        public var kept: Int
        /// 0, or the errno of what failed before the program ran (`failedCall`: fork, execve…).
        public var error: Int32
        public var failedCall: String?

        /// The exit code, if it exited (rather than was killed by a signal).
        public var exitCode: Int32? { error == 0 && status & 0x7f == 0 ? (status >> 8) & 0xff : nil }
        /// The signal that killed it, if one did.
        public var signal: Int32? { error == 0 && status & 0x7f != 0 ? status & 0x7f : nil }
        /// It ran and exited 0 within its time.
        public var succeeded: Bool { exitCode == 0 && !timedOut }
    }

    /// Runs `arguments` (the first an absolute path) with exactly `environment`, in `directory`,
    /// as `uid`/`gid` with `groups` when `uid` is not `uid_t.max`.
    public static func run(
        _ arguments: [String], environment: [String], directory: String = "/", uid: uid_t = .max, gid: gid_t = .max, groups: [gid_t] = [],
        timeout: Duration, outputLimit: Int
    ) -> Ended {
        var result = medic_run_result()
        var output = [CChar](repeating: 0, count: outputLimit + 1)
        withCStrings(arguments) { argv in
            withCStrings(environment) { envp in
                medic_run(argv, envp, directory, uid, gid, groups, groups.count, Int(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000), &output, outputLimit, &result)
            }
        }
        return Ended(
            status: result.status, timedOut: result.timed_out != 0,
            output: String(decoding: output[0..<result.kept].map { UInt8(bitPattern: $0) }, as: UTF8.self), total: result.total, kept: result.kept,
            error: result.error, failedCall: result.failed_call.map { String(cString: $0) })
    }
}

/// Calls `body` with a NULL-terminated C array of the strings.
private func withCStrings<R>(_ strings: [String], _ body: ([UnsafeMutablePointer<CChar>?]) -> R) -> R {
    let pointers = strings.map { strdup($0) } + [nil]
    defer { for pointer in pointers { free(pointer) } }
    return body(pointers)
}
