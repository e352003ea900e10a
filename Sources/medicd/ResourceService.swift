import Detectors
import Engine
import MedicCore
import ServiceLifecycle

/// Samples the resources that playbooks set limits on and hands what fires to the engine.
struct ResourceService: Service {
    let watcher: ResourceWatcher
    let engine: Engine

    func run() async throws {
        let engine = self.engine
        await cancelWhenGracefulShutdown {
            await watcher.run { observation in
                await engine.handleWithHostPressure(observation)
            }
        }
    }
}
