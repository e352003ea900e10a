import Actions
import ArgumentParser
import Audit
import Engine
import Foundation
import Logging
import MedicCore
import Playbooks
import ServiceLifecycle
import Systemd

/// medicd: watches systemd units, runs playbooks when they fail, and audits everything.
@main
struct MedicDaemon: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "medicd",
        abstract: "Medic's daemon: detects crashed units over systemd's bus and heals them by playbook.",
        discussion: """
            Loads every *.yaml playbook in the playbook directory, watches each target unit over \
            the system bus (DBUS_SYSTEM_BUS_ADDRESS is honoured), runs the matching playbook when \
            a unit crashes, and records every observation, step intent and result in \
            STATE/audit.sqlite. Sends READY=1 once every target is watched.
            """)

    @Option(name: .long, help: "Directory of playbooks (*.yaml).")
    var playbooks = "/etc/medic/playbooks"

    @Option(name: .long, help: "State directory; the audit log is STATE/audit.sqlite.")
    var state = "/var/lib/medic"

    @Option(name: .long, help: "D-Bus address of the system bus (default: the system bus).")
    var bus: String?

    @Option(name: .long, help: "Restarts allowed per unit, as 'N in DURATION'; beyond it a restart is refused.")
    var restartLimit = "3 in 10m"

    func validate() throws {
        if RestartBudget(parsing: restartLimit) == nil {
            throw ValidationError("--restart-limit '\(restartLimit)' is not 'N in DURATION', e.g. '3 in 10m'")
        }
    }

    func run() async throws {
        LoggingSystem.bootstrap { StdoutLogHandler(label: $0) }
        let logger = Logger(label: "medicd")

        let directory: PlaybookDirectory
        do {
            directory = try PlaybookDirectory.load(playbooks)
        } catch {
            throw fatal(logger, "\(error)")
        }
        let audit: AuditStore
        do {
            audit = try AuditStore(stateDirectory: state)
        } catch {
            throw fatal(logger, "cannot open the audit log in \(state): \(error)")
        }
        let address: BusAddress = bus.map { .address($0) } ?? .system
        let systemBus: SystemBus
        do {
            systemBus = try SystemBus(address: address)
        } catch {
            throw fatal(logger, "cannot reach the system bus at \(address): \(error)")
        }

        var records = [AuditRecord(
            kind: .daemon,
            message: "medicd started (pid \(getpid())) with \(directory.playbooks.count) playbooks from \(playbooks)",
            details: ["pid": String(getpid()), "playbooks": playbooks, "state": state, "bus": address.description])]
        for playbook in directory.playbooks {
            logger.info("loaded playbook \(playbook.name) from \(playbook.file): \(playbook.targets.map(\.unit).joined(separator: ", "))")
            records.append(AuditRecord(
                kind: .playbookLoaded, playbook: playbook.name, playbookHash: playbook.contentHash,
                message: "loaded \(playbook.file)", details: ["targets": playbook.targets.map(\.unit).joined(separator: ",")]))
        }
        for (file, diagnostics) in directory.refused {
            for diagnostic in diagnostics.all { logger.error("refused playbook: \(diagnostic)") }
            records.append(AuditRecord(kind: .playbookRefused, message: "refused \(file)", details: ["errors": diagnostics.description]))
        }
        _ = try await JournalMirror(store: audit).append(records)

        let engine = Engine(
            playbooks: directory.playbooks, runner: SystemdStepRunner(manager: SystemdManager(bus: systemBus)),
            audit: JournalMirror(store: audit), budget: RestartBudget(parsing: restartLimit)!, logger: logger,
            onChange: { [count = directory.playbooks.flatMap(\.targets).count] status in
                Notify.status(StatusLine.text(status, units: count))
            })
        let supervisor = Supervisor(bus: systemBus, engine: engine, audit: audit, units: await engine.targets, logger: logger)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: supervisor)]
        if let interval = Notify.watchdogInterval() {
            logger.info("systemd watchdog enabled: pinging every \(interval / 2)")
            services.append(.init(service: WatchdogPinger(interval: interval, engine: engine)))
        }
        let group = ServiceGroup(configuration: .init(
            services: services,
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        try await group.run()
    }

    /// Says why medicd cannot start, on stderr, and gives the exit code for it.
    private func fatal(_ logger: Logger, _ message: String) -> ExitCode {
        FileHandle.standardError.write(Data("medicd: \(message)\n".utf8))
        return ExitCode(1)
    }
}
