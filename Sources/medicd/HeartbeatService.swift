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
        let monitor = HeartbeatMonitor(targets: targets, logger: logger)
        let server = try NotifyServer(path: runtimeDirectory + "/heartbeat.sock", identify: monitor.identify)
        logger.info("heartbeat socket \(server.path) for \(targets.keys.sorted().joined(separator: ", "))")
        let engine = self.engine, logger = self.logger
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    await monitor.run(server: server) { observation in
                        await engine.handleWithHostPressure(observation)
                    }
                }
                // What the socket shed or refused, in the log at most every 10 s.
                group.addTask {
                    while (try? await Task.sleep(for: .seconds(10))) != nil {
                        let counts = server.takeCounts()
                        if counts.shed + counts.refused > 0 {
                            logger.warning("heartbeat socket: \(counts.shed) datagrams shed (a sender over \(Int(server.limit.perSecond))/s), \(counts.refused) from senders that are no heartbeat target")
                        }
                    }
                }
                await group.next()
                group.cancelAll()
            }
        } onGracefulShutdown: {
            server.close()
        }
    }
}
