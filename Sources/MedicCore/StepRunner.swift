
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

    /// One outcome for a step done to several things (a fleet peer's pool servers): it
    /// succeeded if each did, its facts are the first's (a refusal's or failure's, if any), and
    /// its summary says each.
    public static func combined(_ outcomes: [StepOutcome]) -> StepOutcome {
        guard outcomes.count > 1 else { return outcomes.first ?? .failure("nothing to do") }
        let first = outcomes.first { !$0.succeeded } ?? outcomes[0]
        var combined = first
        combined.succeeded = outcomes.allSatisfy(\.succeeded)
        combined.summary = outcomes.map(\.summary).joined(separator: "; ")
        return combined
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

    /// The pool servers the incident's opening observation named (a fleet peer's, from its
    /// registration); empty for a unit or this host, whose pool is in the playbook.
    public var pools: [PoolMembership] = []
    /// The fencing token the opening observation carried (a fleet peer's lock revision), if any.
    public var fencingToken: String?

    /// The target's place in its load balancer's pool (`%i` resolved for a templated unit).
    public var pool: PoolMembership? { spec?.pool?.resolved(for: target) }

    /// Every pool server a `pool` step moves: the observation's, else the playbook's.
    public var poolMembers: [PoolMembership] { pools.isEmpty ? pool.map { [$0] } ?? [] : pools }
}

/// Runs one step that acts on the world (restart, kill, pool, reboot, exec, notify, collect…)
/// against a target. The Actions module implements it; the engine decides what runs and when,
/// and runs `verify` and `wait` itself, from observations and its clock.
public protocol StepRunner: Sendable {
    func run(_ step: Step, context: StepContext) async -> StepOutcome
}
