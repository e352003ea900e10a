import Logging
import MedicCore

/// Drives `EngineCore` in real time: writes its records durably (in order, before anything that
/// follows them), runs its steps through a `StepRunner`, and sleeps until its wake-ups.
/// Steps of different targets run concurrently; the core never starts two on one target.
public actor Engine {
    /// A summary of the engine's state, for STATUS= lines.
    public struct Status: Sendable, Equatable {
        public var counters: EngineCore.Counters
        public var openIncidents: Int
    }

    private var core: EngineCore
    private let runner: StepRunner
    private let audit: AuditSink
    private let logger: Logger
    private let onChange: (@Sendable (Status) -> Void)?
    private var steps: [Int: Task<Void, Never>] = [:]
    private var timers: [Int: Task<Void, Never>] = [:]
    /// Tokens of running reboot steps.
    private var rebootSteps: Set<Int> = []

    /// `onChange` is called whenever the status may have changed.
    public init(core: EngineCore, runner: StepRunner, audit: AuditSink, logger: Logger, onChange: (@Sendable (Status) -> Void)? = nil) {
        self.core = core
        self.runner = runner
        self.audit = audit
        self.logger = logger
        self.onChange = onChange
    }

    public var status: Status { Status(counters: core.counters, openIncidents: core.openIncidents.count) }

    /// The engine's counters.
    public var counters: EngineCore.Counters { core.counters }

    /// Incidents currently open.
    public var openIncidents: [(id: Int64, target: String, playbook: String)] { core.openIncidents }

    /// Records an observation and acts on it.
    public func handle(_ observation: Observation) async {
        await carry(core.observe(observation))
    }

    /// Records something the daemon itself went through (not about one target).
    public func note(_ message: String) async {
        await carry([.record(AuditRecord(kind: .daemon, message: message))])
    }

    /// Replaces the silences in force.
    public func setSilences(_ silences: [Silence]) {
        core.setSilences(silences)
    }

    /// Takes up an incident a previous medicd left open (see `EngineCore.adopt`).
    public func adopt(incident: Int64, target: String, playbook: String, trigger: String, why: String) async {
        await carry(core.adopt(incident: incident, target: target, playbook: playbook, trigger: trigger, why: why, at: .now()))
    }

    /// A human resumes automatic action on a paused target.
    public func resume(_ target: String) async {
        await carry(core.resume(target, at: .now()))
    }

    /// Replaces the playbooks; incidents in flight finish under the version they started with.
    public func replacePlaybooks(_ playbooks: [Playbook]) {
        core.replacePlaybooks(playbooks)
    }

    /// Waits until no step is running. Pending wake-ups (back-off, verification, stabilisation)
    /// are cancelled: they belong to a daemon that is stopping.
    public func stop() async {
        // A reboot step that is waiting for the new boot has done its work: the host is going
        // down, and waiting for it would hold the reboot up.
        for token in rebootSteps { steps[token]?.cancel() }
        while let task = steps.values.first {
            await task.value
        }
        for timer in timers.values { timer.cancel() }
        timers.removeAll()
    }

    private func carry(_ commands: [EngineCore.Command]) async {
        var pending: [AuditRecord] = []
        for command in commands {
            switch command {
            case .record(let record):
                pending.append(record)
            case .run(let token, let step, let context):
                guard await write(&pending) else { return }
                if step.kind == .reboot { rebootSteps.insert(token) }
                steps[token] = Task {
                    let outcome = await runner.run(step, context: context)
                    if Task.isCancelled {
                        // Stopping for the reboot it asked for: the intent stays without a
                        // result, and the medicd of the next boot records how it ended.
                        await self.abandoned(token)
                    } else {
                        await self.finished(token, outcome)
                    }
                }
            case .wake(let token, let at):
                guard await write(&pending) else { return }
                let delay = at.since(.now())
                timers[token] = Task {
                    if delay > .zero { try? await Task.sleep(for: delay) }
                    if !Task.isCancelled { await self.woke(token) }
                }
            }
        }
        _ = await write(&pending)
        onChange?(status)
    }

    private func finished(_ token: Int, _ outcome: StepOutcome) async {
        steps[token] = nil
        rebootSteps.remove(token)
        await carry(core.stepFinished(token: token, outcome: outcome, at: .now()))
    }

    private func abandoned(_ token: Int) {
        steps[token] = nil
        rebootSteps.remove(token)
    }

    private func woke(_ token: Int) async {
        timers[token] = nil
        await carry(core.wake(token: token, at: .now()))
    }

    /// Writes the pending records durably and logs the notable ones; false (and nothing more
    /// may be done) if they could not be made durable.
    private func write(_ pending: inout [AuditRecord]) async -> Bool {
        guard !pending.isEmpty else { return true }
        defer { pending.removeAll() }
        do {
            _ = try await audit.append(pending)
        } catch {
            logger.critical("audit log write failed; not acting on it: \(error)")
            return false
        }
        for record in pending { log(record) }
        return true
    }

    private func log(_ record: AuditRecord) {
        let subject = record.incident.map { "incident \($0)" } ?? (record.target ?? "medicd")
        switch record.kind {
        case .incidentOpened, .incidentClosed:
            logger.notice("\(subject) \(record.kind == .incidentOpened ? "opened" : "closed"): \(record.target ?? "") \(record.message)")
        case .escalation:
            logger.error("\(subject) escalation: \(record.message)")
        case .guardStopped:
            logger.warning("\(subject) \(record.message)")
        case .stepResult where record.details["result"] == "failed":
            logger.error("\(subject) \(record.message)")
        default:
            break
        }
    }
}
