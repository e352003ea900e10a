import Detectors
import Engine
import Logging
import MedicCore
import ServiceLifecycle

/// Runs the targets' probes and hands what they find to the engine, with the host's pressure.
struct ProbeService: Service {
    let runner: ProbeRunner
    let engine: Engine

    func run() async throws {
        let engine = self.engine
        await cancelWhenGracefulShutdown {
            await runner.run { observation in
                await engine.handleWithHostPressure(observation)
            }
        }
    }
}
