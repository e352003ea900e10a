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
    let audit: AuditStore
    let units: [String]
    let logger: Logger

    func run() async throws {
        let watcher = UnitWatcher(manager: SystemdManager(bus: bus), units: units, logger: logger)
        let engine = self.engine
        let status = StatusLine(engine: engine, units: units.count)
        try await withGracefulShutdownHandler {
            try await watcher.run(
                ready: {
                    let line = await status.text()
                    Notify.ready(status: line)
                    logger.notice("ready: \(line)")
                },
                deliver: { observation in
                    await engine.handle(observation)
                    Notify.status(await status.text())
                })
        } onGracefulShutdown: {
            Notify.stopping()
            logger.notice("stopping: no new observations; steps in flight will finish")
            bus.close()
        }
        await engine.waitUntilIdle()
        _ = try? await audit.append(AuditRecord(kind: .daemon, message: "medicd stopped"))
    }
}

/// The one-line summary sent as STATUS= and logged.
struct StatusLine {
    let engine: Engine
    let units: Int

    func text() async -> String {
        let counters = await engine.counters
        let open = await engine.openIncidents.count
        return "watching \(units) units; \(open) incidents open; \(counters.restarts) restarts, "
            + "\(counters.recovered) recovered, \(counters.failed) failed"
    }
}
