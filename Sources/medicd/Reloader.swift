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
    /// When the playbooks were last replaced.
    let history = ReloadHistory()

    func run() async throws {
        for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
            _ = await reload(by: "SIGHUP")
        }
    }

    /// Reloads the playbooks, asked by `actor` (`SIGHUP`, or a person on the control socket);
    /// returns what happened, in one line.
    func reload(by actor: String) async -> String {
        logger.notice("reloading playbooks from \(directory) (asked by \(actor))")
        let loaded: PlaybookDirectory
        do {
            loaded = try PlaybookDirectory.load(directory)
        } catch {
            logger.error("reload refused: \(error); keeping the running playbooks")
            _ = try? await audit.append(AuditRecord(kind: .playbookRefused, message: "reload refused: \(error); the running playbooks stay", actor: actor))
            return "reload refused: \(error); the running playbooks stay"
        }
        var records = PlaybookLoading.records(for: loaded, logger: logger)
        guard loaded.refused.isEmpty else {
            logger.error("reload refused: \(loaded.refused.count) invalid playbooks; keeping the running ones")
            let message = "reload refused: \(loaded.refused.count) invalid playbooks; the running set stays"
            records.append(AuditRecord(kind: .daemon, message: message, actor: actor))
            _ = try? await audit.append(records.filter { $0.kind != .playbookLoaded })
            return message + ": " + loaded.refused.map { "\($0.diagnostics)" }.joined(separator: "; ")
        }
        records.append(AuditRecord(kind: .daemon, message: "reloaded \(loaded.playbooks.count) playbooks", actor: actor))
        _ = try? await audit.append(records)
        await history.note(.now())
        await engine.replacePlaybooks(loaded.playbooks)
        do {
            let selectors = loaded.playbooks.flatMap { $0.targets.map(\.selector) }
            for observation in try await watcher.retarget(selectors, dependencies: loaded.playbooks.flatMap { $0.targets.flatMap(\.dependsOn) }) {
                await engine.handle(observation)
            }
        } catch {
            logger.error("reading the new targets failed: \(error)")
        }
        return "reloaded \(loaded.playbooks.count) playbooks"
    }
}

/// When the playbooks were replaced, for `medic status`.
actor ReloadHistory {
    private(set) var last: Timestamp?

    func note(_ time: Timestamp) { last = time }
}
