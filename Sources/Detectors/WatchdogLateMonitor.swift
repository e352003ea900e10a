import Glibc
import Logging
import MedicCore
import Systemd

/// Early warning before systemd's watchdog fires: for a unit with `WatchdogSec=`, reads when it
/// last pinged (WatchdogTimestampMonotonic) and raises `heartbeat-late` once the ping is older
/// than a share of the timeout (default half), so a playbook can drain the backend and keep
/// evidence before systemd's hard kill. Checks each unit eight times per watchdog interval.
public struct WatchdogLateMonitor: Sendable {
    public let units: [String]
    /// The share of WatchdogSec= after which a ping is late.
    public let share: Double
    private let manager: SystemdManager
    private let logger: Logger

    /// What each check reads: three properties, not the whole unit.
    static let reads: [UnitRead] = [.unit("ActiveState"), .service("WatchdogUSec"), .service("WatchdogTimestampMonotonic")]

    public init(manager: SystemdManager, units: [String], share: Double = 0.5, logger: Logger) {
        self.manager = manager
        self.units = units
        self.share = share
        self.logger = logger
    }

    public func run(deliver: @escaping @Sendable (Observation) async -> Void) async {
        await withTaskGroup(of: Void.self) { group in
            for unit in units {
                group.addTask { await watch(unit, deliver: deliver) }
            }
        }
    }

    private func watch(_ unit: String, deliver: @Sendable (Observation) async -> Void) async {
        var reportedFor: UInt64?
        while !Task.isCancelled {
            var pause: Duration = .seconds(1)
            if let state = try? await manager.read(Self.reads, of: [unit])[unit], let timeout = state.watchdogUSec, timeout > 0,
               state.activeState == "active", let last = state.watchdogTimestampMonotonic, last > 0 {
                pause = max(.milliseconds(20), .microseconds(Int64(timeout / 8)))
                let age = Self.monotonicMicroseconds() - last
                if Double(age) > share * Double(timeout), reportedFor != last {
                    reportedFor = last
                    await deliver(Observation(
                        target: unit, kind: .heartbeatLate, time: .now(),
                        facts: ["last_ping_ms": String(age / 1000), "watchdog_ms": String(timeout / 1000)],
                        summary: "watchdog ping late: last one \(age / 1000) ms ago, systemd kills at \(timeout / 1000) ms"))
                }
            }
            try? await Task.sleep(for: pause)
        }
    }

    static func monotonicMicroseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
    }
}
