import CSpawn
import Foundation
import Glibc
import Synchronization

/// A program started by the harness (medicd, the CLI, varnishd…), with its output captured to a
/// file and stopped by its PID. `stop()` (also run by `deinit`, and by an interrupted tool:
/// `Interruption`) sends SIGTERM, then SIGKILL after a grace period. Started with posix_spawn
/// and reaped by its own PID only: Foundation's `Process` takes the end of a descriptor it hands
/// the child for the child's exit, and then waits for it without a timeout on the one thread
/// that watches every child, so a program that closes its descriptors (varnishd does) stops
/// every other child from ever being seen to exit.
public final class ChildProcess: Sendable {
    public let pid: pid_t
    /// Where stdout and stderr go.
    public let logPath: String
    /// The wait status, once reaped.
    private let ended = Mutex<Int32?>(nil)

    /// Starts `executable` with `arguments`, adding `environment` to this process's own.
    public init(_ executable: String, _ arguments: [String], environment: [String: String] = [:], logPath: String) throws {
        self.logPath = logPath
        var env = ProcessInfo.processInfo.environment
        env.merge(environment) { $1 }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // Nothing else of this process's: a test's sockets and files are not the child's (and
        // count against a descriptor limit a test sets for it).
        medic_spawn_close_from(&actions, 3)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var child: pid_t = 0
        let code = posix_spawn(&child, executable, &actions, &attributes, argv, envp)
        guard code == 0 else { throw TestHostError.setup("cannot start \(executable): \(String(cString: strerror(code)))") }
        pid = child
        Interruption.register(self) { [weak self] in self?.stop(grace: .seconds(5)) }
    }

    deinit {
        stop()
        Interruption.unregister(self)
    }

    public var isRunning: Bool { status == nil }

    /// The wait status once it has exited (reaped here, by its PID), else nil.
    private var status: Int32? {
        ended.withLock { ended in
            if ended == nil {
                var status: Int32 = 0
                if waitpid(pid, &status, WNOHANG) == pid { ended = status }
            }
            return ended
        }
    }

    /// Its exit code, or the number of the signal that killed it, as Foundation's `Process` says.
    private var terminationStatus: Int32 {
        guard let status else { return -1 }
        return status & 0x7f == 0 ? (status >> 8) & 0xff : status & 0x7f
    }

    /// Everything the program wrote so far.
    public var output: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Waits for the program to exit on its own; returns its exit status, or nil on timeout.
    public func waitForExit(timeout: Duration) -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while isRunning {
            if ContinuousClock.now >= deadline { return nil }
            usleep(5_000)
        }
        return terminationStatus
    }

    /// Sends `signal` to the program.
    public func signal(_ signal: Int32) {
        if isRunning { kill(pid, signal) }
    }

    /// SIGTERM, then SIGKILL if it has not exited within `grace`. Returns the exit status.
    @discardableResult
    public func stop(grace: Duration = .seconds(10)) -> Int32 {
        guard isRunning else { return terminationStatus }
        kill(pid, SIGTERM)
        if let status = waitForExit(timeout: grace) { return status }
        kill(pid, SIGKILL)
        return waitForExit(timeout: .seconds(60)) ?? -1
    }
}
