import MedicCore

extension EngineCore {
    /// Opens an incident for `observation` under the playbook's rule and starts its plan.
    mutating func open(playbook: Playbook, ruleIndex: Int, key: String, observation: Observation) {
        let rule = playbook.rules[ruleIndex]
        let id = nextIncident
        nextIncident += 1
        let now = observation.time
        var details = [AuditFact.trigger.name: rule.text, "steps": rule.steps.map(\.name).joined(separator: ",")]
        if let occurred = observation.occurred { details[.timeToDetectMs] = String(now.since(occurred).milliseconds) }
        if !observation.pools.isEmpty { details["pool_servers"] = observation.pools.map(PoolMembership.describe).joined(separator: ", ") }
        emit(.record(AuditRecord(
            kind: .incidentOpened, time: now, target: observation.target, incident: id, playbook: playbook.name,
            playbookHash: playbook.contentHash, message: "\(rule.text): \(observation.summary); running playbook \(playbook.name)",
            details: details)))
        incidents[id] = Incident(
            id: id, target: observation.target, key: key, playbook: playbook, rule: rule, opened: now, occurred: observation.occurred,
            stepStarted: now, observation: observation.summary)
        incidents[id]?.pools = observation.pools
        incidents[id]?.fencingToken = observation.facts[.fencingToken]
        targets[observation.target, default: TargetState()].incidents[key] = id
        counters.incidentsOpened += 1
        startAttempt(id, at: now)
    }

    /// Starts (another) run of the rule's plan, after the guards that apply to a whole attempt.
    mutating func startAttempt(_ id: Int64, at now: Timestamp) {
        guard var incident = incidents[id], var state = targets[incident.target] else { return }
        if state.paused || pausedAll {
            incident.phase = .paused
            incidents[id] = incident
            counters.guardStops += 1
            emit(.record(AuditRecord(
                kind: .guardStopped, time: now, target: incident.target, incident: id, playbook: incident.playbook.name,
                message: "automatic action on \(incident.target) is paused; the plan waits until a human resumes it",
                details: [AuditFact.guardName.name: "paused"])))
            return
        }
        if state.healthy == true, incident.attempt > 0 {
            // Healthy again on its own (or a dependency came back): watch it stabilise.
            incident.phase = .stabilising(since: state.healthSince ?? now)
            incidents[id] = incident
            scheduleStabilised(id, at: now)
            return
        }
        let guards = incident.playbook.guards
        if incident.attempt > 0 {
            if let period = state.lastHealthyPeriod, period >= guards.resetAfter { state.backoffLevel = 0 }
            let delay = min(guards.backoffInitial * (1 << min(state.backoffLevel, 20)), guards.backoffMaximum)
            let cooldownEnd = state.lastPlanStart.map { $0.adding(guards.cooldown) }
            let backoffEnd = (state.failures.last ?? now).adding(delay)
            let until = max(backoffEnd, cooldownEnd ?? now)
            if until > now, case .idle = incident.phase {
                incident.phase = .backingOff(until: until)
                let token = token()
                incident.token = token
                incidents[id] = incident
                targets[incident.target] = state
                emit(.record(AuditRecord(
                    kind: .decision, time: now, target: incident.target, incident: id, playbook: incident.playbook.name,
                    message: "backing off: attempt \(incident.attempt + 1) in \(DurationText.format(until.since(now)))",
                    details: ["backoff_ms": String(until.since(now).milliseconds)])))
                emit(.wake(token: token, at: until))
                return
            }
        } else if let last = state.lastPlanStart, now.since(last) < guards.cooldown {
            let until = last.adding(guards.cooldown)
            incident.phase = .backingOff(until: until)
            let token = token()
            incident.token = token
            incidents[id] = incident
            emit(.record(AuditRecord(
                kind: .guardStopped, time: now, target: incident.target, incident: id, playbook: incident.playbook.name,
                message: "cool-down: the last plan on \(incident.target) started \(DurationText.format(now.since(last))) ago (cool-down \(DurationText.format(guards.cooldown)))",
                details: [AuditFact.guardName.name: "cooldown"])))
            emit(.wake(token: token, at: until))
            return
        }
        targets[incident.target] = state
        beginAttempt(id, at: now)
    }

    /// Runs the rule's plan from its first step (back-off and cool-down already waited out).
    mutating func beginAttempt(_ id: Int64, at now: Timestamp) {
        guard var incident = incidents[id] else { return }
        if incident.attempt > 0 { targets[incident.target]?.backoffLevel += 1 }
        incident.attempt += 1
        incident.plan = incident.rule.steps
        incident.planName = incident.attempt == 1 ? "plan" : "plan, attempt \(incident.attempt)"
        incident.phase = .idle
        incidents[id] = incident
        targets[incident.target]?.lastPlanStart = now
        runStep(id, index: 0, at: now)
    }

    /// Runs step `index` of the incident's current plan, or finishes the plan.
    mutating func runStep(_ id: Int64, index: Int, at now: Timestamp) {
        guard var incident = incidents[id] else { return }
        guard index < incident.plan.count else {
            planSucceeded(id, at: now)
            return
        }
        let step = incident.plan[index]
        if let stop = guardCheck(incident, step, at: now) {
            counters.guardStops += 1
            emit(.record(AuditRecord(
                kind: .guardStopped, time: now, target: incident.target, incident: id, playbook: incident.playbook.name,
                playbookHash: incident.playbook.contentHash, step: step.name, message: "\(step.name) stopped: \(stop.message)",
                details: stop.facts.merging([AuditFact.guardName.name: stop.guard, AuditFact.result.name: "refused"]) { $1 })))
            switch stop.then {
            case .hold(let until):
                incident.phase = .held(index, reason: stop.message, guard: stop.guard)
                if let until {
                    let token = token()
                    incident.token = token
                    emit(.wake(token: token, at: until))
                }
                incidents[id] = incident
            case .escalate:
                incident.retrySlowly = true
                incidents[id] = incident
                planFailed(id, reason: "guard: \(stop.message)", at: now)
            case .pause:
                needsHuman(id, reason: stop.message, pause: true, at: now)
            }
            return
        }
        if [.verify, .wait, .notify].contains(step.kind) || settings.dryRun || incident.playbook.dryRun {
            // Not acting on the target: no need to wait for another incident's step.
        } else if let other = targets[incident.target]?.busy, other != id {
            incident.phase = .queued(index)
            incidents[id] = incident
            emit(.record(AuditRecord(
                kind: .decision, time: now, target: incident.target, incident: id, playbook: incident.playbook.name,
                message: "\(step.name) waits: incident \(other) has a step running on \(incident.target)")))
            return
        }
        let dryRun = settings.dryRun || incident.playbook.dryRun
        let label = "\(index + 1)/\(incident.plan.count) \(step.name)"
        emit(.record(AuditRecord(
            kind: .stepIntent, time: now, target: incident.target, incident: id, playbook: incident.playbook.name,
            playbookHash: incident.playbook.contentHash, step: step.name,
            message: (dryRun ? "dry-run: would \(step)" : "about to \(step)"),
            details: ["step": label, "plan": incident.planName].merging(dryRun ? [AuditFact.dryRun.name: "true"] : [:]) { $1 })))
        incident.stepStarted = now
        incidents[id] = incident
        targets[incident.target]?.stepRuns[step.kind, default: []].append(now)
        if step.kind == .restart { counters.restarts += 1 }
        if dryRun {
            stepSucceeded(id, index: index, summary: "dry-run: nothing done", at: now, result: "dry-run")
            return
        }
        switch step.action {
        case .verify(let within, _):
            let healthySince = targets[incident.target]?.healthy == true ? now : nil
            incident.phase = .verifying(index, deadline: now.adding(within), healthySince: healthySince)
            incidents[id] = incident
            if healthySince == nil, targets[incident.target]?.activeState == "failed" {
                // Judged by the target's state at once: a failed unit is not getting healthy.
                verifyFailed(id, index: index, summary: "\(incident.target) is failed", at: now)
                return
            }
            verifyCheck(id, index: index, deadline: now.adding(within), healthySince: healthySince, at: now)
        case .wait(let duration):
            incident.phase = .waiting(index)
            let token = token()
            incident.token = token
            incidents[id] = incident
            emit(.wake(token: token, at: now.adding(duration)))
        case .notify:
            // Beside the plan: a slow or failing receiver never holds the remedy.
            let token = token()
            detached[token] = DetachedStep(
                step: step, label: label, plan: incident.planName, incident: id, target: incident.target, playbook: incident.playbook, started: now)
            emit(.run(token: token, step: step, context: context(of: incident)))
            incident.done.append("\(step): sent")
            incidents[id] = incident
            nextStep(id, after: index, at: now)
        default:
            let token = token()
            incident.phase = .running(index)
            incident.token = token
            incidents[id] = incident
            targets[incident.target]?.busy = id
            emit(.run(token: token, step: step, context: context(of: incident)))
        }
    }

    /// What a step of `incident` acts on, with what the engine knows of its target.
    func context(of incident: Incident) -> StepContext {
        var context = incident.context
        context.unitDown = targets[incident.target]?.aspects[.unit] == false
        return context
    }

    mutating func stepSucceeded(_ id: Int64, index: Int, summary: String, at now: Timestamp, result: String = "succeeded") {
        guard let incident = incidents[id] else { return }
        let step = incident.plan[index]
        emit(.record(AuditRecord(
            kind: .stepResult, time: now, target: incident.target, incident: id, playbook: incident.playbook.name,
            playbookHash: incident.playbook.contentHash, step: step.name, message: "\(step.name) \(result): \(summary)",
            details: [AuditFact.result.name: result, "step": "\(index + 1)/\(incident.plan.count) \(step.name)", "plan": incident.planName,
                      "duration_ms": String(now.since(incident.stepStarted).milliseconds)])))
        nextStep(id, after: index, at: now)
    }

    mutating func nextStep(_ id: Int64, after index: Int, at now: Timestamp) {
        guard var incident = incidents[id] else { return }
        incident.phase = .idle
        incidents[id] = incident
        runStep(id, index: index + 1, at: now)
    }

    /// Checks a running `verify` against the target's health and the time.
    mutating func verifyCheck(_ id: Int64, index: Int, deadline: Timestamp, healthySince: Timestamp?, at now: Timestamp) {
        guard var incident = incidents[id], case .verify(_, let stable) = incident.plan[index].action else { return }
        if let since = healthySince {
            if now.since(since) >= stable {
                stepSucceeded(id, index: index, summary: "healthy" + (stable > .zero ? " for \(DurationText.format(stable))" : ""), at: now)
                return
            }
            let token = token()
            incident.token = token
            incident.phase = .verifying(index, deadline: deadline, healthySince: since)
            incidents[id] = incident
            emit(.wake(token: token, at: since.adding(stable)))
            return
        }
        if now >= deadline {
            verifyFailed(id, index: index, summary: "not healthy within \(DurationText.format(deadline.since(incident.stepStarted)))", at: now)
            return
        }
        let token = token()
        incident.token = token
        incidents[id] = incident
        emit(.wake(token: token, at: deadline))
    }

    mutating func verifyFailed(_ id: Int64, index: Int, summary: String, at now: Timestamp) {
        guard var incident = incidents[id] else { return }
        emit(.record(AuditRecord(
            kind: .stepResult, time: now, target: incident.target, incident: id, playbook: incident.playbook.name,
            playbookHash: incident.playbook.contentHash, step: "verify", message: "verify failed: \(summary)",
            details: [AuditFact.result.name: "failed", "step": "\(index + 1)/\(incident.plan.count) verify", "plan": incident.planName])))
        incident.token = nil
        incident.phase = .idle
        incidents[id] = incident
        planFailed(id, reason: "verify failed: \(summary)", at: now)
    }

    /// Lets the first incident queued behind another's step on `target` go, if none is running.
    mutating func runQueued(on target: String, at now: Timestamp) {
        guard targets[target]?.busy == nil else { return }
        for id in (targets[target]?.incidents.values.sorted() ?? []) {
            if case .queued(let index)? = incidents[id]?.phase {
                incidents[id]?.phase = .idle
                holdEnded(id, index: index, hold: "waited for another incident's step on \(target)", at: now)
                return
            }
        }
    }

    /// The target's health changed: move the incidents that wait on it.
    mutating func healthChanged(_ target: String, healthy: Bool, at now: Timestamp) {
        for id in (targets[target]?.incidents.values.sorted() ?? []) {
            guard var incident = incidents[id] else { continue }
            switch incident.phase {
            case .verifying(let index, let deadline, let since):
                if healthy, since == nil {
                    incident.phase = .verifying(index, deadline: deadline, healthySince: now)
                    incidents[id] = incident
                    verifyCheck(id, index: index, deadline: deadline, healthySince: now, at: now)
                } else if !healthy, since != nil {
                    verifyFailed(id, index: index, summary: "became unhealthy during verification", at: now)
                }
            case .stabilising:
                if !healthy {
                    incident.phase = .idle
                    incidents[id] = incident
                    planFailed(id, reason: "unhealthy again while stabilising", at: now)
                }
            default:
                break
            }
        }
        guard healthy else { return }
        // Dependants held on this target get a settle period to recover by themselves; only
        // those still unhealthy after it are acted on (without waiting out a back-off).
        for id in incidents.keys.sorted() {
            guard var incident = incidents[id], dependencies(of: incident).contains(target),
                  case .held(let index, _, "dependency") = incident.phase else { continue }
            let settle = settlePeriod(incident)
            let token = token()
            incident.phase = .held(index, reason: "\(target) is healthy again; \(incident.target) has \(DurationText.format(settle)) to recover by itself", guard: "settle")
            incident.token = token
            incidents[id] = incident
            emit(.record(AuditRecord(
                kind: .decision, time: now, target: incident.target, incident: id, playbook: incident.playbook.name,
                message: "\(target) is healthy again: \(incident.target) has \(DurationText.format(settle)) to recover by itself before \(incident.plan[index].name) runs",
                details: ["settle_ms": String(settle.milliseconds)])))
            emit(.wake(token: token, at: now.adding(settle)))
        }
        retryHolds(guard: "capacity", at: now)
    }

    /// How long a victim of a dependency gets to recover by itself once the dependency is back:
    /// the playbook's `settle:`, else long enough for its probe to pass `successes` times, else
    /// for a heartbeat to arrive, else 2 s.
    func settlePeriod(_ incident: Incident) -> Duration {
        if let settle = incident.playbook.guards.settle { return settle }
        let spec = incident.playbook.target(for: incident.target)
        if let probe = spec?.probe { return probe.every * probe.successes + probe.timeout }
        if let heartbeat = spec?.heartbeat { return heartbeat.every * 2 }
        return .seconds(2)
    }

    /// A hold on step `index` ended (its time ran out, what it waited for is back, a human
    /// resumed): the step runs only if the target still needs it. A target healthy again by
    /// then gets none of the plan's remedies: the incident closes as recovered by itself once
    /// it is stable (after the plan's remaining steps that only return or tell, when an earlier
    /// step already acted, such as a `pool: maint`).
    mutating func holdEnded(_ id: Int64, index: Int, hold: String, at now: Timestamp) {
        guard var incident = incidents[id] else { return }
        let step = incident.plan[index]
        let acts = { (step: Step) in step.isDestructive || step.kind.isRemedy }
        guard let state = targets[incident.target], state.healthy == true, acts(step) else {
            runStep(id, index: index, at: now)
            return
        }
        let acted = incident.plan[..<index].contains(where: acts)
        let rest = incident.plan[index...].filter { !acts($0) }
        incident.recoveredByItself = true
        emit(.record(AuditRecord(
            kind: .decision, time: now, target: incident.target, incident: id, playbook: incident.playbook.name,
            playbookHash: incident.playbook.contentHash, step: step.name,
            message: "\(incident.target) is healthy again (since \(state.healthSince?.iso8601 ?? "?")) as the hold ends (\(hold)): \(step.name) is not run"
                + (acted && !rest.isEmpty ? "; finishing the plan without its remedies: \(rest.map(\.name).joined(separator: ", "))" : ""),
            details: ["recovered_by_itself": "true"])))
        if acted, !rest.isEmpty {
            incident.plan = Array(incident.plan[..<index]) + rest
            incidents[id] = incident
            runStep(id, index: index, at: now)
            return
        }
        incident.phase = .stabilising(since: state.healthSince ?? now)
        incidents[id] = incident
        scheduleStabilised(id, at: now)
    }

    /// The unit of `target` failed: a verification waiting for it is judged at once.
    mutating func unitFailed(_ target: String, _ summary: String, at now: Timestamp) {
        for id in (targets[target]?.incidents.values.sorted() ?? []) {
            guard case .verifying(let index, _, _)? = incidents[id]?.phase else { continue }
            verifyFailed(id, index: index, summary: "\(target) failed: \(summary)", at: now)
        }
    }

    /// Steps held by the guard `name` are tried again now: what held them may have cleared
    /// (capacity came back, a silence was ended). A guard still in force holds them again.
    mutating func retryHolds(guard name: String, at now: Timestamp) {
        for id in incidents.keys.sorted() {
            guard case .held(let index, let reason, name)? = incidents[id]?.phase else { continue }
            incidents[id]?.phase = .idle
            incidents[id]?.token = nil
            holdEnded(id, index: index, hold: reason, at: now)
        }
    }

    mutating func planSucceeded(_ id: Int64, at now: Timestamp) {
        guard var incident = incidents[id] else { return }
        if settings.dryRun || incident.playbook.dryRun {
            close(id, outcome: "dry-run", message: "dry-run: the plan was recorded, nothing was done", at: now)
            return
        }
        let state = targets[incident.target]
        incident.phase = .stabilising(since: state?.healthy == true ? max(state?.healthSince ?? now, incident.opened) : now)
        incidents[id] = incident
        if state?.healthy != true {
            incident.phase = .idle
            incidents[id] = incident
            planFailed(id, reason: "\(incident.target) is not healthy after the plan", at: now)
            return
        }
        scheduleStabilised(id, at: now)
    }

    mutating func scheduleStabilised(_ id: Int64, at now: Timestamp) {
        guard var incident = incidents[id], case .stabilising(let since) = incident.phase else { return }
        let due = since.adding(incident.playbook.guards.stabilise)
        if due <= now {
            recovered(id, healthySince: since, at: now)
            return
        }
        let token = token()
        incident.token = token
        incidents[id] = incident
        emit(.wake(token: token, at: due))
    }

    /// The target has been healthy since `healthySince` for the stabilisation period. Time to
    /// recover runs from the fault to `healthySince` (healthy again on fresh evidence); the
    /// stabilisation period is reported beside it.
    mutating func recovered(_ id: Int64, healthySince: Timestamp, at now: Timestamp) {
        guard let incident = incidents[id] else { return }
        let start = incident.occurred ?? incident.opened
        let ttr = max(healthySince.since(start), .zero)
        var details = [
            AuditFact.timeToRecoverMs.name: String(ttr.milliseconds), "attempts": String(incident.attempt), AuditFact.healthyAt.name: healthySince.iso8601,
            AuditFact.stabilisedMs.name: String(now.since(healthySince).milliseconds),
        ]
        if let occurred = incident.occurred { details[.timeToDetectMs] = String(incident.opened.since(occurred).milliseconds) }
        let outcome = incident.recoveredByItself ? "recovered-by-itself" : "recovered"
        close(id, outcome: outcome, message: "\(outcome == "recovered" ? "recovered" : "recovered by itself"): healthy again \(DurationText.format(ttr)) after it broke, then stable for \(DurationText.format(now.since(healthySince)))", at: now, details: details)
        targets[incident.target]?.backoffLevel = 0
    }

    mutating func close(_ id: Int64, outcome: String, message: String, at now: Timestamp, details: [String: String] = [:]) {
        guard let incident = incidents.removeValue(forKey: id) else { return }
        var details = details
        details[.outcome] = outcome
        emit(.record(AuditRecord(
            kind: .incidentClosed, time: now, target: incident.target, incident: id, playbook: incident.playbook.name,
            playbookHash: incident.playbook.contentHash, message: message, details: details)))
        if targets[incident.target]?.incidents[incident.key] == id { targets[incident.target]?.incidents[incident.key] = nil }
        if targets[incident.target]?.busy == id {
            targets[incident.target]?.busy = nil
            runQueued(on: incident.target, at: now)
        }
        switch outcome {
        case "recovered", "recovered-by-itself": counters.recovered += 1
        case "failed", "needs-human": counters.failed += 1
        default: break
        }
    }
}
