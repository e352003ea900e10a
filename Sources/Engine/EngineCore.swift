import MedicCore

/// The engine's decisions, as a plain state machine: observations, step results and timer
/// wake-ups go in (each with the time they happen); commands come out (records to write, steps
/// to run, wake-ups to schedule), in the order they must be carried out. It does no I/O and
/// reads no clock, so the daemon drives it in real time and `medic simulate` on a virtual clock.
public struct EngineCore: Sendable {
    /// What the driver must do, in order. A `record` must be durable before any later command
    /// is carried out (a step's intent is written before the step runs).
    public enum Command: Sendable, Equatable {
        case record(AuditRecord)
        /// Run a step that acts on the world; report back with `stepFinished(token:)`.
        case run(token: Int, step: Step, context: StepContext)
        /// Call `wake(token:)` at this time.
        case wake(token: Int, at: Timestamp)
    }

    /// Figures for status lines.
    public typealias Counters = EngineCounters

    /// Daemon-wide settings.
    public struct Settings: Sendable, Equatable {
        /// Record what would be done, do nothing (`medicd --dry-run`).
        public var dryRun: Bool

        public init(dryRun: Bool = false) { self.dryRun = dryRun }
    }

    var playbooks: [Playbook] {
        didSet {
            coverage.removeAll()
            coverageLists.removeAll()
            index = Self.index(playbooks)
        }
    }
    /// Which playbooks cover a target, by index, worked out once per target name.
    var coverage: [String: [Int]] = [:]
    /// The distinct lists in `coverage`, each kept once.
    private var coverageLists: Set<[Int]> = []
    /// Each playbook's target selectors, by the playbook's index.
    private var index: SelectorIndex<Int>
    var settings: Settings
    var targets: [String: TargetState] = [:]
    var incidents: [Int64: Incident] = [:]
    var silences: [Silence] = []
    /// Automatic action paused on every target by a human.
    var pausedAll = false
    var groups: [String: GroupState] = [:]
    var nextIncident: Int64
    var nextToken = 1
    var output: [Command] = []
    /// Steps that run beside their plan (notify): their results are recorded when they come.
    var detached: [Int: DetachedStep] = [:]
    public internal(set) var counters = Counters()

    /// `firstIncidentID` continues the numbering of an existing audit log.
    public init(playbooks: [Playbook], settings: Settings = Settings(), firstIncidentID: Int64 = 1) {
        self.playbooks = playbooks
        self.settings = settings
        nextIncident = max(1, firstIncidentID)
        index = Self.index(playbooks)
    }

    private static func index(_ playbooks: [Playbook]) -> SelectorIndex<Int> {
        SelectorIndex(playbooks.indices.flatMap { number in playbooks[number].targets.map { (selector: $0.selector, value: number) } })
    }

    /// Incidents currently open, oldest first.
    public var openIncidents: [(id: Int64, target: String, playbook: String)] {
        incidents.values.sorted { $0.id < $1.id }.map { ($0.id, $0.target, $0.playbook.name) }
    }

    /// The playbooks that cover a target (by name or glob), in order.
    /// Whether a playbook covering `target` has a rule an alert can set off (not cached: the
    /// names come from outside).
    func hasAlertRule(for target: String) -> Bool {
        index.values(selecting: target).contains { playbooks[$0].hasAlertRule }
    }

    mutating func covering(_ target: String) -> [Int] {
        if let known = coverage[target] { return known }
        var found: [Int] = []
        for number in index.values(selecting: target) where found.last != number { found.append(number) }
        // Targets covered by the same playbooks share one list.
        let shared = coverageLists.insert(found).memberAfterInsert
        coverage[target] = shared
        return shared
    }

    // MARK: Inputs

    /// Replaces the playbooks (a reload). Open incidents finish under the version they started with.
    public mutating func replacePlaybooks(_ new: [Playbook]) {
        playbooks = new
    }

    /// Restores guard history from the audit log after a daemon restart, so rate limits and
    /// back-off continue where they were.
    public mutating func restore(stepRuns: [(target: String, kind: StepKind, time: Timestamp)], failures: [(target: String, time: Timestamp)]) {
        for run in stepRuns { targets[run.target, default: TargetState()].stepRuns[run.kind, default: []].append(run.time) }
        for failure in failures { targets[failure.target, default: TargetState()].failures.append(failure.time) }
    }

    /// Registers an incident a previous medicd left open (it rebooted the host, or was stopped
    /// or killed), before the targets are read: what reading them finds joins it instead of
    /// opening a second incident for the same target and rule. `adopt` then judges it. Returns
    /// false if its playbook is no longer loaded.
    @discardableResult
    public mutating func register(incident id: Int64, target: String, playbook name: String, trigger: String, at now: Timestamp) -> Bool {
        guard incidents[id] == nil, let playbook = playbooks.first(where: { $0.name == name }),
              let ruleIndex = playbook.rules.firstIndex(where: { $0.text == trigger }) ?? playbook.rules.indices.first
        else { return incidents[id] != nil }
        let key = Self.key(playbook, ruleIndex)
        var incident = Incident(
            id: id, target: target, key: key, playbook: playbook, rule: playbook.rules[ruleIndex], opened: now, occurred: nil,
            stepStarted: now, observation: "taken up from an earlier medicd")
        incident.attempt = 1
        incident.planName = "taken up"
        incidents[id] = incident
        targets[target, default: TargetState()].incidents[key] = id
        nextIncident = max(nextIncident, id + 1)
        return true
    }

    /// Takes up an incident a previous medicd left open (registered first with `register`, or
    /// here): checks, within `within`, that the target is healthy (judged at once when its unit
    /// is failed), then lets it stabilise and closes the incident; if it is not, the rule's
    /// escalation runs (a step that was interrupted counts against its rate limit, so a reboot
    /// is not asked for twice) or, with none left, a human is called. `why` says where the
    /// incident comes from, for the audit log.
    public mutating func adopt(
        incident id: Int64, target: String, playbook name: String, trigger: String, why: String, within: Duration = .seconds(60),
        at now: Timestamp
    ) -> [Command] {
        guard register(incident: id, target: target, playbook: name, trigger: trigger, at: now), var incident = incidents[id],
              incident.plan.isEmpty
        else {
            if incidents[id] == nil {
                emit(.record(AuditRecord(
                    kind: .escalation, time: now, target: target, incident: id, playbook: name,
                    message: "needs a human: incident \(id) is still open \(why), but playbook \(name) is no longer loaded to follow it up")))
            }
            return flush()
        }
        incident.plan = [Step(.verify(within: within, stable: .zero))]
        incident.phase = .idle
        incidents[id] = incident
        emit(.record(AuditRecord(
            kind: .decision, time: now, target: target, incident: id, playbook: name, playbookHash: incident.playbook.contentHash,
            message: "taking up incident \(id) \(why): \(target) must be healthy within \(DurationText.format(within))")))
        runStep(id, index: 0, at: now)
        return flush()
    }

    /// An observation: recorded, and acted on if it triggers a playbook.
    public mutating func observe(_ observation: Observation) -> [Command] {
        counters.observations += 1
        let now = observation.time
        let name = observation.target
        var state = targets[name] ?? TargetState()
        // The first playbook covering the target with a rule this observation sets off.
        var match: (playbook: Playbook, rule: Int, key: String)?
        for playbook in covering(name).map({ playbooks[$0] }) {
            if let index = playbook.rules.firstIndex(where: { evaluate($0.condition, observation, state: state) }) {
                match = (playbook, index, Self.key(playbook, index))
                break
            }
        }
        if observation.health == false, observation.healthAspect != .unit, let occurred = observation.occurred,
           let remedy = state.lastRemedy, occurred < remedy {
            // A probe begun before the restart finished speaks of the process that was replaced.
            var facts = observation.facts
            facts["stale"] = "true"
            facts[.observed] = observation.kind.label
            emit(.record(AuditRecord(
                kind: .observation, time: now, target: name, incident: state.incidents.values.min(),
                message: "\(observation.summary) (set aside: begun before the restart that finished at \(remedy.iso8601))", details: facts)))
            return flush()
        }
        let joined = match.flatMap { state.incidents[$0.key] }
        // The observation that opens an incident is its first record (it is opened below).
        let opening = match != nil && joined == nil ? nextIncident : nil
        emit(.record(AuditRecord(
            kind: .observation, time: now, target: name, incident: joined ?? opening ?? state.incidents.values.min(),
            message: observation.summary, details: observation.facts.merging([AuditFact.observed.name: observation.kind.label]) { own, _ in own })))
        let changed = note(observation, in: &state)
        if let requires = observation.facts["Requires"] { state.requires = requires.split(separator: ",").map(String.init) }
        targets[name] = state
        for index in covering(name) { groups[playbooks[index].name, default: GroupState()].members.insert(name) }

        if case .stoppedByRequest(let job) = observation.kind, !state.incidents.isEmpty {
            for id in state.incidents.values.sorted() {
                close(id, outcome: "superseded", message: "\(name) was taken down by a \(job) job someone else asked for; standing down", at: now)
            }
            return flush()
        }
        if let match {
            noteTrigger(playbook: match.playbook, target: name, at: now)
            if let id = joined, let incident = incidents[id] {
                emit(.record(AuditRecord(
                    kind: .decision, time: now, target: name, incident: id, playbook: incident.playbook.name,
                    playbookHash: incident.playbook.contentHash, message: "joined open incident \(id) instead of opening another")))
            }
        }
        if let changed { healthChanged(name, healthy: changed, at: now) }
        if observation.healthAspect == .unit, state.activeState == "failed" { unitFailed(name, observation.summary, at: now) }
        guard let match, joined == nil else { return flush() }
        open(playbook: match.playbook, ruleIndex: match.rule, key: match.key, observation: observation)
        return flush()
    }

    /// Notes what an observation says of the target's health; returns the target's health if
    /// it changed. A passing verdict begun after the last restart's start is the fresh evidence
    /// that restart waits for.
    private func note(_ observation: Observation, in state: inout TargetState) -> Bool? {
        if let active = observation.facts["ActiveState"], observation.healthAspect == .unit { state.activeState = active }
        guard let health = observation.health else { return nil }
        let before = state.healthy
        let aspect = observation.healthAspect
        state.aspects[aspect] = health
        if health {
            let began = observation.occurred ?? observation.time
            state.lastPositive[aspect] = began
            if let since = state.freshSince, began >= since { state.awaitingFresh.remove(aspect) }
        }
        return state.settled(from: before, at: observation.time)
    }

    /// How often a step held for a pool's capacity is tried again when nothing else prompts it.
    static let capacityRetry: Duration = .seconds(10)

    /// One incident per (target, key) while open.
    static func key(_ playbook: Playbook, _ rule: Int) -> String { "\(playbook.name)#\(rule)" }

    /// A step started with `.run` finished.
    public mutating func stepFinished(token: Int, outcome: StepOutcome, at now: Timestamp) -> [Command] {
        if let step = detached.removeValue(forKey: token) {
            recordResult(step.step, label: step.label, plan: step.plan, incident: step.incident, target: step.target,
                         playbook: step.playbook, outcome: outcome, started: step.started, at: now)
            return flush()
        }
        guard let id = incidents.first(where: { $0.value.token == token })?.key, var incident = incidents[id],
              case .running(let index) = incident.phase
        else { return flush() }
        let step = incident.plan[index]
        let label = "\(index + 1)/\(incident.plan.count) \(step.name)"
        if let guardName = outcome.refusedBy {
            counters.guardStops += 1
            // Refused by a guard only the runner can check (capacity, a fleet budget): it did not
            // run, so it does not count against the rate limits its intent was counted in.
            if let run = targets[incident.target]?.stepRuns[step.kind]?.lastIndex(of: incident.stepStarted) {
                targets[incident.target]?.stepRuns[step.kind]?.remove(at: run)
            }
            var details = outcome.details
            details[.guardName] = guardName
            details[.result] = "refused"
            details[.notRun] = "true"
            details["step"] = label
            emit(.record(AuditRecord(
                kind: .guardStopped, time: now, target: incident.target, incident: id, playbook: incident.playbook.name,
                playbookHash: incident.playbook.contentHash, step: step.name, message: "\(step.name) stopped: \(outcome.summary)", details: details)))
        } else {
            recordResult(step, label: label, plan: incident.planName, incident: id, target: incident.target, playbook: incident.playbook,
                         outcome: outcome, started: incident.stepStarted, at: now)
        }
        incident.done.append("\(step): \(outcome.refusedBy != nil ? "refused" : outcome.succeeded ? "succeeded" : "failed")")
        if outcome.succeeded, [.restart, .start].contains(step.kind) {
            broughtUp(incident, since: incident.stepStarted, at: now)
        }
        incident.token = nil
        incident.phase = .idle
        incidents[id] = incident
        if targets[incident.target]?.busy == id { targets[incident.target]?.busy = nil }
        let unitDown = targets[incident.target]?.aspects[.unit] == false
        if outcome.succeeded {
            nextStep(id, after: index, at: now)
            if case .pool(.ready, _) = step.action { retryHolds(guard: "capacity", at: now) }
        } else if step.kind == .pool, unitDown {
            // A dead unit serves nothing: a pool step that could not be done never stands
            // between it and its start.
            emit(.record(AuditRecord(
                kind: .decision, time: now, target: incident.target, incident: id, playbook: incident.playbook.name,
                playbookHash: incident.playbook.contentHash, step: step.name,
                message: "\(incident.target) is down, so it serves nothing: going on with the plan without \(step.name)")))
            nextStep(id, after: index, at: now)
        } else if outcome.refusedBy == "capacity" {
            // Held until capacity returns: tried again when a server is returned or a target
            // is healthy again, and every 10 s for changes made outside Medic.
            let retry = self.token()
            incident.phase = .held(index, reason: outcome.summary, guard: "capacity")
            incident.token = retry
            incidents[id] = incident
            emit(.wake(token: retry, at: now.adding(Self.capacityRetry)))
        } else {
            if outcome.refusedBy != nil { incidents[id]?.retrySlowly = true }
            planFailed(id, reason: "\(step.name) \(outcome.refusedBy != nil ? "refused" : "failed"): \(outcome.summary)", at: now)
        }
        runQueued(on: incident.target, at: now)
        return flush()
    }

    private mutating func recordResult(
        _ step: Step, label: String, plan: String, incident: Int64, target: String, playbook: Playbook, outcome: StepOutcome,
        started: Timestamp, at now: Timestamp
    ) {
        var details = outcome.details
        details[.result] = outcome.succeeded ? "succeeded" : "failed"
        details["step"] = label
        details["plan"] = plan
        details["duration_ms"] = String(now.since(started).milliseconds)
        emit(.record(AuditRecord(
            kind: .stepResult, time: now, target: target, incident: incident, playbook: playbook.name,
            playbookHash: playbook.contentHash, step: step.name,
            message: "\(step.name) \(outcome.succeeded ? "succeeded" : "failed"): \(outcome.summary)", details: details)))
    }

    /// A restart or start of the incident's target succeeded: the runner waited until the unit
    /// was active (READY=1 for notify units). What the probe and heartbeats said before spoke of
    /// the process that was replaced: the target is healthy again only once they speak of the
    /// new one (a probe begun, a beat sent, after `since`). A resource limit's verdict is
    /// unknown until the next sample.
    mutating func broughtUp(_ incident: Incident, since: Timestamp, at now: Timestamp) {
        guard var state = targets[incident.target] else { return }
        let before = state.healthy
        state.aspects[.limit] = nil
        state.aspects[.unit] = true
        state.activeState = "active"
        state.lastRemedy = now
        state.freshSince = since
        let spec = incident.playbook.target(for: incident.target)
        var needed: Set<Observation.HealthAspect> = []
        if spec?.probe != nil { needed.insert(.probe) }
        if spec?.heartbeat != nil { needed.insert(.heartbeat) }
        state.awaitingFresh = needed.filter { aspect in !(state.lastPositive[aspect].map { $0 >= since } ?? false) }
        let changed = state.settled(from: before, at: now)
        targets[incident.target] = state
        if let changed { healthChanged(incident.target, healthy: changed, at: now) }
    }

    /// A wake-up scheduled with `.wake` is due.
    public mutating func wake(token: Int, at now: Timestamp) -> [Command] {
        guard let id = incidents.first(where: { $0.value.token == token })?.key, var incident = incidents[id] else { return flush() }
        incident.token = nil
        incidents[id] = incident
        switch incident.phase {
        case .waiting(let index):
            stepSucceeded(id, index: index, summary: "waited \(DurationText.format(now.since(incident.stepStarted)))", at: now)
        case .verifying(let index, let deadline, let healthySince):
            verifyCheck(id, index: index, deadline: deadline, healthySince: healthySince, at: now)
        case .backingOff:
            incident.phase = .idle
            if let state = targets[incident.target], state.healthy == true {
                // Healthy again while waiting: the next attempt is not needed.
                incident.recoveredByItself = true
                incident.phase = .stabilising(since: state.healthSince ?? now)
                incidents[id] = incident
                emit(.record(AuditRecord(
                    kind: .decision, time: now, target: incident.target, incident: id, playbook: incident.playbook.name,
                    message: "\(incident.target) is healthy again (since \(state.healthSince?.iso8601 ?? "?")): the next attempt is not run",
                    details: ["recovered_by_itself": "true"])))
                scheduleStabilised(id, at: now)
            } else {
                incidents[id] = incident
                beginAttempt(id, at: now)
            }
        case .held(let index, let reason, _):
            incident.phase = .idle
            incidents[id] = incident
            holdEnded(id, index: index, hold: reason, at: now)
        case .stabilising(let since):
            if let state = targets[incident.target], state.healthy == true, now.since(since) >= incident.playbook.guards.stabilise {
                recovered(id, healthySince: since, at: now)
            }
        case .idle, .running, .queued, .paused:
            break
        }
        return flush()
    }

    /// What an incident's target needs: the playbook's `depends_on` and systemd's own
    /// Requires=/BindsTo=.
    func dependencies(of incident: Incident) -> [String] {
        let configured = incident.playbook.target(for: incident.target)?.dependsOn ?? []
        return configured + (targets[incident.target]?.requires ?? []).filter { !configured.contains($0) }
    }

    // MARK: Output

    mutating func emit(_ command: Command) { output.append(command) }

    mutating func flush() -> [Command] {
        defer { output.removeAll() }
        return output
    }

    mutating func token() -> Int {
        defer { nextToken += 1 }
        return nextToken
    }
}
