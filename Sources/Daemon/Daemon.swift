import Actions
import Audit
import Detectors
import Engine
import Foundation
import Glibc
import Logging
import MedicCore
import Playbooks
import ServiceLifecycle
import Systemd

/// medicd assembled from its settings: the audit log opened, the engine restored from it, the
/// bus reached, and every service that runs under the `ServiceGroup`. Every service but the
/// supervisor is restarted in place if it ends (`Resilient`); the supervisor failing ends
/// medicd with a non-zero status, for systemd to restart it.
public struct Daemon: Sendable {
    /// The services, in the order they start.
    public let services: [ServiceGroupConfiguration.ServiceConfiguration]

    /// Why medicd cannot start: said on stderr, and medicd exits 1.
    public struct StartError: Error, CustomStringConvertible {
        public var description: String
        init(_ description: String) { self.description = description }
    }

    /// Loads the settings from `source`, opens what they name and assembles the services.
    public init(source: SettingsSource, logger: Logger) async throws(StartError) {
        let descriptors = DescriptorLimit.raise()
        let settings: DaemonConfig
        switch source.load() {
        case .failure(let diagnostics): throw StartError("the config is invalid:\n\(diagnostics)")
        case .success(let loaded): settings = loaded
        }
        if let fleet = settings.fleet {
            do {
                _ = try FleetSetup.secrets(fleet)
            } catch {
                throw StartError("\(error)")
            }
        }
        let directory: PlaybookDirectory, store: AuditStore, systemBus: SystemBus
        do {
            directory = try PlaybookDirectory.load(settings.playbooks, defaults: settings.defaults)
        } catch {
            throw StartError("\(error)")
        }
        do {
            store = try AuditStore(stateDirectory: settings.state)
        } catch {
            throw StartError("cannot open the audit log in \(settings.state): \(error)")
        }
        let address: BusAddress = settings.bus.map { .address($0) } ?? .system
        do {
            systemBus = try SystemBus(address: address)
        } catch {
            throw StartError("cannot reach the system bus at \(address): \(error)")
        }
        do {
            services = try await Self.assemble(
                settings: settings, source: source, directory: directory, store: store, systemBus: systemBus, descriptors: descriptors, logger: logger)
        } catch {
            throw StartError("cannot start: \(error)")
        }
    }

    private static func assemble(
        settings: DaemonConfig, source: SettingsSource, directory: PlaybookDirectory, store: AuditStore, systemBus: SystemBus,
        descriptors: UInt, logger: Logger
    ) async throws -> [ServiceGroupConfiguration.ServiceConfiguration] {
        let metrics = MedicMetrics()
        let fleet = try settings.fleet.map { try FleetSetup($0, metrics: metrics) }
        let metered = MeteredAuditSink(inner: JournalMirror(store: store), metrics: metrics)
        let audit: AuditSink = fleet.map { TellingAuditSink(inner: metered, acts: $0.acts) } ?? metered
        let recovery = try await IncidentRecovery(store: store, manager: SystemdManager(bus: systemBus))
        // Silences and pauses come from the chain only: what is not in it does not hold Medic.
        let holds = try store.holds(now: Timestamp.now())
        _ = try await audit.append(
            startRecords(settings: settings, directory: directory, descriptors: descriptors, recovery: recovery, logger: logger)
                + holds.ignored.map { seq, why in
                    let message = "ignored record \(seq), a silence or pause that is not part of the audit chain: \(why)"
                    logger.warning("\(message)")
                    return AuditRecord(kind: .daemon, message: message, details: ["ignored": String(seq)])
                })

        let now = Timestamp.now()
        var core = EngineCore(playbooks: directory.playbooks, settings: .init(dryRun: settings.dryRun), firstIncidentID: try store.nextIncidentID())
        let history = try store.guardHistory(within: .seconds(86_400), now: now)
        core.restore(stepRuns: history.stepRuns, failures: history.failures)
        core.restoreHolds(silences: holds.silences.map(\.silence), paused: Set(holds.paused.keys))
        let targetCount = directory.playbooks.flatMap(\.targets).count
        let restarts = RestartNotices()
        let runner = ActionRunner(
            manager: SystemdManager(bus: systemBus), pool: PoolAction(pool: Balancers(), held: try store.poolHolds()),
            journalDirectory: settings.journal, restarts: restarts, budgets: fleet?.budgets,
            poolHolds: fleet?.poolHolds)
        let engine = Engine(
            core: core, runner: runner, audit: audit, logger: logger,
            onChange: { status in
                Notify.status(StatusLine.text(status, targets: targetCount))
                metrics.update(status, targets: targetCount)
            })
        metrics.update(await engine.status, targets: targetCount)
        let plan = DetectorPlan(playbooks: directory.playbooks, sampleInterval: settings.sampleInterval, fleet: settings.fleet)
        let watcher = UnitWatcher(manager: SystemdManager(bus: systemBus), units: plan.units, logger: logger)
        let states = DetectorStates()
        let limitWatches = LimitWatchBoard()
        let started = Gate()
        let detectors = DetectorSet(engine: engine, states: states, metrics: metrics, logger: logger, make: DetectorFactory(
            manager: SystemdManager(bus: systemBus), runtimeDirectory: settings.runtime, journalDirectory: settings.journal,
            cgroupRoot: settings.cgroupRoot, restarts: restarts, fleet: fleet, limitWatches: limitWatches, started: started, logger: logger).make)
        let reloader = Reloader(
            source: source, running: settings, engine: engine, watcher: watcher, detectors: detectors, audit: audit, metrics: metrics, logger: logger)
        func resilient(_ name: String, _ service: some Service) -> ServiceGroupConfiguration.ServiceConfiguration {
            .init(service: Resilient(name: name, inner: service, states: states, engine: engine, logger: logger))
        }
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: Supervisor(
                bus: systemBus, engine: engine, watcher: watcher, audit: audit, targets: targetCount, recovery: recovery, metrics: metrics,
                states: states, started: started, logger: logger)),
            resilient("reloader", reloader),
            resilient("control socket", ControlServer(
                path: settings.controlSocketPath, group: getgrnam(settings.controlGroup)!.pointee.gr_gid,
                adminGroup: settings.adminGroup.map { getgrnam($0)!.pointee.gr_gid },
                handler: ControlHandler(engine: engine, reloader: reloader, startedAt: now, fleet: fleet, limitWatches: limitWatches), logger: logger)),
            resilient("retention", RetentionService(store: store, engine: engine, age: settings.retainFor, maxBytes: settings.retainSize, logger: logger)),
            .init(service: DetectorService(detectors: detectors, plan: plan)),
            .init(service: HeapRelease(started: started, releaseCaches: store.releaseMemory, logger: logger)),
        ]
        if let listen = settings.metricsListen.flatMap(ListenAddress.init) {
            if !listen.isLoopback {
                logger.warning("serving metrics without authentication on \(listen.host):\(listen.port), reachable from other hosts (metrics.public)")
            }
            services.append(resilient("metrics listener", HTTPListener.metrics(metrics, address: listen, engine: engine, logger: logger)))
        }
        if settings.alertmanager == nil, let playbook = directory.playbooks.first(where: \.hasAlertRule) {
            logger.warning("playbook \(playbook.name) has alert triggers, but the config has no 'alertmanager:' section: Alertmanager's webhook is not received, and they will not fire")
        }
        if let alerts = settings.alertmanager {
            // The alerts recorded in the last week: their repeats after a restart open nothing.
            let recorded: @Sendable () -> [String] = { (try? store.alertKeys(sinceWallMicroseconds: Timestamp.now().wallMicroseconds - 7 * 86_400_000_000)) ?? [] }
            let listener = try AlertReceiver.listener(alerts, recorded: recorded, engine: engine, metrics: metrics, logger: logger)
            services.append(resilient("alertmanager listener", listener))
        }
        if let fleet {
            services.append(resilient("fleet membership", fleet.member(playbooks: directory.playbooks, engine: engine, logger: logger)))
            if let health = fleet.health(engine: engine, logger: logger) { services.append(resilient("fleet health listener", health)) }
            services.append(resilient("fleet budgets", BudgetKeeper(slots: fleet.budgets, store: store, engine: engine, logger: logger)))
        }
        if let interval = Notify.watchdogInterval() {
            logger.info("systemd watchdog enabled: pinging every \(interval / 2)")
            services.append(.init(service: WatchdogPinger(interval: interval, engine: engine, states: states, logger: logger)))
        }
        return services
    }

    /// What medicd records as it starts: itself, the incidents a crash or reboot left open, and
    /// the playbooks it loaded or refused.
    private static func startRecords(
        settings: DaemonConfig, directory: PlaybookDirectory, descriptors: UInt, recovery: IncidentRecovery, logger: Logger
    ) -> [AuditRecord] {
        let pid = String(getpid())
        let started = AuditRecord(
            kind: .daemon,
            message: "medicd started (pid \(pid)) with \(directory.playbooks.count) playbooks from \(settings.playbooks)" + (settings.dryRun ? ", dry-run" : ""),
            details: [
                "pid": pid, "descriptors": String(descriptors), "config": settings.file ?? "(none: built-in defaults)", "playbooks": settings.playbooks,
                "state": settings.state, "bus": (settings.bus.map { BusAddress.address($0) } ?? .system).description,
                AuditFact.dryRun.name: String(settings.dryRun), AuditFact.boot.name: recovery.boot,
            ])
        return [started] + recovery.records + PlaybookLoading.records(for: directory, logger: logger)
    }
}
