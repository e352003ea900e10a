import MedicCore

/// One detector the playbooks need, with everything that defines it: two specs with the same
/// `key` and equal values are the same detector, which a reload keeps running (a probe keeps
/// its counts); a changed one is restarted, a gone one stopped.
public enum DetectorSpec: Sendable, Equatable {
    /// One target's probe.
    case probe(unit: String, Probe)
    /// The heartbeat socket, for these targets.
    case heartbeats([String: Heartbeat])
    /// The journal, followed for these patterns per unit.
    case journal([String: [String]])
    /// The early warning on systemd watchdogs of these units (`heartbeat-late`).
    case watchdogLate([String])
    /// Resource sampling: limits per unit and on the host, every `interval`.
    case resources(units: [String: [ResourceLimit]], host: [ResourceLimit], interval: Duration)
    /// The fleet's other hosts, watched in etcd (`host-down`, `host-isolated`, `host-returned`).
    case fleet(FleetConfig)

    /// Its identity across reloads, and its name in logs, metrics and the watchdog's checks.
    public var key: String {
        switch self {
        case .probe(let unit, _): "probe \(unit)"
        case .heartbeats: "heartbeats"
        case .journal: "journal"
        case .watchdogLate: "watchdog-late"
        case .resources: "resources"
        case .fleet: "fleet"
        }
    }
}

/// The units the unit watcher follows over the bus: the targets' selectors, and the units
/// they depend on (watched for their health only).
public struct WatchedUnits: Sendable, Equatable {
    public var selectors: [TargetSelector]
    public var dependencies: [String]

    public init(selectors: [TargetSelector], dependencies: [String]) {
        self.selectors = selectors
        self.dependencies = dependencies
    }
}

/// What a set of playbooks watches: worked out in this one place from the playbooks (and the
/// sampling interval), a plain value, recomputed on every reload. The unit watcher (bus
/// signals) always runs, on `units`; every other detector is one of `specs`.
public struct DetectorPlan: Sendable, Equatable {
    /// The units followed over the bus.
    public var units: WatchedUnits
    /// In a stable order: probes by unit, then the shared detectors.
    public var specs: [DetectorSpec]

    /// `fleet`: this host's fleet, if it has one; its peers are watched whatever the playbooks.
    public init(playbooks: [Playbook], sampleInterval: Duration, fleet: FleetConfig? = nil) {
        let targets = playbooks.flatMap(\.targets)
        units = WatchedUnits(
            selectors: targets.map(\.selector).filter { if case .unit = $0 { true } else { false } }, dependencies: targets.flatMap(\.dependsOn))
        // Only named units: a glob's probe, heartbeat or pattern has no single unit to watch.
        func named(_ spec: TargetSpec) -> String? {
            if case .unit(let unit) = spec.selector, !spec.selector.isPattern { unit } else { nil }
        }
        var probes: [String: Probe] = [:]
        var heartbeats: [String: Heartbeat] = [:]
        for spec in targets {
            guard let unit = named(spec) else { continue }
            if let probe = spec.probe { probes[unit] = probe }
            if let heartbeat = spec.heartbeat { heartbeats[unit] = heartbeat }
        }
        var patterns: [String: [String]] = [:]
        var late: Set<String> = []
        var unitLimits: [String: Set<ResourceLimit>] = [:]
        var hostLimits: Set<ResourceLimit> = []
        for playbook in playbooks {
            let triggers = playbook.rules.flatMap(\.condition.triggers)
            let journal = triggers.compactMap { if case .journal(let text) = $0 { text } else { nil } }
            let limits = triggers.compactMap { if case .limit(let limit) = $0 { limit } else { nil } }
            for spec in playbook.targets {
                if case .host = spec.selector { hostLimits.formUnion(spec.limits + limits) }
                guard let unit = named(spec) else { continue }
                if !journal.isEmpty { patterns[unit, default: []] += journal }
                if triggers.contains(.heartbeatLate) { late.insert(unit) }
                if !(spec.limits + limits).isEmpty { unitLimits[unit, default: []].formUnion(spec.limits + limits) }
            }
        }
        specs = probes.keys.sorted().map { DetectorSpec.probe(unit: $0, probes[$0]!) }
        if !heartbeats.isEmpty { specs.append(.heartbeats(heartbeats)) }
        if !patterns.isEmpty { specs.append(.journal(patterns)) }
        if !late.isEmpty { specs.append(.watchdogLate(late.sorted())) }
        if !unitLimits.isEmpty || !hostLimits.isEmpty {
            // Units with the same limits share one list (10,000 units, one playbook: one list).
            var lists: Set<[ResourceLimit]> = []
            specs.append(.resources(
                units: unitLimits.mapValues { lists.insert($0.sorted { $0.description < $1.description }).memberAfterInsert },
                host: hostLimits.sorted { $0.description < $1.description }, interval: sampleInterval))
        }
        if let fleet { specs.append(.fleet(fleet)) }
    }
}
