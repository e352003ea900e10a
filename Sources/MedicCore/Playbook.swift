/// A validated playbook: which units it looks after, and what to do when something happens.
public struct Playbook: Sendable, Equatable {
    /// The playbook's name (`playbook:`).
    public var name: String
    /// The file it was loaded from.
    public var file: String
    /// SHA-256 of the file's bytes, so the audit log says exactly which version acted.
    public var contentHash: String
    public var targets: [Target]
    public var rules: [Rule]

    public init(name: String, file: String, contentHash: String, targets: [Target], rules: [Rule]) {
        self.name = name
        self.file = file
        self.contentHash = contentHash
        self.targets = targets
        self.rules = rules
    }

    /// The rule for a trigger, if the playbook has one.
    public func rule(for trigger: TriggerName) -> Rule? {
        rules.first { $0.trigger == trigger }
    }
}

/// A unit a playbook looks after.
public struct Target: Sendable, Equatable, Hashable {
    /// The systemd unit name, e.g. `web.service`.
    public var unit: String

    public init(unit: String) { self.unit = unit }
}

/// "When this happens, do these steps."
public struct Rule: Sendable, Equatable {
    public var trigger: TriggerName
    public var steps: [Step]

    public init(trigger: TriggerName, steps: [Step]) {
        self.trigger = trigger
        self.steps = steps
    }
}

/// One step of a plan.
public enum Step: Sendable, Equatable, CustomStringConvertible {
    /// Restart the unit and wait until it is active again, failing after `timeout`.
    case restart(timeout: Duration)
    /// Wait (up to `timeout`) for the unit to be active, then require it to stay active for
    /// `activeFor`.
    case verify(activeFor: Duration, timeout: Duration)

    /// The step's name as written in playbooks.
    public var name: String {
        switch self {
        case .restart: "restart"
        case .verify: "verify"
        }
    }

    public var description: String {
        switch self {
        case .restart(let timeout): "restart (timeout \(DurationText.format(timeout)))"
        case .verify(let activeFor, let timeout):
            "verify (active for \(DurationText.format(activeFor)), within \(DurationText.format(timeout)))"
        }
    }
}
