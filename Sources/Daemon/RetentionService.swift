import Audit
import Engine
import Logging
import MedicCore
import ServiceLifecycle

/// Prunes the audit log from its oldest end, by age and by size, once a minute after start and
/// then every hour, recording each pruning in the log itself, and lets go of what the pruning
/// filled: SQLite's caches (`AuditStore.releaseMemory`) and the file pages it mapped
/// (`ColdPages`).
struct RetentionService: Service {
    let store: AuditStore
    let engine: Engine
    let age: Duration
    let maxBytes: Int64
    let logger: Logger

    func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                try await Task.sleep(for: .seconds(60))
                while true {
                    await pruneOnce()
                    await store.releaseMemory()
                    ColdPages.unmap()
                    try await Task.sleep(for: .seconds(3600))
                }
            }
        } catch is CancellationError {
            return
        }
    }

    private func pruneOnce() async {
        let cutoff = Timestamp.now().wallMicroseconds - age.milliseconds * 1000
        do {
            let result = try await store.prune(before: cutoff, maxBytes: maxBytes)
            guard result.pruned > 0 else { return }
            await engine.note(
                "pruned \(result.pruned) audit records older than \(DurationText.format(age)) or beyond \(Quantity.formatSize(Double(maxBytes))); "
                    + "the chain is anchored at record \(result.firstKept.map(String.init) ?? "?")")
        } catch {
            logger.error("pruning the audit log failed: \(error)")
        }
    }
}
