import Foundation
import Logging
import MedicCore
import Synchronization
import Systemd

/// Heartbeats to medicd's own notify socket, for programs that do not use systemd's watchdog:
/// any program that calls sd_notify can beat by pointing NOTIFY_SOCKET at the socket. The
/// sender is known by the PID the kernel vouches for, mapped to its unit through its cgroup, so
/// a process can beat only for its own unit; beats from anything that is not a heartbeat target
/// are dropped on the socket's receiving thread (`identify`), before they reach the monitor, and
/// a flood from any one process is shed there too (`NotifyServer.SenderLimit`). A target with `heartbeat: { every: 1s, missed: 3 }` is reported
/// `heartbeat-missed` after 3 s of silence, and `heartbeat-resumed` when beats come back.
public actor HeartbeatMonitor {
    private struct Watch {
        var heartbeat: Heartbeat
        var lastBeat: ContinuousClock.Instant
        var missed = false
        /// The process that beat last.
        var pid: pid_t?
    }

    private var watches: [String: Watch]
    private let targets: Set<String>
    private let procRoot: String
    private let logger: Logger
    /// Senders refused as no heartbeat target, by unit (or `pid N`), to log each once.
    private let refused = Mutex<Set<String>>([])

    /// `targets`: unit → its heartbeat settings. Silence is counted from now.
    public init(targets: [String: Heartbeat], procRoot: String = "/proc", logger: Logger) {
        let now = ContinuousClock.now
        watches = targets.mapValues { Watch(heartbeat: $0, lastBeat: now) }
        self.targets = Set(targets.keys)
        self.procRoot = procRoot
        self.logger = logger
    }

    /// The heartbeat target a datagram from `pid` beats for (its unit), or nil to drop it, for
    /// `NotifyServer`'s receiving thread: it runs there, not on the monitor.
    public nonisolated func identify(_ pid: pid_t) -> String? {
        let unit = UnitOfProcess.unit(of: pid, procRoot: procRoot)
        if let unit, targets.contains(unit) { return unit }
        let sender = unit ?? "pid \(pid)"
        if refused.withLock({ $0.insert(sender).inserted }) {
            logger.warning("dropped a heartbeat from \(sender) (pid \(pid)): not a heartbeat target")
        }
        return nil
    }

    /// Runs until the server's messages end, delivering misses and resumptions. Deadlines are
    /// checked every 10 ms.
    public func run(server: NotifyServer, deliver: @escaping @Sendable (Observation) async -> Void) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await message in server.messages { await self.receive(message, deliver: deliver) }
            }
            group.addTask {
                while !Task.isCancelled {
                    for observation in await self.due() { await deliver(observation) }
                    try? await Task.sleep(for: .milliseconds(10))
                }
            }
            await group.next()
            group.cancelAll()
        }
    }

    private func receive(_ message: NotifyServer.Message, deliver: @Sendable (Observation) async -> Void) async {
        guard message.fields["WATCHDOG"] == "1" || message.fields["READY"] == "1" || message.fields["STATUS"] != nil else { return }
        let unit = message.sender
        guard var watch = watches[unit] else { return }
        watch.lastBeat = .now
        let resumed = watch.missed
        // A beat from a process that replaced the one beating before (which is gone) is the fresh
        // evidence a restart waits for; several live processes of one unit beating in turn are not.
        let newProcess = watch.pid.map { $0 != message.pid && kill($0, 0) == -1 && errno == ESRCH } ?? false
        let previous = watch.pid
        watch.missed = false
        watch.pid = message.pid
        watches[unit] = watch
        if resumed || newProcess {
            await deliver(Observation(
                target: unit, kind: .heartbeatResumed, time: .now(), facts: ["pid": String(message.pid)],
                summary: resumed ? "heartbeats arrive again" : "heartbeats from a new process (pid \(message.pid), was \(previous ?? 0))"))
        }
    }

    private func due() -> [Observation] {
        let now = ContinuousClock.now
        var observations: [Observation] = []
        for (unit, var watch) in watches where !watch.missed {
            let window = watch.heartbeat.every * watch.heartbeat.missed
            guard now - watch.lastBeat >= window else { continue }
            watch.missed = true
            watches[unit] = watch
            let silent = now - watch.lastBeat
            observations.append(Observation(
                target: unit, kind: .heartbeatMissed, time: .now(),
                facts: ["silent_ms": String(silent.milliseconds), "late_ms": String((silent - window).milliseconds)],
                summary: "no heartbeat for \(DurationText.format(silent)) (expected every \(DurationText.format(watch.heartbeat.every)))"))
        }
        return observations
    }
}

/// Which systemd unit a process belongs to, from its cgroup.
public enum UnitOfProcess {
    /// The innermost `*.service` (or `.scope`) component of the process's cgroup path, read from
    /// `procRoot/PID/cgroup` (the unified `0::` line, else systemd's named hierarchy).
    public static func unit(of pid: pid_t, procRoot: String = "/proc") -> String? {
        guard pid > 0, let text = readSmall("\(procRoot)/\(pid)/cgroup") else { return nil }
        let lines = text.split(separator: "\n")
        let line = lines.first { $0.hasPrefix("0::") } ?? lines.first { $0.contains(":name=systemd:") }
        guard let path = line?.split(separator: ":", maxSplits: 2).last else { return nil }
        return path.split(separator: "/").last { $0.hasSuffix(".service") || $0.hasSuffix(".scope") }.map(String.init)
    }
}
