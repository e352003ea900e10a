/// What a rule's `when:` says, parsed: triggers (events that open an incident) combined with
/// `and`, `or`, `not` and comparisons against the target's history and the host's state.
public indirect enum Condition: Sendable, Equatable, CustomStringConvertible {
    case trigger(Trigger)
    case compare(Metric, Comparison, Double, within: Duration?)
    case not(Condition)
    case and(Condition, Condition)
    case or(Condition, Condition)

    /// The triggers this condition can be set off by (those not under a `not`).
    public var triggers: [Trigger] {
        switch self {
        case .trigger(let trigger): [trigger]
        case .compare, .not: []
        case .and(let a, let b), .or(let a, let b): a.triggers + b.triggers
        }
    }

    public var description: String {
        switch self {
        case .trigger(let t): t.description
        case .compare(let m, let c, let v, let w):
            "\(m.rawValue) \(c.rawValue) \(m.format(v))" + (w.map { " in \(DurationText.format($0))" } ?? "")
        case .not(let c): "not \(c)"
        case .and(let a, let b): "(\(a) and \(b))"
        case .or(let a, let b): "(\(a) or \(b))"
        }
    }
}

/// An event that can open an incident.
public enum Trigger: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// The unit crashed; nil kinds means any kind.
    case crashed(Set<CrashKind>?)
    /// Its probe failed enough times in a row.
    case unhealthy
    case heartbeatMissed
    /// The last watchdog ping is older than a share of WatchdogSec.
    case heartbeatLate
    /// A resource limit held for its duration.
    case limit(ResourceLimit)
    /// A line of the unit's journal matched this pattern.
    case journal(String)
    /// A fleet peer is down, on corroborated evidence (its lease expired, no peer reaches it).
    case hostDown
    /// A fleet peer lost etcd but is alive: a peer reaches it.
    case hostIsolated
    /// A fleet peer that was down or isolated is back and answers its probe.
    case hostReturned
    /// Prometheus Alertmanager says this alert fires for the target.
    case alert(AlertRule)

    /// The trigger's name as written.
    public var name: String {
        switch self {
        case .crashed: "crashed"
        case .unhealthy: "unhealthy"
        case .heartbeatMissed: "heartbeat-missed"
        case .heartbeatLate: "heartbeat-late"
        case .limit: "limit"
        case .journal: "journal"
        case .hostDown: "host-down"
        case .hostIsolated: "host-isolated"
        case .hostReturned: "host-returned"
        case .alert: "alert"
        }
    }

    public var description: String {
        switch self {
        case .crashed(let kinds?): "crashed(\(kinds.map(\.rawValue).sorted().joined(separator: ", ")))"
        case .limit(let limit): limit.description
        case .journal(let pattern): "journal \"\(pattern)\""
        case .alert(let rule): rule.description
        default: name
        }
    }

    /// The trigger names, for messages.
    public static let names = ["crashed", "unhealthy", "heartbeat-missed", "heartbeat-late", "host-down", "host-isolated", "host-returned", "journal", "alert", "memory", "cpu", "fds", "tasks", "disk", "memory.pressure", "cpu.pressure", "io.pressure"]
}

/// A resource limit: `memory > 1.5GiB for 1m`, `cpu > 90% for 5m`, `fds > 90%`, `disk / > 95%`.
public struct ResourceLimit: Sendable, Equatable, Hashable, CustomStringConvertible {
    public enum Resource: Sendable, Equatable, Hashable {
        case memory, cpu, fds, tasks
        case disk(path: String)
        /// The share of time some tasks stalled waiting for the resource (PSI `some avg10`):
        /// `memory.pressure > 20%`.
        case pressure(Pressure)
    }

    /// What a pressure limit looks at: the kernel's pressure stall information files.
    public enum Pressure: String, Sendable, Equatable, Hashable, CaseIterable {
        case memory, cpu, io

        /// The limit's name, and its file in a cgroup: `memory.pressure`.
        public var name: String { rawValue + ".pressure" }
    }

    public var resource: Resource
    public var comparison: Comparison
    /// Bytes for sizes, a fraction (0.9) for percentages, a plain count otherwise.
    public var threshold: Double
    public var isPercentage: Bool
    /// How long it must hold before it fires.
    public var holdFor: Duration?

    public init(resource: Resource, comparison: Comparison, threshold: Double, isPercentage: Bool, holdFor: Duration?) {
        self.resource = resource
        self.comparison = comparison
        self.threshold = threshold
        self.isPercentage = isPercentage
        self.holdFor = holdFor
    }

    public var name: String {
        switch resource {
        case .memory: "memory"
        case .cpu: "cpu"
        case .fds: "fds"
        case .tasks: "tasks"
        case .disk(let path): "disk \(path)"
        case .pressure(let pressure): pressure.name
        }
    }

    public var description: String {
        let value = isPercentage ? Quantity.formatPercent(threshold)
            : resource == .memory ? Quantity.formatSize(threshold) : Quantity.formatCount(threshold)
        return "\(name) \(comparison.rawValue) \(value)" + (holdFor.map { " for \(DurationText.format($0))" } ?? "")
    }
}

/// `>`, `>=`, `<`, `<=`.
public enum Comparison: String, Sendable, Equatable, Hashable, CaseIterable {
    case greater = ">", greaterOrEqual = ">=", less = "<", lessOrEqual = "<="

    public func holds(_ value: Double, _ threshold: Double) -> Bool {
        switch self {
        case .greater: value > threshold
        case .greaterOrEqual: value >= threshold
        case .less: value < threshold
        case .lessOrEqual: value <= threshold
        }
    }
}

/// What a comparison in a condition can look at.
public enum Metric: String, Sendable, Equatable, Hashable, CaseIterable {
    /// Restarts of the target (by Medic) in the window.
    case restarts
    /// Failed plans on the target in the window.
    case failures
    /// The host's memory, CPU and IO pressure (PSI some avg10), as percentages.
    case hostMemoryPressure = "host.pressure.memory"
    case hostCPUPressure = "host.pressure.cpu"
    case hostIOPressure = "host.pressure.io"
    /// The host's 1-minute load average.
    case hostLoad = "host.load"

    /// Whether it counts events in a window (and needs `in DURATION`).
    public var isCount: Bool { self == .restarts || self == .failures }
    public var isPercentage: Bool { rawValue.hasPrefix("host.pressure") }

    public func format(_ value: Double) -> String {
        isPercentage ? Quantity.formatPercent(value) : Quantity.formatCount(value)
    }
}
