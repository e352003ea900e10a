import Foundation
import Synchronization
import Glibc
import MedicCore
import Posix
import Systemd

/// nginx as a pool. Open-source nginx has no runtime API for its upstreams, so Medic keeps the
/// file of an upstream's `server` lines (`NginxUpstreamFile`) that the operator's upstream block
/// includes. A change is written beside the file and renamed over it, checked with
/// `nginx -t -c CONFIG` (refused: the previous file is put back and the step fails with nginx's
/// words), then the master (its PID from its PID file) is sent SIGHUP, and the step waits until
/// new workers are up, since `nginx -s reload` returns before that. nginx has no drain: `drain`
/// marks the server down too (workers of the old configuration finish what they hold). One
/// change at a time per file, in this process.
public struct NginxPool: LoadBalancerPool {
    /// The nginx program that checks the configuration.
    public var program: String
    /// How long `nginx -t` and the master's new workers may take.
    public var timeout: Duration

    public init(program: String = "/usr/sbin/nginx", timeout: Duration = .seconds(10)) {
        self.program = program
        self.timeout = timeout
    }

    public func servers(of member: PoolMembership) async throws(PoolError) -> [PoolServer] {
        let (file, _, _) = try Self.paths(member)
        return try Self.read(file).servers.map { server in
            let status = !server.down ? "no check" : server.markedByMedic ? "MAINT (down, marked by Medic)" : "MAINT (down in the file)"
            return PoolServer(name: server.address, admin: server.down ? .maint : .ready, status: status, sessions: 0)
        }
    }

    public func set(_ member: PoolMembership, to state: PoolState) async throws(PoolError) {
        let (file, config, pidFile) = try Self.paths(member)
        let (program, timeout, server) = (self.program, self.timeout, member.server)
        let result: Result<Void, PoolError> = await onThreadOfItsOwn("medic-nginx") {
            Self.locks.withLock(file) {
                Result { () throws(PoolError) in
                    try Self.change(file, server: server, down: state != .ready, config: config, pidFile: pidFile, program: program, timeout: timeout)
                }
            }
        }
        try result.get()
    }

    private static let locks = FileLocks()

    private static func paths(_ member: PoolMembership) throws(PoolError) -> (String, String, String) {
        guard case .nginx(let file, let config, let pidFile) = member.balancer else { throw PoolError("\(PoolMembership.describe(member)) is not nginx's") }
        return (file, config, pidFile)
    }

    private static func read(_ file: String) throws(PoolError) -> NginxUpstreamFile {
        do {
            return NginxUpstreamFile(try String(contentsOfFile: file, encoding: .utf8))
        } catch {
            throw PoolError("cannot read nginx's upstream file \(file): \(error.localizedDescription)")
        }
    }

    /// Marks or unmarks the server, checks, reloads and waits for the new workers; blocks.
    private static func change(_ file: String, server: String, down: Bool, config: String, pidFile: String, program: String, timeout: Duration) throws(PoolError) {
        let before = try read(file)
        guard let line = before.servers.first(where: { $0.address == server }) else {
            throw PoolError("nginx's upstream file \(file) has no 'server \(server)' line (it has \(before.servers.map(\.address).joined(separator: ", ")))")
        }
        if !down, line.down, !line.markedByMedic {
            throw PoolError("'server \(server)' in \(file) is down by a person's hand (no '\(NginxUpstreamFile.marker)'), so Medic leaves it down")
        }
        var after = before
        after.set(server, down: down)
        guard after != before else { return }
        try write(after.text, to: file)
        let check = ProgramRun.run([program, "-t", "-q", "-c", config], environment: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], timeout: timeout, outputLimit: 4096)
        if !check.succeeded {
            try write(before.text, to: file)
            guard check.error == 0 else {
                throw PoolError("cannot run \(program) -t to check the changed upstream file, which is back as it was: \(check.failedCall ?? "?"): \(PosixError.reason(check.error))")
            }
            let said = check.output.trimmingCharacters(in: .whitespacesAndNewlines)
            throw PoolError("nginx -t refused the configuration \(config) with the changed upstream file, which is back as it was: \(said)")
        }
        do {
            try reload(pidFile: pidFile, timeout: timeout)
        } catch {
            try write(before.text, to: file)
            throw PoolError("\(error.description); the upstream file \(file) is back as it was")
        }
    }

    /// Sends the master SIGHUP and waits until its workers are new ones.
    private static func reload(pidFile: String, timeout: Duration) throws(PoolError) {
        guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8), let master = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)), master > 1 else {
            throw PoolError("cannot read nginx's master PID from \(pidFile)")
        }
        let old = workers(of: master)
        guard kill(master, SIGHUP) == 0 else { throw PoolError("cannot signal nginx's master \(master) (from \(pidFile)): \(PosixError.reason())") }
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            // Done when new workers serve and none of the old ones still takes connections
            // (one that is shutting down has closed its listening sockets).
            let serving = workers(of: master)
            if !serving.subtracting(old).isEmpty, serving.isDisjoint(with: old) { return }
            guard kill(master, 0) == 0 else { throw PoolError("nginx's master \(master) is gone after the reload") }
            usleep(10_000)
        }
        throw PoolError("nginx's master \(master) started no new worker within \(DurationText.format(timeout)) of its reload (SIGHUP): see nginx's error log")
    }

    /// The master's children that are serving workers (not ones of an old configuration that
    /// are shutting down).
    private static func workers(of master: pid_t) -> Set<pid_t> {
        var found: Set<pid_t> = []
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = pid_t(entry), let stat = WholeFile.text("/proc/\(pid)/stat"),
                  let close = stat.lastIndex(of: ")")
            else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 2, pid_t(fields[1]) == master,
                  let command = WholeFile.text("/proc/\(pid)/cmdline"),
                  command.hasPrefix("nginx: worker process"), !command.contains("shutting down")
            else { continue }
            found.insert(pid)
        }
        return found
    }

    /// Writes `text` beside `file` and renames it over the file, keeping the file's mode.
    private static func write(_ text: String, to file: String) throws(PoolError) {
        var status = stat()
        let mode = stat(file, &status) == 0 ? status.st_mode & 0o7777 : 0o644
        let temporary = file + ".medic-new"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw PoolError("cannot write \(temporary): \(PosixError.reason())") }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        // Each call's errno is taken at once: the calls after it would overwrite it.
        var failure = written == bytes.count ? 0 : written < 0 ? errno : EIO
        if failure == 0, fsync(fd) != 0 { failure = errno }
        fchmod(fd, mode)
        close(fd)
        if failure == 0, rename(temporary, file) != 0 { failure = errno }
        guard failure == 0 else {
            unlink(temporary)
            throw PoolError("cannot replace nginx's upstream file \(file): \(PosixError.reason(failure))")
        }
    }
}

/// A lock per file, held by a thread of its own (never by a task of Swift's pool).
final class FileLocks: Sendable {
    private let locks = Mutex<[String: NSLock]>([:])

    func withLock<T>(_ file: String, _ body: () -> T) -> T {
        let lock = locks.withLock { locks in
            if let lock = locks[file] { return lock }
            let lock = NSLock()
            locks[file] = lock
            return lock
        }
        lock.lock()
        defer { lock.unlock() }
        return body()
    }
}
