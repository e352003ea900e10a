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
            Reads its settings from /etc/medic/medic.yaml (or --config; each flag overrides the \
            file), loads every *.yaml playbook in the playbook directory, watches each target unit \
            over the system bus (DBUS_SYSTEM_BUS_ADDRESS is honoured), runs the matching playbook \
            when a unit crashes, and records every observation, decision, step intent and result \
            in STATE/audit.sqlite. Sends READY=1 once every target is watched; SIGHUP reloads the \
            config and playbooks (an invalid set is refused and the old one kept); SIGTERM stops \
            cleanly. Prometheus metrics are served at http://127.0.0.1:9466/metrics.
            """,
        version: MedicVersion.string)

    @Option(name: .long, help: "The config file (default: \(DaemonConfig.defaultPath), when it exists). Each flag below overrides it.")
    var config: String?

    @Option(name: .long, help: "Directory of playbooks (*.yaml) (default: /etc/medic/playbooks).")
    var playbooks: String?

    @Option(name: .long, help: "State directory; the audit log is STATE/audit.sqlite (default: /var/lib/medic).")
    var state: String?

    @Option(name: .long, help: "D-Bus address of the system bus (default: the system bus).")
    var bus: String?

    @Option(name: .long, help: "Runtime directory; the heartbeat socket is RUNTIME/heartbeat.sock (default: /run/medic).")
    var runtime: String?

    @Option(name: .long, help: "Read the journal from this directory instead of the local journal (e.g. a container's /run/log/journal).")
    var journal: String?

    @Option(name: .long, help: "How often resources are sampled (default: 5s).")
    var sampleInterval: String?

    @Option(name: .long, help: "Where systemd's ControlGroup= paths are found in the cgroup v2 tree (default: /sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid host).")
    var cgroupRoot: String?

    @Flag(name: .long, help: "Record what would be done and do nothing.")
    var dryRun = false

    @Option(name: .long, help: "The control socket (default: RUNTIME/control.sock).")
    var controlSocket: String?

    @Option(name: .long, help: "Group that may read medicd's status through the control socket (default: root).")
    var controlGroup: String?

    @Option(name: .long, help: "Group that may also change what Medic does (silence, pause, resume, run, reload); root always may.")
    var adminGroup: String?

    @Option(name: .long, help: "Serve Prometheus metrics on HOST:PORT, or off (default: 127.0.0.1:9466).")
    var metricsListen: String?

    @Flag(name: .long, help: "Allow --metrics-listen on an address other than loopback (the page has no authentication).")
    var metricsPublic = false

    @Option(name: .long, help: "Keep audit records this long; older ones are pruned, the chain stays verifiable (default: 90d).")
    var retainFor: String?

    @Option(name: .long, help: "Keep the audit log under this size, pruning the oldest records beyond it (default: 1GiB).")
    var retainSize: String?

    /// The flags, checked and parsed.
    func overrides() throws -> FlagOverrides {
        var flags = FlagOverrides(
            playbooks: playbooks, state: state, runtime: runtime, journal: journal, bus: bus, dryRun: dryRun, controlSocket: controlSocket,
            controlGroup: controlGroup, adminGroup: adminGroup, metricsListen: metricsListen, metricsPublic: metricsPublic, cgroupRoot: cgroupRoot)
        if let retainFor {
            guard let age = DurationText.parse(retainFor), age >= DaemonConfig.minimumRetainFor else {
                throw ValidationError("--retain-for '\(retainFor)' must be a duration of at least 1h, e.g. 90d")
            }
            flags.retainFor = age
        }
        if let retainSize {
            guard let size = Quantity.parseSize(retainSize), size >= Double(DaemonConfig.minimumRetainSize) else {
                throw ValidationError("--retain-size '\(retainSize)' must be a size of at least 1MiB, e.g. 1GiB")
            }
            flags.retainSize = Int64(size)
        }
        if let sampleInterval {
            guard let interval = DurationText.parse(sampleInterval), interval >= DaemonConfig.minimumSampleInterval else {
                throw ValidationError("--sample-interval '\(sampleInterval)' must be a duration of at least 50ms, e.g. 5s")
            }
            flags.sampleInterval = interval
        }
        if let metricsListen, metricsListen != "off" {
            guard let address = ListenAddress(metricsListen) else {
                throw ValidationError("--metrics-listen '\(metricsListen)' must be HOST:PORT (e.g. 127.0.0.1:9466) or off")
            }
            if !address.isLoopback, !metricsPublic {
                throw ValidationError("--metrics-listen \(metricsListen) is not a loopback address and the metrics page has no authentication; add --metrics-public to serve it there anyway")
            }
        }
        for (flag, name) in [("--control-group", controlGroup), ("--admin-group", adminGroup)] {
            if let name, getgrnam(name) == nil { throw ValidationError("\(flag) '\(name)': no such group on this host") }
        }
        return flags
    }

    func validate() throws {
        _ = try overrides()
    }

    func run() async throws {
        LoggingSystem.bootstrap { StdoutLogHandler(label: $0) }
        let logger = Logger(label: "medicd")
        let descriptors = DescriptorLimit.raise()

        let source = SettingsSource(configFlag: config, flags: try overrides())
        let settings: DaemonConfig
        switch source.load() {
        case .failure(let diagnostics): throw fatal("the config is invalid:\n\(diagnostics)")
        case .success(let loaded): settings = loaded
        }
        let playbooks = settings.playbooks, state = settings.state, runtime = settings.runtime, dryRun = settings.dryRun
        let directory: PlaybookDirectory
        do {
            directory = try PlaybookDirectory.load(playbooks, defaults: settings.defaults)
        } catch {
            throw fatal("\(error)")
        }
        let store: AuditStore
        do {
            store = try AuditStore(stateDirectory: state)
        } catch {
            throw fatal("cannot open the audit log in \(state): \(error)")
        }
        let address: BusAddress = settings.bus.map { .address($0) } ?? .system
        let systemBus: SystemBus
        do {
            systemBus = try SystemBus(address: address)
        } catch {
            throw fatal("cannot reach the system bus at \(address): \(error)")
        }
        let metrics = MedicMetrics()
        let audit = MeteredAuditSink(inner: JournalMirror(store: store), metrics: metrics)
        let recovery = try await IncidentRecovery(store: store, manager: SystemdManager(bus: systemBus))
        var records = [AuditRecord(
            kind: .daemon,
            message: "medicd started (pid \(getpid())) with \(directory.playbooks.count) playbooks from \(playbooks)" + (dryRun ? ", dry-run" : ""),
            details: ["pid": String(getpid()), "descriptors": String(descriptors), "config": settings.file ?? "(none: built-in defaults)", "playbooks": playbooks, "state": state, "bus": address.description, "dry_run": String(dryRun),
                      "boot": recovery.boot])]
        records += recovery.records
        records += PlaybookLoading.records(for: directory, logger: logger)
        // Silences and pauses come from the chain only: what is not in it does not hold Medic.
        let holds = try store.holds(now: Timestamp.now())
        for (seq, why) in holds.ignored {
            let message = "ignored record \(seq), a silence or pause that is not part of the audit chain: \(why)"
            logger.warning("\(message)")
            records.append(AuditRecord(kind: .daemon, message: message, details: ["ignored": String(seq)]))
        }
        _ = try await audit.append(records)

        let now = Timestamp.now()
        var core = EngineCore(playbooks: directory.playbooks, settings: .init(dryRun: dryRun), firstIncidentID: try store.nextIncidentID())
        let history = try store.guardHistory(within: .seconds(86_400), now: now)
        core.restore(stepRuns: history.stepRuns, failures: history.failures)
        core.restoreHolds(silences: holds.silences.map(\.silence), paused: Set(holds.paused.keys))
        let targetCount = directory.playbooks.flatMap(\.targets).count
        let restarts = RestartNotices()
        let runner = ActionRunner(
            manager: SystemdManager(bus: systemBus), pool: PoolAction(pool: HAProxyRuntime(), held: try store.poolHolds()), journalDirectory: settings.journal,
            restarts: restarts)
        let engine = Engine(
            core: core, runner: runner, audit: audit, logger: logger,
            onChange: { status in
                Notify.status(StatusLine.text(status, targets: targetCount))
                metrics.update(status, targets: targetCount)
            })
        metrics.update(await engine.status, targets: targetCount)
        let watcher = UnitWatcher(
            manager: SystemdManager(bus: systemBus), selectors: directory.playbooks.flatMap { $0.targets.map(\.selector) },
            dependencies: directory.playbooks.flatMap { $0.targets.flatMap(\.dependsOn) }, logger: logger)

        // Every service but the supervisor is restarted in place if it ends; the supervisor
        // failing ends medicd with a non-zero status, for systemd to restart it.
        let states = DetectorStates()
        let detectors = DetectorSet(engine: engine, states: states, metrics: metrics, logger: logger, make: DetectorFactory(
            manager: SystemdManager(bus: systemBus), runtimeDirectory: runtime, journalDirectory: settings.journal, cgroupRoot: settings.cgroupRoot,
            restarts: restarts, logger: logger).make)
        let reloader = Reloader(
            source: source, running: settings, engine: engine, watcher: watcher, detectors: detectors, audit: audit, metrics: metrics, logger: logger)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: Supervisor(
                bus: systemBus, engine: engine, watcher: watcher, audit: audit, targets: targetCount, recovery: recovery, metrics: metrics,
                states: states, logger: logger)),
            .init(service: Resilient(name: "reloader", inner: reloader, states: states, engine: engine, logger: logger)),
            .init(service: Resilient(name: "control socket", inner: ControlServer(
                path: settings.controlSocketPath, group: getgrnam(settings.controlGroup)!.pointee.gr_gid,
                adminGroup: settings.adminGroup.map { getgrnam($0)!.pointee.gr_gid },
                handler: ControlHandler(engine: engine, reloader: reloader, startedAt: now), logger: logger), states: states, engine: engine, logger: logger)),
            .init(service: Resilient(name: "retention", inner: RetentionService(
                store: store, engine: engine, age: settings.retainFor, maxBytes: settings.retainSize, logger: logger), states: states, engine: engine, logger: logger)),
        ]
        services.append(.init(service: DetectorService(
            detectors: detectors, plan: DetectorPlan(playbooks: directory.playbooks, sampleInterval: settings.sampleInterval))))
        if let listen = settings.metricsListen.flatMap(ListenAddress.init) {
            if !listen.isLoopback {
                logger.warning("serving metrics without authentication on \(listen.host):\(listen.port), reachable from other hosts (metrics.public)")
            }
            services.append(.init(service: Resilient(
                name: "metrics listener", inner: MetricsServer(address: listen, metrics: metrics, engine: engine, logger: logger), states: states, engine: engine, logger: logger)))
        }
        if let interval = Notify.watchdogInterval() {
            logger.info("systemd watchdog enabled: pinging every \(interval / 2)")
            services.append(.init(service: WatchdogPinger(interval: interval, engine: engine, states: states, logger: logger)))
        }
        let group = ServiceGroup(configuration: .init(
            services: services,
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        do {
            try await group.run()
        } catch {
            // A service gave up, or the group could not run: medicd exits non-zero, even if a
            // service does not stop.
            logger.critical("medicd stops: \(error)")
            FatalExit.arm(after: .seconds(10))
            throw ExitCode(1)
        }
    }

    /// Says why medicd cannot start, on stderr, and gives the exit code for it.
    private func fatal(_ message: String) -> ExitCode {
        FileHandle.standardError.write(Data("medicd: \(message)\n".utf8))
        return ExitCode(1)
    }
}
