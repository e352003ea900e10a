import Detectors
import Engine
import MedicCore
import ServiceLifecycle

/// Runs the early-warning watch on the units whose playbooks react to `heartbeat-late`.
struct WatchdogLateService: Service {
    let monitor: WatchdogLateMonitor
    let engine: Engine

    func run() async throws {
        let engine = self.engine
        await cancelWhenGracefulShutdown {
            await monitor.run { observation in
                await engine.handleWithHostPressure(observation)
            }
        }
    }
}
