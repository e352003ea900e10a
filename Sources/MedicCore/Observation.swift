/// How a service crashed, from systemd's `Result=` of the service.
public enum CrashKind: String, Sendable, Codable, CaseIterable {
    /// The main process exited with a non-zero status.
    case exitCode = "exit-code"
    /// The main process was killed by a signal.
    case signal
    /// The main process dumped core.
    case coreDump = "core-dump"
    /// The kernel's or systemd-oomd's OOM killer killed it.
    case oomKill = "oom-kill"
    /// systemd's watchdog fired: the service stopped pinging (a hang).
    case watchdog
    /// systemd gave up starting it (StartLimitBurst reached).
    case startLimitHit = "start-limit-hit"
    /// A start, stop or runtime timeout.
    case timeout
    /// Any other non-success result (`resources`, `protocol`, `exec-condition`, …).
    case other

    /// Maps systemd's `Result=` value; nil for `success`.
    public init?(systemdResult result: String) {
        if result == "success" || result.isEmpty { return nil }
        self = CrashKind(rawValue: result) ?? .other
    }
}

/// One thing a detector saw, typed and timestamped.
public struct Observation: Sendable, Equatable {
    /// What was seen.
    public enum Kind: Sendable, Equatable {
        /// The target's main process is gone for a reason other than a clean stop.
        case crashed(CrashKind)
        /// The target's state changed (ActiveState/SubState in the facts).
        case stateChanged
        /// Someone else (an operator, a deploy) had systemd stop or restart the target: recorded,
        /// remediated by nobody. The job type is given.
        case stoppedByRequest(String)
        /// The target's probe failed / passed enough times in a row.
        case unhealthy
        case healthy
        case heartbeatMissed
        /// Heartbeats arrive again after being missed.
        case heartbeatResumed
        case heartbeatLate
        /// A resource limit held for its duration.
        case limitExceeded(ResourceLimit)
        /// A limit that was exceeded is back under its threshold (with hysteresis).
        case limitCleared(ResourceLimit)
        /// A journal line matched a pattern.
        case journalMatched(String)
        /// A fleet peer is down, isolated, or back (see `FleetLiveness`).
        case hostDown
        case hostIsolated
        case hostReturned
        /// What this host saw of a fleet peer that opens nothing (another peer acts, a blip).
        case fleetNote
        /// Alertmanager says an alert (by name) fires for the target, or is resolved. Its labels
        /// are in the facts as `label.NAME`.
        case alertFiring(String)
        case alertResolved(String)

        /// A short stable name for the kind, as recorded (`observed`) and in metrics.
        public var label: String {
            switch self {
            case .crashed: "crashed"
            case .stateChanged: "state-changed"
            case .stoppedByRequest: "stopped-by-request"
            case .unhealthy: "unhealthy"
            case .healthy: "healthy"
            case .heartbeatMissed: "heartbeat-missed"
            case .heartbeatResumed: "heartbeat-resumed"
            case .heartbeatLate: "heartbeat-late"
            case .limitExceeded: "limit-exceeded"
            case .limitCleared: "limit-cleared"
            case .journalMatched: "journal-matched"
            case .hostDown: "host-down"
            case .hostIsolated: "host-isolated"
            case .hostReturned: "host-returned"
            case .fleetNote: "fleet-note"
            case .alertFiring: "alert-firing"
            case .alertResolved: "alert-resolved"
            }
        }
    }

    /// The target the observation is about (a unit name, or `host`).
    public var target: String
    public var kind: Kind
    /// When it was seen.
    public var time: Timestamp
    /// When it happened, if the source says (e.g. systemd's ExecMainExitTimestamp).
    public var occurred: Timestamp?
    /// What the source said, as `Key=value` pairs, for the audit log.
    public var facts: [String: String]
    /// A one-line human summary: `main process killed by signal 9 (SIGKILL)`.
    public var summary: String
    /// The pool servers the target serves as, when the observation brings them (a fleet peer's
    /// registration): a pool step of the incident it opens acts on these.
    public var pools: [PoolMembership]

    public init(
        target: String, kind: Kind, time: Timestamp, occurred: Timestamp? = nil, facts: [String: String], summary: String, pools: [PoolMembership] = []
    ) {
        self.target = target
        self.kind = kind
        self.time = time
        self.occurred = occurred
        self.facts = facts
        self.summary = summary
        self.pools = pools
    }

    /// Whether this observation is the event `trigger` describes.
    public func matches(_ trigger: Trigger) -> Bool {
        switch (kind, trigger) {
        case (.crashed(let kind), .crashed(let kinds)): kinds?.contains(kind) ?? true
        case (.unhealthy, .unhealthy), (.heartbeatMissed, .heartbeatMissed), (.heartbeatLate, .heartbeatLate),
             (.hostDown, .hostDown), (.hostIsolated, .hostIsolated), (.hostReturned, .hostReturned):
            true
        case (.limitExceeded(let seen), .limit(let limit)): seen == limit
        case (.journalMatched(let seen), .journal(let pattern)): seen == pattern
        case (.alertFiring, .alert(let rule)): rule.matches(alertLabels)
        default: false
        }
    }

    /// An alert's labels, from the facts (`label.NAME`).
    public var alertLabels: [String: String] {
        var labels: [String: String] = [:]
        for (key, value) in facts where key.hasPrefix(Self.labelPrefix) { labels[String(key.dropFirst(Self.labelPrefix.count))] = value }
        return labels
    }

    /// Where an alert's labels are kept in the facts.
    public static let labelPrefix = "label."

    /// What a health verdict is about. A target is healthy when its unit is up, its probe
    /// passes and its heartbeats arrive (those of the three that it has), and no alert about it
    /// fires.
    public enum HealthAspect: Sendable, Hashable {
        case unit, probe, heartbeat, limit
        /// One alert (by name): firing is unhealthy until Alertmanager says it is resolved.
        case alert(String)
    }

    /// Which aspect of health this observation speaks of.
    public var healthAspect: HealthAspect {
        switch kind {
        case .unhealthy, .healthy: .probe
        case .heartbeatMissed, .heartbeatResumed: .heartbeat
        case .limitExceeded, .limitCleared: .limit
        case .alertFiring(let name), .alertResolved(let name): .alert(name)
        default: .unit
        }
    }

    /// What the observation says of the target's health: true healthy, false unhealthy, nil
    /// nothing either way.
    public var health: Bool? {
        switch kind {
        case .crashed, .unhealthy, .heartbeatMissed, .hostDown, .alertFiring: return false
        case .healthy, .heartbeatResumed, .limitCleared, .hostReturned, .alertResolved: return true
        case .limitExceeded: return false
        case .stateChanged, .stoppedByRequest:
            switch facts["ActiveState"] {
            case "active", "reloading": return facts["SubState"] == "auto-restart" ? false : true
            case "failed", "inactive", "deactivating", "activating": return false
            default: return nil
            }
        case .heartbeatLate, .journalMatched, .hostIsolated, .fleetNote: return nil
        }
    }
}
