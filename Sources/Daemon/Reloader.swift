import Audit
import Detectors
import Engine
import Logging
import MedicCore
import Playbooks
import ServiceLifecycle
import UnixSignals

/// SIGHUP: re-reads the config and the playbook directory. An invalid config, or a set with any
/// invalid file, is refused whole, its errors logged and audited, and the running set stays; a
/// valid set replaces it (incidents in flight finish under the version they started with).
/// A reload applies the config's guards, receivers and dry_run, and the detectors the new
/// playbooks need (`DetectorSet.apply`: new ones start, gone ones stop, unchanged ones keep
/// running); the config's paths, listeners, sampling and retention take effect when medicd
/// restarts, and the reload says so. Then it lets go of the pages the reload mapped (`ColdPages`).
struct Reloader: Service {
    let source: SettingsSource
    /// The settings medicd started with.
    let running: DaemonConfig
    let engine: Engine
    let watcher: UnitWatcher
    let detectors: DetectorSet
    let audit: AuditSink
    let metrics: MedicMetrics
    let logger: Logger
    /// When the playbooks were last replaced.
    let history = ReloadHistory()

    func run() async throws {
        for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
            _ = await reload(by: "SIGHUP")
        }
    }

    /// Reloads the config and playbooks, asked by `actor` (`SIGHUP`, or a person on the
    /// control socket), or refuses the whole set; returns whether it was applied, and what
    /// happened in one line.
    func reload(by actor: String) async -> (applied: Bool, message: String) {
        // Parsing YAML and reading the targets maps code idle does not run.
        defer { ColdPages.unmap() }
        let directory = running.playbooks
        logger.notice("reloading \(source.file.map { "\($0) and " } ?? "")playbooks from \(directory) (asked by \(actor))")
        let config: DaemonConfig
        switch source.load() {
        case .failure(let diagnostics):
            let message = "reload refused: the config is invalid; the running config and playbooks stay"
            logger.error("\(message): \(diagnostics)")
            metrics.reloaded(false)
            _ = try? await audit.append(AuditRecord(kind: .playbookRefused, message: message, details: ["errors": diagnostics.description], actor: actor))
            return (false, message + ": " + diagnostics.description)
        case .success(let read):
            config = read
        }
        let loaded: PlaybookDirectory
        do {
            loaded = try PlaybookDirectory.load(directory, defaults: config.defaults)
        } catch {
            logger.error("reload refused: \(error); keeping the running playbooks")
            metrics.reloaded(false)
            _ = try? await audit.append(AuditRecord(kind: .playbookRefused, message: "reload refused: \(error); the running playbooks stay", actor: actor))
            return (false, "reload refused: \(error); the running playbooks stay")
        }
        var records = PlaybookLoading.records(for: loaded, logger: logger)
        guard loaded.refused.isEmpty else {
            logger.error("reload refused: \(loaded.refused.count) invalid playbooks; keeping the running ones")
            metrics.reloaded(false)
            let message = "reload refused: \(loaded.refused.count) invalid playbooks; the running set stays"
            records.append(AuditRecord(kind: .daemon, message: message, actor: actor))
            _ = try? await audit.append(records.filter { $0.kind != .playbookLoaded })
            return (false, message + ": " + loaded.refused.map { "\($0.diagnostics)" }.joined(separator: "; "))
        }
        var message = "reloaded \(loaded.playbooks.count) playbooks" + (config.dryRun ? " (dry-run)" : "")
        let pending = config.restartOnlyChanges(from: running)
        if !pending.isEmpty {
            message += "; \(pending.joined(separator: ", ")) changed in the config and take effect when medicd restarts"
            logger.warning("\(message)")
        }
        await engine.replaceSettings(.init(dryRun: config.dryRun))
        await engine.replacePlaybooks(loaded.playbooks)
        let plan = DetectorPlan(playbooks: loaded.playbooks, sampleInterval: running.sampleInterval, fleet: running.fleet)
        let change = await detectors.apply(plan)
        if !change.isEmpty {
            message += "; detectors: " + [("started", change.started), ("restarted", change.restarted), ("stopped", change.stopped)]
                .filter { !$0.1.isEmpty }.map { "\($0.0) \($0.1.joined(separator: ", "))" }.joined(separator: "; ")
        }
        records.append(AuditRecord(kind: .daemon, message: message, details: [AuditFact.dryRun.name: String(config.dryRun)], actor: actor))
        _ = try? await audit.append(records)
        await history.note(.now())
        metrics.reloaded(true, targets: loaded.playbooks.flatMap(\.targets).count)
        do {
            for observation in try await watcher.retarget(plan.units) {
                await engine.handle(observation)
            }
        } catch {
            logger.error("reading the new targets failed: \(error)")
        }
        return (true, message)
    }
}

/// When the playbooks were replaced, for `medic status`.
actor ReloadHistory {
    private(set) var last: Timestamp?

    func note(_ time: Timestamp) { last = time }
}
