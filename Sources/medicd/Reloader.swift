import Audit
import Detectors
import Engine
import Logging
import MedicCore
import Playbooks
import ServiceLifecycle
import UnixSignals

/// SIGHUP: re-reads the playbook directory. A set with any invalid file is refused whole, its
/// errors logged and audited, and the running set stays; a valid set replaces it (incidents in
/// flight finish under the version they started with).
struct Reloader: Service {
    let directory: String
    let engine: Engine
    let watcher: UnitWatcher
    let audit: AuditSink
    let logger: Logger

    func run() async throws {
        for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
            await reload()
        }
    }

    private func reload() async {
        logger.notice("SIGHUP: reloading playbooks from \(directory)")
        let loaded: PlaybookDirectory
        do {
            loaded = try PlaybookDirectory.load(directory)
        } catch {
            logger.error("reload refused: \(error); keeping the running playbooks")
            _ = try? await audit.append(AuditRecord(kind: .playbookRefused, message: "reload refused: \(error); the running playbooks stay"))
            return
        }
        var records = PlaybookLoading.records(for: loaded, logger: logger)
        guard loaded.refused.isEmpty else {
            logger.error("reload refused: \(loaded.refused.count) invalid playbooks; keeping the running ones")
            records.append(AuditRecord(kind: .daemon, message: "reload refused: \(loaded.refused.count) invalid playbooks; the running set stays"))
            _ = try? await audit.append(records.filter { $0.kind != .playbookLoaded })
            return
        }
        records.append(AuditRecord(kind: .daemon, message: "reloaded \(loaded.playbooks.count) playbooks"))
        _ = try? await audit.append(records)
        await engine.replacePlaybooks(loaded.playbooks)
        do {
            let selectors = loaded.playbooks.flatMap { $0.targets.map(\.selector) }
            for observation in try await watcher.retarget(selectors, dependencies: loaded.playbooks.flatMap { $0.targets.flatMap(\.dependsOn) }) {
                await engine.handle(observation)
            }
        } catch {
            logger.error("reading the new targets failed: \(error)")
        }
    }
}
