import Audit
import Detectors
import Engine
import Logging
import MedicCore
import ServiceLifecycle
import Systemd

/// The daemon's main service: the unit watcher feeding the engine. On graceful shutdown it
/// stops taking observations, lets steps in flight finish, and returns.
struct Supervisor: Service {
    let bus: SystemBus
    let engine: Engine
    let watcher: UnitWatcher
    let audit: AuditSink
    let targets: Int
    let logger: Logger

    func run() async throws {
        let engine = self.engine
        let targets = self.targets
        try await withGracefulShutdownHandler {
            try await watcher.run(
                ready: {
                    let line = StatusLine.text(await engine.status, targets: targets)
                    Notify.ready(status: line)
                    logger.notice("ready: \(line)")
                },
                deliver: { event in
                    switch event {
                    case .observation(let observation):
                        await engine.handle(observation)
                    case .busLost(let why):
                        await engine.note("lost the system bus (\(why)); events may be missed until it is back")
                    case .busRestored:
                        await engine.note("system bus reconnected; re-reading every target's state")
                    }
                })
        } onGracefulShutdown: {
            Notify.stopping()
            logger.notice("stopping: no new observations; steps in flight will finish")
            bus.close()
        }
        await engine.stop()
        _ = try? await audit.append(AuditRecord(kind: .daemon, message: "medicd stopped"))
    }
}

/// The one-line summary sent as STATUS= and logged.
enum StatusLine {
    static func text(_ status: Engine.Status, targets: Int) -> String {
        let counters = status.counters
        return "watching \(targets) targets; \(status.openIncidents) incidents open; \(counters.restarts) restarts, "
            + "\(counters.recovered) recovered, \(counters.escalations) escalations"
    }
}
