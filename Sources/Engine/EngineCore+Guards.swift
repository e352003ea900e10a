import MedicCore

/// Why a guard stopped a step, and what happens next.
struct GuardStop {
    enum Then {
        /// Hold the plan; retry at this time (or when what it waits for changes).
        case hold(until: Timestamp?)
        /// Treat the plan as failed: escalate.
        case escalate
        /// Stop all automatic action on the target until a human resumes it.
        case pause
    }

    var `guard`: String
    var message: String
    var then: Then
    /// Facts recorded with the stop, beside the guard's name.
    var facts: [String: String] = [:]
}

extension EngineCore {
    /// The guards, checked before every step.
    mutating func guardCheck(_ incident: Incident, _ step: Step, at now: Timestamp) -> GuardStop? {
        let target = incident.target
        let guards = incident.playbook.guards
        guard let state = targets[target] else { return nil }
        if pausedAll || state.paused {
            return GuardStop(guard: "paused", message: "automatic action on \(target) is paused by a human", then: .hold(until: nil))
        }
        if let silence = silences.first(where: { $0.covers(target, at: now) }) {
            return GuardStop(
                guard: "silence", message: "\(target) is silenced until \(silence.end.iso8601) by \(silence.author): \(silence.reason)",
                then: .hold(until: silence.end))
        }
        let changes = state.count(state.transitions, within: guards.flap.window, at: now)
        if changes >= guards.flap.count {
            return GuardStop(guard: "flap", message: "\(target) is flapping: \(changes) state changes in \(DurationText.format(guards.flap.window)); automatic action stops", then: .pause)
        }
        if step.isDestructive {
            for dependency in dependencies(of: incident) where targets[dependency]?.healthy == false {
                let parentIncident = targets[dependency]?.incidents.values.min()
                let parent = parentIncident.map { " (incident \($0))" } ?? ""
                var facts = ["waits_for": dependency]
                if let parentIncident { facts["waits_for_incident"] = String(parentIncident) }
                return GuardStop(
                    guard: "dependency", message: "\(target) depends on \(dependency), which is unhealthy\(parent); waiting for it instead of restarting a victim",
                    then: .hold(until: nil), facts: facts)
            }
            if let hold = stormHold(incident.playbook, at: now) {
                if groups[incident.playbook.name]?.paged == false {
                    groups[incident.playbook.name]?.paged = true
                    page(incident, "storm: \(hold.message); automatic restarts of the group are held (a shared cause is likely)", at: now)
                }
                return hold
            }
        }
        // The playbook's (or config's) rate and a reboot step's own `at_most`: the stricter
        // holds, as each is checked.
        var limits = [guards.rates[step.kind]].compactMap { $0 }
        if case .reboot(let atMost, _) = step.action { limits.append(atMost) }
        for limit in limits {
            // Reboots are the host's, whichever target asked: counted across all of them.
            let runs = step.kind == .reboot ? targets.values.flatMap { $0.stepRuns[.reboot] ?? [] } : state.stepRuns[step.kind] ?? []
            let used = state.count(runs, within: limit.window, at: now)
            if used >= limit.count {
                let what = step.kind == .reboot ? "this host" : target
                return GuardStop(guard: "rate", message: "\(used) \(step.name)s of \(what) in the last \(DurationText.format(limit.window)) already (limit \(limit))", then: .escalate)
            }
        }
        return nil
    }

    /// Calls the playbook's people (its `default` receiver, else the journal at `crit`) beside
    /// the plan: recorded as a notify step of the incident.
    mutating func page(_ incident: Incident, _ message: String, at now: Timestamp) {
        let step = Step(.notify(recipient: incident.playbook.humanReceiver, message: message))
        let label = "page \(step.name)"
        emit(.record(AuditRecord(
            kind: .stepIntent, time: now, target: incident.target, incident: incident.id, playbook: incident.playbook.name,
            playbookHash: incident.playbook.contentHash, step: step.name,
            message: (settings.dryRun || incident.playbook.dryRun ? "dry-run: would \(step)" : "about to \(step)") + ": \(message)",
            details: ["step": label, "plan": "calling a human"].merging(settings.dryRun || incident.playbook.dryRun ? [AuditFact.dryRun.name: "true"] : [:]) { $1 })))
        if settings.dryRun || incident.playbook.dryRun { return }
        let token = token()
        detached[token] = DetachedStep(
            step: step, label: label, plan: "calling a human", incident: incident.id, target: incident.target, playbook: incident.playbook, started: now)
        emit(.run(token: token, step: step, context: context(of: incident)))
    }

    /// Storm guard: when more than a share of a playbook's targets trigger within its window,
    /// destructive steps stop for the whole group and one escalation goes out.
    mutating func noteTrigger(playbook: Playbook, target: String, at now: Timestamp) {
        var group = groups[playbook.name] ?? GroupState()
        group.members.insert(target)
        for spec in playbook.targets where !spec.selector.isPattern { group.members.insert(spec.selector.description) }
        group.triggers[target] = now
        groups[playbook.name] = group
        _ = stormHold(playbook, at: now)
    }

    mutating func stormHold(_ playbook: Playbook, at now: Timestamp) -> GuardStop? {
        guard var group = groups[playbook.name] else { return nil }
        let window = playbook.guards.stormWindow
        let recent = group.triggers.filter { now.since($0.value) < window }
        let size = group.members.count
        let storming = recent.count >= 3 && Double(recent.count) > playbook.guards.stormShare * Double(size)
        defer { groups[playbook.name] = group }
        if storming, !group.holding {
            group.holding = true
            counters.escalations += 1
            emit(.record(AuditRecord(
                kind: .escalation, time: now, playbook: playbook.name,
                message: "storm: \(recent.count) of \(size) targets of \(playbook.name) triggered within \(DurationText.format(window)); holding automatic restarts for the group and calling a human (a shared cause is likely)",
                details: [AuditFact.guardName.name: "storm", "targets": recent.keys.sorted().joined(separator: ",")])))
        } else if !storming, group.holding {
            group.holding = false
            group.paged = false
            emit(.record(AuditRecord(kind: .decision, time: now, playbook: playbook.name, message: "storm over for \(playbook.name): automatic action resumes")))
        }
        guard group.holding else { return nil }
        let until = (recent.values.max() ?? now).adding(window)
        return GuardStop(guard: "storm", message: "storm hold on \(playbook.name): \(recent.count) of \(size) targets triggered within \(DurationText.format(window))", then: .hold(until: until))
    }

    /// The plan failed: climb the escalation ladder, retry with back-off, or call a human.
    mutating func planFailed(_ id: Int64, reason: String, at now: Timestamp) {
        guard var incident = incidents[id] else { return }
        targets[incident.target]?.failures.append(now)
        emit(.record(AuditRecord(
            kind: .decision, time: now, target: incident.target, incident: id, playbook: incident.playbook.name,
            playbookHash: incident.playbook.contentHash, message: "plan failed: \(reason)", details: [AuditFact.failure.name: "true", "plan": incident.planName])))
        let state = targets[incident.target] ?? TargetState()
        let levels = incident.rule.escalation
        let candidates = levels.indices.filter { index in
            !incident.levelsRun.contains(index) && {
                switch levels[index].after {
                case .failure: true
                case .failures(let n, let window): state.count(state.failures, within: window, at: now) >= n
                case .restarts(let n, let window): state.count(state.stepRuns[.restart] ?? [], within: window, at: now) >= n
                }
            }()
        }
        if let level = candidates.last {
            incident.levelsRun.insert(level)
            incident.plan = levels[level].steps
            incident.planName = "escalation \(level + 1)"
            incident.phase = .idle
            incidents[id] = incident
            counters.escalations += 1
            emit(.record(AuditRecord(
                kind: .escalation, time: now, target: incident.target, incident: id, playbook: incident.playbook.name,
                playbookHash: incident.playbook.contentHash,
                message: "escalating to level \(level + 1) (after \(levels[level].after)): \(reason)",
                details: ["level": String(level + 1), "steps": levels[level].steps.map(\.name).joined(separator: ",")])))
            runStep(id, index: 0, at: now)
            return
        }
        if !levels.isEmpty, incident.levelsRun.count == levels.count {
            needsHuman(id, reason: "every escalation level ran and \(incident.target) is still not healthy (\(reason))", pause: false, at: now)
            return
        }
        if incident.retrySlowly || !incident.rule.steps.contains(where: \.kind.isRemedy) {
            // A guard refused, or nothing in the plan could fix the target itself (it only
            // tells people and keeps evidence): a human has it; try again slowly.
            incident.retrySlowly = false
            incidents[id] = incident
            needsHuman(id, reason: reason, pause: false, at: now)
            return
        }
        incident.phase = .idle
        incidents[id] = incident
        startAttempt(id, at: now)
    }

    /// The last resort: a human is called. With `pause`, automatic action on the target stops
    /// until a human resumes it; otherwise Medic tries again slowly (every `retry_every`).
    mutating func needsHuman(_ id: Int64, reason: String, pause: Bool, at now: Timestamp) {
        guard var incident = incidents[id] else { return }
        counters.escalations += 1
        let retry = incident.playbook.guards.retryEvery
        emit(.record(AuditRecord(
            kind: .escalation, time: now, target: incident.target, incident: id, playbook: incident.playbook.name,
            playbookHash: incident.playbook.contentHash,
            message: "needs a human: \(reason); " + (pause
                ? "automatic action on \(incident.target) stops until a human resumes it"
                : "trying again every \(DurationText.format(retry))"),
            details: [AuditFact.paused.name: String(pause)])))
        page(incident, "needs a human: \(reason)", at: now)
        if pause {
            targets[incident.target]?.paused = true
            incident.phase = .paused
            incidents[id] = incident
            return
        }
        let token = token()
        incident.phase = .backingOff(until: now.adding(retry))
        incident.token = token
        incidents[id] = incident
        emit(.wake(token: token, at: now.adding(retry)))
    }

    /// Whether `condition` holds for this observation and the target's state.
    func evaluate(_ condition: Condition, _ observation: Observation, state: TargetState) -> Bool {
        switch condition {
        case .trigger(let trigger):
            return observation.matches(trigger)
        case .compare(let metric, let comparison, let threshold, let within):
            let value: Double?
            switch metric {
            case .restarts: value = Double(state.count(state.stepRuns[.restart] ?? [], within: within ?? .seconds(600), at: observation.time))
            case .failures: value = Double(state.count(state.failures, within: within ?? .seconds(600), at: observation.time))
            default: value = observation.facts[metric.rawValue].flatMap(Double.init)
            }
            guard let value else { return false }
            return comparison.holds(value, threshold)
        case .not(let inner):
            return !evaluate(inner, observation, state: state)
        case .and(let a, let b):
            return evaluate(a, observation, state: state) && evaluate(b, observation, state: state)
        case .or(let a, let b):
            return evaluate(a, observation, state: state) || evaluate(b, observation, state: state)
        }
    }
}
