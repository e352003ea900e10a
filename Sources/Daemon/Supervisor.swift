import Audit
import Detectors
import Engine
import Logging
import MedicCore
import ServiceLifecycle
import Systemd

/// The daemon's main service: the unit watcher feeding the engine. On graceful shutdown it
/// stops taking observations, lets steps in flight finish, and returns. If the watcher fails or
/// ends otherwise, it throws: medicd cannot heal without it, and exits for systemd to restart it.
struct Supervisor: Service {
    let bus: SystemBus
    let engine: Engine
    let watcher: UnitWatcher
    let audit: AuditSink
    let targets: Int
    let recovery: IncidentRecovery
    let metrics: MedicMetrics
    let states: DetectorStates
    /// Opened once every target has been read and READY=1 sent.
    let started: Gate
    let logger: Logger

    func run() async throws {
        let engine = self.engine
        let targets = self.targets
        let recovery = self.recovery
        let boots = BootWatch(boot: recovery.boot, manager: SystemdManager(bus: bus))
        let metrics = self.metrics
        metrics.detector("bus", up: true)
        defer { metrics.detector("bus", up: false) }
        states.set("units", running: true)
        defer { states.set("units", running: false) }
        await recovery.register(into: engine)
        try await withGracefulShutdownHandler {
            try await watcher.run(
                ready: {
                    let line = StatusLine.text(await engine.status, targets: targets)
                    Notify.ready(status: line)
                    logger.notice("ready: \(line)")
                    started.open()
                    await recovery.adopt(into: engine)
                },
                deliver: { event in
                    switch event {
                    case .observations(let observations):
                        await engine.handle(observations)
                    case .busLost(let why):
                        metrics.detector("bus", up: false)
                        await engine.note("lost the system bus (\(why)); events may be missed until it is back")
                    case .busRestored:
                        metrics.detector("bus", up: true)
                        await engine.note("system bus reconnected; re-reading every target's state")
                        if let change = await boots.check() { await engine.note(change) }
                    }
                })
        } onGracefulShutdown: {
            Notify.stopping()
            logger.notice("stopping: no new observations; steps in flight will finish")
            bus.close()
        }
        guard Task.isShuttingDownGracefully || Task.isCancelled else {
            throw ServiceGaveUp(message: "the unit watcher ended while medicd runs")
        }
        await engine.stop()
        _ = try? await audit.append(AuditRecord(kind: .daemon, message: "medicd stopped"))
    }
}

/// Notices when the host behind the bus has booted again (seen from a medicd that outlives it,
/// such as one watching a host from outside).
actor BootWatch {
    private var boot: String
    private let manager: SystemdManager

    init(boot: String, manager: SystemdManager) {
        self.boot = boot
        self.manager = manager
    }

    /// A line for the audit log when the boot changed since the last check.
    func check() async -> String? {
        guard let now = try? await manager.bootIdentity(), now != boot else { return nil }
        defer { boot = now }
        return "the host booted again: new boot \(now) (was \(boot))"
    }
}

/// The one-line summary sent as STATUS= and logged.
enum StatusLine {
    static func text(_ status: Engine.Status, targets: Int) -> String {
        let counters = status.counters
        if let problem = status.auditProblem {
            return "AUDIT LOG UNWRITABLE (\(problem)): detecting, no steps run until it can be written; "
                + "watching \(targets) targets; \(status.openIncidents) incidents open"
        }
        return "watching \(targets) targets; \(status.openIncidents) incidents open; \(counters.restarts) restarts, "
            + "\(counters.recovered) recovered, \(counters.escalations) escalations"
    }
}
