import Foundation
import Logging
import MedicCore
import Systemd

/// medicd's heartbeat socket (`RUNTIME/heartbeat.sock`, the sd_notify protocol) and the monitor
/// that turns silence into `heartbeat-missed`; what the socket shed or refused is logged at
/// most every 10 s.
public struct HeartbeatDetector: Detector {
    let runtimeDirectory: String
    let targets: [String: Heartbeat]
    let logger: Logger

    public init(runtimeDirectory: String, targets: [String: Heartbeat], logger: Logger) {
        self.runtimeDirectory = runtimeDirectory
        self.targets = targets
        self.logger = logger
    }

    public func run(deliver: @escaping @Sendable (Observation) async -> Void) async throws {
        try FileManager.default.createDirectory(atPath: runtimeDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        let monitor = HeartbeatMonitor(targets: targets, logger: logger)
        let server = try NotifyServer(path: runtimeDirectory + "/heartbeat.sock", identify: monitor.identify)
        defer { server.close() }
        logger.info("heartbeat socket \(server.path) for \(targets.keys.sorted().joined(separator: ", "))")
        let logger = self.logger
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await monitor.run(server: server, deliver: deliver) }
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
    }
}
