import Detectors
import Engine
import Foundation
import Logging
import MedicCore
import ServiceLifecycle
import Systemd

/// medicd's heartbeat socket (`RUNTIME/heartbeat.sock`, the sd_notify protocol) and the monitor
/// that turns silence into `heartbeat-missed`.
struct HeartbeatService: Service {
    let runtimeDirectory: String
    let targets: [String: Heartbeat]
    let engine: Engine
    let logger: Logger

    func run() async throws {
        try FileManager.default.createDirectory(atPath: runtimeDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        let server = try NotifyServer(path: runtimeDirectory + "/heartbeat.sock")
        logger.info("heartbeat socket \(server.path) for \(targets.keys.sorted().joined(separator: ", "))")
        let monitor = HeartbeatMonitor(targets: targets, logger: logger)
        let engine = self.engine
        await withGracefulShutdownHandler {
            await monitor.run(server: server) { observation in
                await engine.handleWithHostPressure(observation)
            }
        } onGracefulShutdown: {
            server.close()
        }
    }
}
