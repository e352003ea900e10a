import MedicCore

/// What the engine remembers of a target. What Medic did to it (`RemedyHistory`, read and
/// written as if its fields were the target's own) is kept out of line: most targets never
/// need it, and inline it was 2 MB of the engine's table at 10,000 targets.
@dynamicMemberLookup
struct TargetState: Sendable {
    /// Last known health of each aspect (the unit's state, its probe, its heartbeats).
    var aspects = AspectTable<Bool>()
    /// When each aspect last said healthy (the probe's start, the beat's arrival).
    var lastPositive = AspectTable<Timestamp>()
    /// systemd's ActiveState as last seen.
    var activeState: String?
    /// Healthy: every aspect that has spoken says so, and none awaits fresh evidence; nil until
    /// one has spoken.
    var healthy: Bool? {
        aspects.isEmpty ? nil : aspects.allSatisfy { $0 } && self.awaitingFresh.isEmpty
    }
    var healthSince: Timestamp?
    /// Times of health transitions, for flap detection.
    var transitions: [Timestamp] = []
    /// How long the last healthy period lasted when it ended.
    var lastHealthyPeriod: Duration?
    /// The open incidents, one per (playbook, rule).
    var incidents: [String: Int64] = [:]
    /// The units systemd says it needs (Requires=, BindsTo=).
    var requires: [String] = []
    @OutOfLine private var remedies: RemedyHistory?

    subscript<Value>(dynamicMember field: WritableKeyPath<RemedyHistory, Value>) -> Value {
        get { (remedies ?? RemedyHistory())[keyPath: field] }
        set {
            var history = remedies ?? RemedyHistory()
            history[keyPath: field] = newValue
            // A history back at its start (`medic resume '*'` clears every target's pause) takes
            // no allocation.
            remedies = history == RemedyHistory() ? nil : history
        }
    }

    /// Health may have changed since `before`: note the transition; returns the new health if
    /// it changed.
    mutating func settled(from before: Bool?, at now: Timestamp) -> Bool? {
        guard let after = healthy, after != before else { return nil }
        if before == true, let since = healthSince { lastHealthyPeriod = now.since(since) }
        if before != nil { transitions.append(now) }
        if transitions.count > 256 { transitions.removeFirst(transitions.count - 256) }
        healthSince = now
        return after
    }

    func count(_ times: [Timestamp], within window: Duration, at now: Timestamp) -> Int {
        times.filter { now.since($0) < window }.count
    }
}

/// What Medic did to a target, and what that left pending.
struct RemedyHistory: Sendable, Equatable {
    /// Aspects that need fresh evidence from the process a restart or start brought up (its
    /// probe passing, its heartbeat arriving) before the target counts as healthy.
    var awaitingFresh: Set<Observation.HealthAspect> = []
    /// When each kind of step ran on it (for rate limits).
    var stepRuns: [StepKind: [Timestamp]] = [:]
    /// When plans failed on it.
    var failures: [Timestamp] = []
    /// The incident whose step is acting on the target now: steps on one target never overlap.
    var busy: Int64?
    /// Back-off level: how many attempts in a row without a long healthy period.
    var backoffLevel = 0
    /// When the last plan started, for cool-down.
    var lastPlanStart: Timestamp?
    /// Set after the escalation ladder ran out: no automatic action until a human resumes.
    var paused = false
    /// When a restart or start of it last succeeded: probe verdicts begun before are stale.
    var lastRemedy: Timestamp?
    /// When that restart or start began: evidence begun since speaks of the new process.
    var freshSince: Timestamp?
}

/// An incident: one per (target, rule) while open.
struct Incident: Sendable {
    enum Phase: Sendable, Equatable {
        /// Between things.
        case idle
        /// A step is running in the driver.
        case running(Int)
        /// Step `index` waits for another incident's step on the same target to finish.
        case queued(Int)
        /// A `wait` step is waiting.
        case waiting(Int)
        /// A `verify` step: healthy by `deadline`, and since `healthySince`.
        case verifying(Int, deadline: Timestamp, healthySince: Timestamp?)
        /// Waiting before the next attempt.
        case backingOff(until: Timestamp)
        /// A guard holds step `index` (silence, storm, dependency, capacity) until it clears.
        case held(Int, reason: String, guard: String)
        /// The plan worked; waiting for the target to stay healthy.
        case stabilising(since: Timestamp)
        /// Needs a human.
        case paused
    }

    let id: Int64
    let target: String
    /// The (playbook, rule) this incident is for: one incident per key while open.
    let key: String
    /// The playbook version the incident started with.
    let playbook: Playbook
    let rule: Rule
    let opened: Timestamp
    let occurred: Timestamp?
    var phase: Phase = .idle
    var attempt = 0
    /// The steps being run: the rule's, or an escalation level's.
    var plan: [Step] = []
    var planName = "plan"
    var stepStarted: Timestamp
    /// The pending run or wake-up.
    var token: Int?
    /// Escalation levels already run in this incident.
    var levelsRun: Set<Int> = []
    /// Whether the escalation last run was for a guard's refusal (then retry slowly).
    var retrySlowly = false
    /// The summary of the observation that opened it.
    let observation: String
    /// What each step run so far did, for the steps that report to people.
    var done: [String] = []
    /// The target was healthy again when a hold ended, and its remedies were not run.
    var recoveredByItself = false
    /// The pool servers the opening observation brought (a fleet peer's), if any, and the
    /// fencing token it carried.
    var pools: [PoolMembership] = []
    var fencingToken: String?

    /// What a step of this incident acts on, for its runner.
    var context: StepContext {
        var context = StepContext(target: target, incident: id, playbook: playbook, trigger: rule.text, observation: observation, done: done)
        context.pools = pools
        context.fencingToken = fencingToken
        return context
    }
}

/// A step running beside its plan (notify), whose result is recorded when it comes.
struct DetachedStep: Sendable {
    let step: Step
    let label: String
    let plan: String
    let incident: Int64
    let target: String
    let playbook: Playbook
    let started: Timestamp
}

/// Storm detection for a playbook's targets.
struct GroupState: Sendable {
    /// When each target last triggered.
    var triggers: [String: Timestamp] = [:]
    /// Targets of the group seen so far (globs grow as units appear).
    var members: Set<String> = []
    var holding = false
    /// Whether the people of this storm have been called.
    var paged = false
}
