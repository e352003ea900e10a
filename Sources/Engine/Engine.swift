import Logging
import MedicCore

/// Matches observations to playbooks, opens one incident per (target, trigger), runs its steps
/// one at a time, and records observation → intent → result → close in the audit log.
///
/// Every record is durable before the engine acts on it: a step's intent is written before the
/// step runs, its result after. Steps of different targets run concurrently; steps of one
/// incident run in order.
public actor Engine {
    /// An open incident.
    public struct Incident: Sendable, Equatable {
        public var id: Int64
        public var target: String
        public var trigger: TriggerName
        public var playbook: String
        public var opened: Timestamp
    }

    /// What the engine has done so far, for status lines and tests.
    public struct Counters: Sendable, Equatable {
        public var observations = 0
        public var incidentsOpened = 0
        public var recovered = 0
        public var failed = 0
        public var restarts = 0
    }

    private var playbooksByTarget: [String: Playbook] = [:]
    private let runner: StepRunner
    private let audit: AuditSink
    private let logger: Logger
    private var budget: RestartBudget
    private var open: [String: Incident] = [:]
    private var running: [Int64: Task<Void, Never>] = [:]
    /// A summary of the engine's state, for STATUS= lines.
    public struct Status: Sendable, Equatable {
        public var counters: Counters
        public var openIncidents: Int
    }

    public private(set) var counters = Counters() {
        didSet { onChange?(status) }
    }
    private let onChange: (@Sendable (Status) -> Void)?

    /// The current summary.
    public var status: Status { Status(counters: counters, openIncidents: open.count) }

    /// `onChange` is called (on the engine) whenever the counters change.
    public init(
        playbooks: [Playbook], runner: StepRunner, audit: AuditSink, budget: RestartBudget = RestartBudget(),
        logger: Logger, onChange: (@Sendable (Status) -> Void)? = nil
    ) {
        self.onChange = onChange
        self.runner = runner
        self.audit = audit
        self.budget = budget
        self.logger = logger
        for playbook in playbooks {
            for target in playbook.targets { playbooksByTarget[target.unit] = playbook }
        }
    }

    /// The units some playbook looks after.
    public var targets: [String] { playbooksByTarget.keys.sorted() }

    /// Incidents currently open.
    public var openIncidents: [Incident] { open.values.sorted { $0.id < $1.id } }

    /// Records an observation and, if it triggers a playbook, opens an incident and starts its
    /// steps (or joins the incident already open for that target and trigger).
    public func handle(_ observation: Observation) async {
        counters.observations += 1
        let playbook = playbooksByTarget[observation.target]
        guard let trigger = observation.trigger, let playbook, let rule = playbook.rule(for: trigger) else {
            await write([record(observation, incident: open[observation.target]?.id)])
            return
        }
        if let incident = open[observation.target], incident.trigger == trigger {
            await write([
                record(observation, incident: incident.id),
                AuditRecord(
                    kind: .decision, target: observation.target, incident: incident.id, playbook: playbook.name,
                    playbookHash: playbook.contentHash,
                    message: "joined open incident \(incident.id) instead of opening another"),
            ])
            return
        }
        // The observation and the incident it opens are made durable together.
        let opening = AuditRecord(
            kind: .incidentOpened, time: .now(), target: observation.target, playbook: playbook.name,
            playbookHash: playbook.contentHash,
            message: "\(trigger.rawValue): \(observation.summary); running playbook \(playbook.name)",
            details: ["trigger": trigger.rawValue, "steps": rule.steps.map(\.name).joined(separator: ",")])
        guard let seqs = await write([record(observation, incident: nil), opening]) else { return }
        let incident = Incident(id: seqs[1], target: observation.target, trigger: trigger, playbook: playbook.name, opened: observation.time)
        open[observation.target] = incident
        counters.incidentsOpened += 1
        logger.notice("incident \(incident.id) opened: \(observation.target) \(observation.summary)")
        running[incident.id] = Task { await self.runSteps(rule.steps, incident: incident, playbook: playbook) }
    }

    /// Records something the daemon itself went through (not about one target).
    public func note(_ message: String) async {
        await write([AuditRecord(kind: .daemon, message: message)])
    }

    /// Waits until every incident's steps have finished.
    public func waitUntilIdle() async {
        while let task = running.values.first {
            await task.value
        }
    }

    private func runSteps(_ steps: [Step], incident: Incident, playbook: Playbook) async {
        var outcome = "recovered"
        for (index, step) in steps.enumerated() {
            let label = "\(index + 1)/\(steps.count) \(step.name)"
            if case .restart = step, !budget.take(for: incident.target, at: .now()) {
                let used = budget.used(for: incident.target, at: .now())
                await write([AuditRecord(
                    kind: .stepResult, target: incident.target, incident: incident.id, playbook: playbook.name,
                    playbookHash: playbook.contentHash, step: step.name,
                    message: "refused: \(used) restarts of \(incident.target) in the last \(DurationText.format(budget.window)) already (limit \(budget.limit))",
                    details: ["result": "refused", "step": label])])
                logger.error("incident \(incident.id): restart of \(incident.target) refused, restart limit reached")
                outcome = "failed"
                break
            }
            let intent = AuditRecord(
                kind: .stepIntent, target: incident.target, incident: incident.id, playbook: playbook.name,
                playbookHash: playbook.contentHash, step: step.name, message: "about to \(step)",
                details: ["step": label])
            guard await write([intent]) != nil else {
                outcome = "failed"
                break
            }
            let started = Timestamp.now()
            let result = await runner.run(step, on: incident.target)
            if case .restart = step { counters.restarts += 1 }
            var details = result.details
            details["result"] = result.succeeded ? "succeeded" : "failed"
            details["step"] = label
            details["duration_ms"] = String(Timestamp.now().since(started).milliseconds)
            await write([AuditRecord(
                kind: .stepResult, target: incident.target, incident: incident.id, playbook: playbook.name,
                playbookHash: playbook.contentHash, step: step.name,
                message: "\(step.name) \(result.succeeded ? "succeeded" : "failed"): \(result.summary)", details: details)])
            if !result.succeeded {
                logger.error("incident \(incident.id): \(step.name) of \(incident.target) failed: \(result.summary)")
                outcome = "failed"
                break
            }
        }
        let recoverTime = Timestamp.now().since(incident.opened)
        await write([AuditRecord(
            kind: .incidentClosed, target: incident.target, incident: incident.id, playbook: playbook.name,
            playbookHash: playbook.contentHash,
            message: outcome == "recovered"
                ? "recovered \(DurationText.format(recoverTime)) after the first observation"
                : "remedy failed; \(incident.target) needs a human",
            details: ["outcome": outcome, "time_to_recover_ms": String(recoverTime.milliseconds)])])
        open[incident.target] = nil
        running[incident.id] = nil
        if outcome == "recovered" { counters.recovered += 1 } else { counters.failed += 1 }
        logger.notice("incident \(incident.id) closed: \(outcome)")
    }

    private func record(_ observation: Observation, incident: Int64?) -> AuditRecord {
        AuditRecord(
            kind: .observation, time: observation.time, target: observation.target, incident: incident,
            message: observation.summary, details: observation.facts)
    }

    /// Writes records; logs and returns nil if they could not be made durable.
    @discardableResult
    private func write(_ records: [AuditRecord]) async -> [Int64]? {
        do {
            return try await audit.append(records)
        } catch {
            logger.critical("audit log write failed, not acting on it: \(error)")
            return nil
        }
    }
}
