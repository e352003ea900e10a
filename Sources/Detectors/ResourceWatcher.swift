import Logging
import MedicCore
import Systemd

/// Samples the resources of the units and the host that have limits, every `interval`, and
/// turns limits held for their duration into observations (through `LimitTracker`).
public struct ResourceWatcher: Sendable {
    public let unitLimits: [String: [ResourceLimit]]
    public let hostLimits: [ResourceLimit]
    public let interval: Duration
    private let manager: SystemdManager
    private let sampler: UnitSampler
    private let hostSampler: HostSampler
    private let logger: Logger

    /// systemd's own accounting, read where the kernel's files do not give a figure.
    static let accounting: [UnitRead] = [.service("MemoryCurrent"), .service("CPUUsageNSec"), .service("TasksCurrent")]

    public init(
        manager: SystemdManager, unitLimits: [String: [ResourceLimit]], hostLimits: [ResourceLimit], interval: Duration,
        sampler: UnitSampler = UnitSampler(), hostSampler: HostSampler = HostSampler(), logger: Logger
    ) {
        self.manager = manager
        self.unitLimits = unitLimits
        self.hostLimits = hostLimits
        self.interval = interval
        self.sampler = sampler
        self.hostSampler = hostSampler
        self.logger = logger
    }

    public func run(deliver: @escaping @Sendable (Observation) async -> Void) async {
        var tracker = LimitTracker()
        var previous: [String: (UnitSample, ContinuousClock.Instant)] = [:]
        var previousHost: HostSample?
        var groups: [String: String] = [:]
        // Only what the limits compare is sampled; the rest once one fires, for its facts.
        let watched = unitLimits.map { unit, limits in
            (unit, limits, limits.reduce(into: UnitSampler.Figures()) { $0.formUnion(UnitSampler.Figures($1.resource)) })
        }
        let mounts = hostLimits.compactMap { if case .disk(let path) = $0.resource { path } else { nil } }
        while !Task.isCancelled {
            let started = ContinuousClock.now
            let host = hostSampler.sample(mounts: mounts)
            // Known once a unit runs (empty while it does not); it keeps its path across
            // restarts. Those not known yet are read together, in one pass over the bus.
            let unknown = unitLimits.keys.filter { groups[$0]?.isEmpty ?? true }
            if !unknown.isEmpty, let states = try? await manager.read([.service("ControlGroup")], of: unknown) {
                for (unit, state) in states { groups[unit] = state.controlGroup }
            }
            for (unit, limits, figures) in watched {
                guard let group = groups[unit], !group.isEmpty else { continue }
                var sample = sampler.sample(controlGroup: group, figures: figures)
                if figures.contains(.memory) && sample.memoryBytes == nil || figures.contains(.cpu) && sample.cpuSeconds == nil,
                   let state = try? await manager.read(Self.accounting, of: [unit])[unit] {
                    sample = sampler.sample(controlGroup: group, systemd: state, figures: figures)
                }
                let now = ContinuousClock.now
                let cpuRate = previous[unit].flatMap { old -> Double? in
                    guard let a = old.0.cpuSeconds, let b = sample.cpuSeconds, (now - old.1) > .zero else { return nil }
                    return max(0, b - a) / (now - old.1).seconds
                }
                previous[unit] = (sample, now)
                for limit in limits {
                    guard let value = Self.value(of: limit, sample: sample, cpuRate: cpuRate, host: host) else { continue }
                    let observation = tracker.evaluate(
                        target: unit, limit: limit, value: value, at: .now(),
                        facts: Self.facts(sample.filled(from: sampler.sample(controlGroup: group, figures: .all.subtracting(figures))), cpuRate: cpuRate))
                    if let observation {
                        await deliver(observation)
                    }
                }
            }
            sampler.files.endRound()
            for limit in hostLimits {
                guard let value = Self.hostValue(of: limit, host, previous: previousHost) else { continue }
                if let observation = tracker.evaluate(target: TargetSelector.hostName, limit: limit, value: value, at: .now()) {
                    await deliver(observation)
                }
            }
            previousHost = host
            try? await Task.sleep(until: started + interval, clock: .continuous)
        }
    }

    /// What an observation of a unit's limit tells about the unit besides the figure it compares.
    static func facts(_ sample: UnitSample, cpuRate: Double?) -> [String: String] {
        var facts = ["sources": sample.sources.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")]
        facts["memory_bytes"] = sample.memoryBytes.map { String(Int64($0)) }
        facts["cpu_share"] = cpuRate.map { String($0) }
        facts["tasks"] = sample.tasks.map { String(Int64($0)) }
        facts["memory_pressure"] = sample.memoryPressure.map { String($0) }
        facts["oom_kills"] = sample.oomKills.map { String(Int64($0)) }
        return facts
    }

    /// The figure a unit's limit compares: bytes, a share of one core, a count, or a share of a
    /// limit.
    static func value(of limit: ResourceLimit, sample: UnitSample, cpuRate: Double?, host: HostSample) -> Double? {
        switch limit.resource {
        case .memory:
            guard let bytes = sample.memoryBytes else { return nil }
            if limit.isPercentage { return host.memoryTotal.map { bytes / $0 } }
            return bytes
        case .cpu:
            return cpuRate
        case .fds:
            guard let fds = sample.fds else { return nil }
            if limit.isPercentage { return sample.fdLimit.map { fds / max(1, $0) } }
            return fds
        case .tasks:
            return limit.isPercentage ? nil : sample.tasks
        case .disk:
            return nil
        }
    }

    /// The figure a host limit compares.
    static func hostValue(of limit: ResourceLimit, _ host: HostSample, previous: HostSample?) -> Double? {
        switch limit.resource {
        case .memory:
            guard let total = host.memoryTotal, let available = host.memoryAvailable else { return nil }
            return limit.isPercentage ? 1 - available / total : total - available
        case .cpu:
            guard let busy = host.cpuBusy, let total = host.cpuTotal, let oldBusy = previous?.cpuBusy, let oldTotal = previous?.cpuTotal,
                  total > oldTotal else { return nil }
            return (busy - oldBusy) / (total - oldTotal)
        case .disk(let path):
            return host.disks[path]?.blocks
        case .fds:
            guard let used = host.fileHandles, let max = host.fileHandlesMax else { return nil }
            return limit.isPercentage ? used / max : used
        case .tasks:
            return nil
        }
    }
}
