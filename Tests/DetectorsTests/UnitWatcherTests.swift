import Detectors
import Foundation
import Logging
import MedicCore
import Synchronization
import Systemd
import TestHost
import Testing

@Suite("The unit watcher's first read, on a real systemd", .timeLimit(.minutes(3)))
struct UnitWatcherTests {
    @Test("at start: a target found failed is a crash that says how it ended, a running one its state and dependencies, a dependency systemd names is watched, a glob takes on its units; all before ready")
    func firstRead() async throws {
        let host = try TestHost(name: "watch-first", binds: [])
        defer { host.destroy() }
        try host.installUnit("db.service", "[Service]\nExecStart=/bin/sleep infinity\n")
        try host.installUnit("app.service", "[Unit]\nRequires=db.service\nAfter=db.service\n[Service]\nExecStart=/bin/sleep infinity\n")
        try host.installUnit("broken.service", "[Service]\nExecStart=/bin/sh -c 'exit 3'\n")
        try host.installUnit("idle@.service", "[Service]\nExecStart=/bin/sleep infinity\n")
        try host.runInside(["systemctl", "daemon-reload"])
        try host.runInside(["systemctl", "start", "app.service", "idle@1.service", "idle@2.service"])
        _ = try? host.runInside(["systemctl", "start", "broken.service"])
        let manager = SystemdManager(bus: try SystemBus(address: host.busAddress))
        defer { manager.bus.close() }
        let watcher = UnitWatcher(
            manager: manager, units: WatchedUnits(selectors: [.unit("app.service"), .unit("broken.service"), .unit("idle@*.service")], dependencies: []),
            logger: Logger(label: "test"))
        let seen = Mutex<[Observation]>([])
        let readyAfter = Mutex<Int?>(nil)
        let running = Task {
            try await watcher.run(
                ready: { readyAfter.withLock { $0 = seen.withLock { $0.count } } },
                deliver: { event in if case .observations(let list) = event { seen.withLock { $0 += list } } })
        }
        defer { running.cancel() }
        let deadline = ContinuousClock.now + .seconds(20)
        while readyAfter.withLock({ $0 }) == nil, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        let first = seen.withLock { Array($0.prefix(readyAfter.withLock { $0 } ?? 0)) }
        let crash = try #require(first.first { $0.target == "broken.service" && $0.kind == .crashed(.exitCode) })
        #expect(crash.facts["Result"] == "exit-code")
        #expect(crash.facts["ExecMainStatus"] == "3")
        #expect(crash.summary.contains("3"))
        let app = try #require(first.first { $0.target == "app.service" })
        #expect(app.facts["ActiveState"] == "active" && app.facts["SubState"] == "running")
        #expect(app.facts["Requires"] == "db.service")
        #expect(first.contains { $0.target == "db.service" && $0.facts["ActiveState"] == "active" })
        #expect(Set(first.map(\.target)).isSuperset(of: ["idle@1.service", "idle@2.service"]))
        // After ready, the dependency is followed by its signals like any target.
        try host.runInside(["systemctl", "kill", "-s", "KILL", "db.service"])
        while !seen.withLock({ $0.contains { $0.target == "db.service" && $0.kind == .crashed(.signal) } }), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(seen.withLock { $0.contains { $0.target == "db.service" && $0.kind == .crashed(.signal) } })
    }
}
