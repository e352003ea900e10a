import MedicCore

/// What people do through the control socket: pause and resume automatic action, run a
/// playbook by hand, and read the engine's state.
extension EngineCore {
    /// Stops automatic action on `target` (`*`: on every target) until a human resumes it.
    /// Steps in flight finish; the next step of each plan is held.
    public mutating func pause(_ target: String, actor: String, at now: Timestamp) -> [Command] {
        if target == "*" { pausedAll = true } else { targets[target, default: TargetState()].paused = true }
        emit(.record(AuditRecord(
            kind: .humanCommand, time: now, target: target == "*" ? nil : target,
            message: "paused automatic action on \(target == "*" ? "every target" : target)", details: [AuditFact.command.name: "pause"], actor: actor)))
        return flush()
    }

    /// A human resumes automatic action on `target` (`*`: on every target): held and paused
    /// plans go on.
    public mutating func resume(_ target: String, actor: String, at now: Timestamp) -> [Command] {
        let names = target == "*" ? Array(targets.keys) : [target]
        if target == "*" { pausedAll = false }
        emit(.record(AuditRecord(
            kind: .humanCommand, time: now, target: target == "*" ? nil : target,
            message: "resumed automatic action on \(target == "*" ? "every target" : target)", details: [AuditFact.command.name: "resume"], actor: actor)))
        for name in names.sorted() {
            let wasPaused = targets[name]?.paused == true
            targets[name]?.paused = false
            if wasPaused { targets[name]?.transitions.removeAll() }
            for id in (targets[name]?.incidents.values.sorted() ?? []) {
                switch incidents[id]?.phase {
                case .paused?:
                    incidents[id]?.phase = .idle
                    beginAttempt(id, at: now)
                case .held(let index, let reason, _)?:
                    incidents[id]?.phase = .idle
                    incidents[id]?.token = nil
                    holdEnded(id, index: index, hold: reason, at: now)
                default:
                    break
                }
            }
        }
        return flush()
    }

    /// A human silences `silence.pattern` from `silence.start` to `silence.end`: a chained
    /// `silence` record carries it, so a restarted daemon rebuilds it from the log.
    public mutating func silence(_ silence: Silence, at now: Timestamp) -> [Command] {
        silences.append(silence)
        emit(.record(AuditRecord(
            kind: .silence, time: now, target: silence.pattern,
            message: "silenced \(silence.pattern) from \(silence.start.iso8601) until \(silence.end.iso8601) by \(silence.author): \(silence.reason)",
            details: silence.details, actor: silence.author)))
        return flush()
    }

    /// A human ends the silences set on exactly `pattern` (in force or yet to start). Returns how
    /// many there were; none is no change and no record.
    public mutating func unsilence(_ pattern: String, actor: String, at now: Timestamp) -> (ended: Int, commands: [Command]) {
        let ending = silences.indices.filter { silences[$0].pattern == pattern && silences[$0].end > now }
        guard !ending.isEmpty else { return (0, []) }
        for index in ending { silences[index].end = max(now, silences[index].start) }
        emit(.record(AuditRecord(
            kind: .silence, time: now, target: pattern, message: "unsilenced \(pattern) by \(actor)",
            details: [AuditFact.command.name: "unsilence", "ended": String(ending.count)], actor: actor)))
        retryHolds(guard: "silence", at: now)
        return (ending.count, flush())
    }

    /// Puts back what humans (and the flap guard) set and the audit log's chain still holds in
    /// force: silences, and pauses (`*`: every target). Called once, as the daemon starts.
    public mutating func restoreHolds(silences: [Silence], paused: Set<String>) {
        self.silences = silences
        for target in paused {
            if target == "*" { pausedAll = true } else { targets[target, default: TargetState()].paused = true }
        }
    }

    /// A human runs a playbook's first rule that covers `target` now, as if it had triggered.
    /// Guards apply as always. Returns nil and the commands, or why it cannot run.
    public mutating func runByHand(playbook name: String, target: String, actor: String, at now: Timestamp) -> (error: String?, commands: [Command]) {
        guard let playbook = playbooks.first(where: { $0.name == name }) else {
            return ("no playbook '\(name)' is loaded (loaded: \(playbooks.map(\.name).sorted().joined(separator: ", ")))", [])
        }
        guard playbook.target(for: target) != nil else {
            return ("playbook \(name) does not cover \(target) (its targets: \(playbook.targets.map(\.selector.description).joined(separator: ", ")))", [])
        }
        let key = Self.key(playbook, 0) + "/by-hand"
        if let open = targets[target]?.incidents[key] { return ("incident \(open) from an earlier run by hand is still open on \(target)", []) }
        let observation = Observation(target: target, kind: .stateChanged, time: now, facts: ["actor": actor], summary: "\(name) run by hand by \(actor)")
        emit(.record(AuditRecord(kind: .humanCommand, time: now, target: target, playbook: name,
                                 message: "run playbook \(name) on \(target)", details: [AuditFact.command.name: "run"], actor: actor)))
        open(playbook: playbook, ruleIndex: 0, key: key, observation: observation)
        return (nil, flush())
    }

    /// The engine's state for `medic status`.
    public func report(at now: Timestamp) -> EngineReport {
        EngineReport(
            targets: targets.keys.sorted().map { name in
                let state = targets[name]!
                return EngineReport.Target(name: name, healthy: state.healthy, paused: state.paused || pausedAll,
                                           incidents: state.incidents.values.sorted())
            },
            incidents: incidents.values.sorted { $0.id < $1.id }.map {
                EngineReport.OpenIncident(id: $0.id, target: $0.target, playbook: $0.playbook.name, trigger: $0.rule.text,
                                          phase: $0.phase.summary, attempt: $0.attempt, opened: $0.opened.iso8601)
            },
            silences: silences.filter { $0.end > now }.map {
                EngineReport.SilenceInForce(pattern: $0.pattern, until: $0.end.iso8601, reason: $0.reason, author: $0.author)
            },
            pausedAll: pausedAll, dryRun: settings.dryRun, playbooks: playbooks.map(\.name).sorted(), counters: counters)
    }
}

extension Incident.Phase {
    var summary: String {
        switch self {
        case .idle: "between steps"
        case .running(let i): "running step \(i + 1)"
        case .queued(let i): "step \(i + 1) waits for another incident's step"
        case .waiting(let i): "step \(i + 1): waiting"
        case .verifying(let i, let deadline, _): "step \(i + 1): verifying until \(deadline.iso8601)"
        case .backingOff(let until): "backing off until \(until.iso8601)"
        case .held(let i, let reason, _): "step \(i + 1) held: \(reason)"
        case .stabilising(let since): "stabilising since \(since.iso8601)"
        case .paused: "paused: needs a human"
        }
    }
}
