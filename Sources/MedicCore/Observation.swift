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
        /// The target's state changed (ActiveState/SubState), for the record.
        case stateChanged
    }

    /// The unit the observation is about.
    public var target: String
    public var kind: Kind
    /// When it was seen.
    public var time: Timestamp
    /// What systemd said, as `Key=value` pairs, for the audit log.
    public var facts: [String: String]
    /// A one-line human summary: `main process killed by signal 9 (SIGKILL)`.
    public var summary: String

    public init(target: String, kind: Kind, time: Timestamp, facts: [String: String], summary: String) {
        self.target = target
        self.kind = kind
        self.time = time
        self.facts = facts
        self.summary = summary
    }

    /// The trigger name a playbook uses for this observation, if it can trigger one.
    public var trigger: TriggerName? {
        if case .crashed = kind { return .crashed }
        return nil
    }
}

/// Names of the conditions a playbook can react to.
public enum TriggerName: String, Sendable, Codable, CaseIterable {
    case crashed
}
