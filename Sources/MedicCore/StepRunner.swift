
/// How a step ended.
public struct StepOutcome: Sendable, Equatable {
    public var succeeded: Bool
    /// One line for people: `active again, MainPID 412` or `job failed`.
    public var summary: String
    /// Facts for the audit log.
    public var details: [String: String]
    /// Set when a guard that only the runner can check (the pool's capacity) refused the step:
    /// the guard's name. The engine records it as a guard stop and escalates.
    public var refusedBy: String?

    public init(succeeded: Bool, summary: String, details: [String: String] = [:], refusedBy: String? = nil) {
        self.succeeded = succeeded
        self.summary = summary
        self.details = details
        self.refusedBy = refusedBy
    }

    public static func success(_ summary: String, _ details: [String: String] = [:]) -> StepOutcome {
        StepOutcome(succeeded: true, summary: summary, details: details)
    }

    public static func failure(_ summary: String, _ details: [String: String] = [:]) -> StepOutcome {
        StepOutcome(succeeded: false, summary: summary, details: details)
    }

    /// The step was not run because the guard named `by` forbids it.
    public static func refused(by guardName: String, _ summary: String, _ details: [String: String] = [:]) -> StepOutcome {
        StepOutcome(succeeded: false, summary: summary, details: details, refusedBy: guardName)
    }
}

/// What a step acts on and why: the target, its incident, the playbook and rule, and the
/// observation that opened the incident.
public struct StepContext: Sendable, Equatable {
    public var target: String
    public var incident: Int64
    public var playbook: Playbook
    /// The rule's condition as written (`crashed or unhealthy`).
    public var trigger: String
    /// The triggering observation's summary (may hold a log line: data, never code).
    public var observation: String
    /// What the plan has done so far in this incident, e.g. `pool maint: succeeded`.
    public var done: [String]
    /// The target's unit is down (crashed, failed, stopped) as the step starts: it serves
    /// nothing, so taking it out of its pool takes no capacity away.
    public var unitDown = false

    public init(target: String, incident: Int64, playbook: Playbook, trigger: String, observation: String, done: [String] = []) {
        self.target = target
        self.incident = incident
        self.playbook = playbook
        self.trigger = trigger
        self.observation = observation
        self.done = done
    }

    /// The target's spec in the playbook (its pool, probe, …).
    public var spec: TargetSpec? { playbook.target(for: target) }

    /// The target's place in its load balancer's pool (`%i` resolved for a templated unit).
    public var pool: PoolMembership? { spec?.pool?.resolved(for: target) }
}

/// Runs one step that acts on the world (restart, kill, pool, reboot, exec, notify, collect…)
/// against a target. The Actions module implements it; the engine decides what runs and when,
/// and runs `verify` and `wait` itself, from observations and its clock.
public protocol StepRunner: Sendable {
    func run(_ step: Step, context: StepContext) async -> StepOutcome
}
