import Actions
import ArgumentParser
import Audit
import Detectors
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
            a unit crashes, and records every observation, decision, step intent and result in \
            STATE/audit.sqlite. Sends READY=1 once every target is watched; SIGHUP reloads the \
            playbooks (an invalid set is refused and the old one kept); SIGTERM stops cleanly.
            """)

    @Option(name: .long, help: "Directory of playbooks (*.yaml).")
    var playbooks = "/etc/medic/playbooks"

    @Option(name: .long, help: "State directory; the audit log is STATE/audit.sqlite.")
    var state = "/var/lib/medic"

    @Option(name: .long, help: "D-Bus address of the system bus (default: the system bus).")
    var bus: String?

    @Option(name: .long, help: "Runtime directory; the heartbeat socket is RUNTIME/heartbeat.sock.")
    var runtime = "/run/medic"

    @Option(name: .long, help: "Read the journal from this directory instead of the local journal (e.g. a container's /run/log/journal).")
    var journal: String?

    @Option(name: .long, help: "How often resources are sampled.")
    var sampleInterval = "5s"

    @Option(name: .long, help: "Where systemd's ControlGroup= paths are found in the cgroup v2 tree (default: /sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid host).")
    var cgroupRoot: String?

    @Flag(name: .long, help: "Record what would be done and do nothing.")
    var dryRun = false

    @Option(name: .long, help: "The control socket (default: RUNTIME/control.sock).")
    var controlSocket: String?

    @Option(name: .long, help: "Group that may read medicd's status through the control socket.")
    var controlGroup = "root"

    @Option(name: .long, help: "Group that may also change what Medic does (silence, pause, resume, run, reload); root always may.")
    var adminGroup: String?

    @Option(name: .long, help: "Keep audit records this long; older ones are pruned (the chain stays verifiable).")
    var retainFor = "90d"

    @Option(name: .long, help: "Keep the audit log under this size, pruning the oldest records beyond it.")
    var retainSize = "1GiB"

    func validate() throws {
        guard let age = DurationText.parse(retainFor), age >= .seconds(3600) else {
            throw ValidationError("--retain-for '\(retainFor)' must be a duration of at least 1h, e.g. 90d")
        }
        guard let size = Quantity.parseSize(retainSize), size >= 1_048_576 else {
            throw ValidationError("--retain-size '\(retainSize)' must be a size of at least 1MiB, e.g. 1GiB")
        }
        for (flag, name) in [("--control-group", controlGroup), ("--admin-group", adminGroup ?? "root")] where getgrnam(name) == nil {
            throw ValidationError("\(flag) '\(name)': no such group on this host")
        }
        guard let interval = DurationText.parse(sampleInterval), interval >= .milliseconds(50) else {
            throw ValidationError("--sample-interval '\(sampleInterval)' must be a duration of at least 50ms, e.g. 5s")
        }
    }

    func run() async throws {
        LoggingSystem.bootstrap { StdoutLogHandler(label: $0) }
        let logger = Logger(label: "medicd")

        let directory: PlaybookDirectory
        do {
            directory = try PlaybookDirectory.load(playbooks)
        } catch {
            throw fatal("\(error)")
        }
        let store: AuditStore
        do {
            store = try AuditStore(stateDirectory: state)
        } catch {
            throw fatal("cannot open the audit log in \(state): \(error)")
        }
        let address: BusAddress = bus.map { .address($0) } ?? .system
        let systemBus: SystemBus
        do {
            systemBus = try SystemBus(address: address)
        } catch {
            throw fatal("cannot reach the system bus at \(address): \(error)")
        }
        let audit = JournalMirror(store: store)
        let recovery = try await IncidentRecovery(store: store, manager: SystemdManager(bus: systemBus))
        var records = [AuditRecord(
            kind: .daemon,
            message: "medicd started (pid \(getpid())) with \(directory.playbooks.count) playbooks from \(playbooks)" + (dryRun ? ", dry-run" : ""),
            details: ["pid": String(getpid()), "playbooks": playbooks, "state": state, "bus": address.description, "dry_run": String(dryRun),
                      "boot": recovery.boot])]
        records += recovery.records
        records += PlaybookLoading.records(for: directory, logger: logger)
        _ = try await audit.append(records)

        let now = Timestamp.now()
        var core = EngineCore(playbooks: directory.playbooks, settings: .init(dryRun: dryRun), firstIncidentID: try store.nextIncidentID())
        let history = try store.guardHistory(within: .seconds(86_400), now: now)
        core.restore(stepRuns: history.stepRuns, failures: history.failures)
        core.setSilences(try store.silences(now: now))
        let targetCount = directory.playbooks.flatMap(\.targets).count
        let runner = ActionRunner(
            manager: SystemdManager(bus: systemBus), pool: PoolAction(pool: HAProxyRuntime(), held: try store.poolHolds()), journalDirectory: journal)
        let engine = Engine(
            core: core, runner: runner, audit: audit, logger: logger,
            onChange: { status in Notify.status(StatusLine.text(status, targets: targetCount)) })
        let watcher = UnitWatcher(
            manager: SystemdManager(bus: systemBus), selectors: directory.playbooks.flatMap { $0.targets.map(\.selector) },
            dependencies: directory.playbooks.flatMap { $0.targets.flatMap(\.dependsOn) }, logger: logger)

        let reloader = Reloader(directory: playbooks, engine: engine, watcher: watcher, audit: audit, logger: logger)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: Supervisor(
                bus: systemBus, engine: engine, watcher: watcher, audit: audit, targets: targetCount, recovery: recovery, logger: logger)),
            .init(service: reloader),
            .init(service: ControlServer(
                path: controlSocket ?? runtime + "/control.sock", group: getgrnam(controlGroup)!.pointee.gr_gid,
                adminGroup: adminGroup.map { getgrnam($0)!.pointee.gr_gid },
                handler: ControlHandler(engine: engine, store: store, reloader: reloader, startedAt: now), logger: logger)),
            .init(service: RetentionService(
                store: store, engine: engine, age: DurationText.parse(retainFor)!, maxBytes: Int64(Quantity.parseSize(retainSize)!), logger: logger)),
        ]
        let probes = directory.playbooks.flatMap { $0.targets }.compactMap { spec -> (unit: String, probe: Probe)? in
            guard case .unit(let unit) = spec.selector, !spec.selector.isPattern, let probe = spec.probe else { return nil }
            return (unit, probe)
        }
        if !probes.isEmpty {
            services.append(.init(service: ProbeService(runner: ProbeRunner(probes: probes, logger: logger), engine: engine)))
        }
        var heartbeats: [String: Heartbeat] = [:]
        for spec in directory.playbooks.flatMap(\.targets) {
            if case .unit(let unit) = spec.selector, !spec.selector.isPattern, let heartbeat = spec.heartbeat { heartbeats[unit] = heartbeat }
        }
        if !heartbeats.isEmpty {
            services.append(.init(service: HeartbeatService(runtimeDirectory: runtime, targets: heartbeats, engine: engine, logger: logger)))
        }
        var journalPatterns: [String: [String]] = [:]
        for playbook in directory.playbooks {
            let patterns = playbook.rules.flatMap(\.condition.triggers).compactMap { if case .journal(let text) = $0 { text } else { nil } }
            for spec in playbook.targets where !patterns.isEmpty {
                if case .unit(let unit) = spec.selector, !spec.selector.isPattern { journalPatterns[unit, default: []] += patterns }
            }
        }
        if !journalPatterns.isEmpty {
            services.append(.init(service: JournalService(watcher: JournalWatcher(patterns: journalPatterns, directory: journal, logger: logger), engine: engine)))
        }
        let lateUnits = directory.playbooks.filter { $0.rules.contains { $0.condition.triggers.contains(.heartbeatLate) } }
            .flatMap(\.targets).compactMap { spec -> String? in
                if case .unit(let unit) = spec.selector, !spec.selector.isPattern { return unit } else { return nil }
            }
        if !lateUnits.isEmpty {
            let monitor = WatchdogLateMonitor(manager: SystemdManager(bus: systemBus), units: lateUnits, logger: logger)
            services.append(.init(service: WatchdogLateService(monitor: monitor, engine: engine)))
        }
        var unitLimits: [String: [ResourceLimit]] = [:]
        var hostLimits: [ResourceLimit] = []
        for playbook in directory.playbooks {
            let triggered = playbook.rules.flatMap(\.condition.triggers).compactMap { if case .limit(let limit) = $0 { limit } else { nil } }
            for spec in playbook.targets {
                let limits = spec.limits + triggered
                switch spec.selector {
                case .host: hostLimits += limits
                case .unit(let unit) where !spec.selector.isPattern && !limits.isEmpty: unitLimits[unit, default: []] += limits
                default: break
                }
            }
        }
        if !unitLimits.isEmpty || !hostLimits.isEmpty {
            let sampler = cgroupRoot.map { UnitSampler(unifiedRoot: $0) } ?? UnitSampler()
            let resources = ResourceWatcher(
                manager: SystemdManager(bus: systemBus), unitLimits: unitLimits.mapValues { Array(Set($0)) }, hostLimits: Array(Set(hostLimits)),
                interval: DurationText.parse(sampleInterval)!, sampler: sampler, logger: logger)
            services.append(.init(service: ResourceService(watcher: resources, engine: engine)))
        }
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
    private func fatal(_ message: String) -> ExitCode {
        FileHandle.standardError.write(Data("medicd: \(message)\n".utf8))
        return ExitCode(1)
    }
}
