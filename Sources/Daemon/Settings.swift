import Foundation
import MedicCore
import Playbooks

/// The flags given on medicd's command line; each one set overrides the config file.
public struct FlagOverrides: Sendable {
    public var playbooks: String?
    public var state: String?
    public var runtime: String?
    public var journal: String?
    public var bus: String?
    public var dryRun = false
    public var controlSocket: String?
    public var controlGroup: String?
    public var adminGroup: String?
    /// `HOST:PORT`, or `off`.
    public var metricsListen: String?
    /// `--metrics-public`: a non-loopback `metricsListen` is meant.
    public var metricsPublic = false
    public var sampleInterval: Duration?
    public var cgroupRoot: String?
    public var retainFor: Duration?
    public var retainSize: Int64?

    public init(
        playbooks: String? = nil, state: String? = nil, runtime: String? = nil, journal: String? = nil, bus: String? = nil, dryRun: Bool = false,
        controlSocket: String? = nil, controlGroup: String? = nil, adminGroup: String? = nil, metricsListen: String? = nil,
        metricsPublic: Bool = false, cgroupRoot: String? = nil
    ) {
        self.playbooks = playbooks
        self.state = state
        self.runtime = runtime
        self.journal = journal
        self.bus = bus
        self.dryRun = dryRun
        self.controlSocket = controlSocket
        self.controlGroup = controlGroup
        self.adminGroup = adminGroup
        self.metricsListen = metricsListen
        self.metricsPublic = metricsPublic
        self.cgroupRoot = cgroupRoot
    }

    func apply(to config: inout DaemonConfig) {
        if let playbooks { config.playbooks = playbooks }
        if let state { config.state = state }
        if let runtime { config.runtime = runtime }
        if let journal { config.journal = journal }
        if let bus { config.bus = bus }
        if dryRun { config.dryRun = true }
        if let controlSocket { config.controlSocket = controlSocket }
        if let controlGroup { config.controlGroup = controlGroup }
        if let adminGroup { config.adminGroup = adminGroup }
        if let metricsListen { config.metricsListen = metricsListen == "off" ? nil : metricsListen }
        if metricsPublic { config.metricsPublic = true }
        if let sampleInterval { config.sampleInterval = sampleInterval }
        if let cgroupRoot { config.cgroupRoot = cgroupRoot }
        if let retainFor { config.retainFor = retainFor }
        if let retainSize { config.retainSize = retainSize }
    }
}

/// Where medicd's settings come from: the config file (when there is one), then the flags.
public struct SettingsSource: Sendable {
    /// The config file; nil when none is used.
    public let file: String?
    public let flags: FlagOverrides

    /// `--config PATH` must exist; the default path is used only when it exists.
    public init(configFlag: String?, flags: FlagOverrides) {
        self.flags = flags
        file = DaemonConfig.file(given: configFlag)
    }

    /// The settings in effect: the file validated, then the flags over it.
    public func load() -> Result<DaemonConfig, Diagnostics> {
        var config = DaemonConfig()
        if let file {
            switch ConfigParser.parse(file: file) {
            case .failure(let diagnostics): return .failure(diagnostics)
            case .success(let read): config = read
            }
        }
        flags.apply(to: &config)
        return .success(config)
    }
}

extension DaemonConfig {
    /// The settings a reload cannot change (paths, listeners, sampling, retention): what
    /// differs between `self` and `other`, by name.
    func restartOnlyChanges(from other: DaemonConfig) -> [String] {
        var changed: [String] = []
        func check<T: Equatable>(_ name: String, _ key: KeyPath<DaemonConfig, T>) {
            if self[keyPath: key] != other[keyPath: key] { changed.append(name) }
        }
        check("playbooks", \.playbooks)
        check("state", \.state)
        check("runtime", \.runtime)
        check("journal", \.journal)
        check("bus", \.bus)
        check("control", \.controlSocket)
        check("control.group", \.controlGroup)
        check("control.admin_group", \.adminGroup)
        check("metrics.listen", \.metricsListen)
        check("metrics.public", \.metricsPublic)
        check("sampling", \.sampleInterval)
        check("sampling.cgroup_root", \.cgroupRoot)
        check("retention.keep_for", \.retainFor)
        check("retention.max_size", \.retainSize)
        check("fleet", \.fleet)
        check("alertmanager", \.alertmanager)
        return changed
    }
}
