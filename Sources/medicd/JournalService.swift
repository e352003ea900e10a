import Detectors
import Engine
import MedicCore
import ServiceLifecycle

/// Follows the journal for the patterns the playbooks name and hands matches to the engine.
struct JournalService: Service {
    let watcher: JournalWatcher
    let engine: Engine

    func run() async throws {
        let engine = self.engine
        try await cancelWhenGracefulShutdown {
            try await watcher.run { observation in
                await engine.handleWithHostPressure(observation)
            }
        }
    }
}
