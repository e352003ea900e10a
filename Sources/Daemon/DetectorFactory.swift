import Detectors
import Logging
import MedicCore
import Systemd

/// Builds the detector for each `DetectorSpec`, with what medicd gives every detector: the
/// bus, the runtime and journal directories, the cgroup root, and the notices of restarts
/// (after which a probe counts afresh). Probes share one bound on how many run at once.
struct DetectorFactory: Sendable {
    let manager: SystemdManager
    let runtimeDirectory: String
    let journalDirectory: String?
    let cgroupRoot: String?
    let restarts: RestartNotices
    /// This host's fleet, if it has one.
    let fleet: FleetSetup?
    /// How the resource watcher watches each limit, for `medic status`.
    let limitWatches: LimitWatchBoard
    /// Opens once medicd is ready: the resource watcher's first round waits for it.
    let started: Gate
    let logger: Logger
    private let probeLimit = ConcurrencyLimit(32)

    init(
        manager: SystemdManager, runtimeDirectory: String, journalDirectory: String?, cgroupRoot: String?, restarts: RestartNotices, fleet: FleetSetup?,
        limitWatches: LimitWatchBoard, started: Gate, logger: Logger
    ) {
        self.started = started
        self.limitWatches = limitWatches
        self.fleet = fleet
        self.manager = manager
        self.runtimeDirectory = runtimeDirectory
        self.journalDirectory = journalDirectory
        self.cgroupRoot = cgroupRoot
        self.restarts = restarts
        self.logger = logger
    }

    func make(_ spec: DetectorSpec) -> any Detector {
        switch spec {
        case .probe(let unit, let probe):
            ProbeRunner(probes: [(unit, probe)], limiter: probeLimit, restarts: restarts, logger: logger)
        case .heartbeats(let targets):
            HeartbeatDetector(runtimeDirectory: runtimeDirectory, targets: targets, logger: logger)
        case .journal(let patterns):
            JournalWatcher(patterns: patterns, directory: journalDirectory, logger: logger)
        case .watchdogLate(let units):
            WatchdogLateMonitor(manager: manager, units: units, logger: logger)
        case .resources(let units, let host, let interval):
            ResourceWatcher(
                manager: manager, unitLimits: units, hostLimits: host, interval: interval,
                sampler: cgroupRoot.map { UnitSampler(unifiedRoot: $0) } ?? UnitSampler(), board: limitWatches, firstRound: started, logger: logger)
        case .fleet:
            // The plan has a fleet spec only when the config has a fleet, and so medicd a setup.
            fleet!.liveness
        }
    }
}
