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
        /// Why the audit log cannot be written, while it cannot.
        public var auditProblem: String?
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
    /// Commands waiting to be carried out, in order.
    private var backlog: [EngineCore.Command] = []
    /// Whether a drain of the backlog is under way (only one at a time).
    private var draining = false
    /// Since when, and why, the audit log cannot be written.
    private var auditFailure: (since: ContinuousClock.Instant, error: String)?
    private var retrying = false
    private var droppedObservations = 0
    /// Commands ever put in the backlog, and ever carried out (their records durable): a
    /// caller that must know its records are durable waits for `carried` to pass its own.
    private var enqueued = 0
    private var carried = 0
    private var durabilityWaiters: [(upTo: Int, continuation: CheckedContinuation<Bool, Never>)] = []

    /// `onChange` is called whenever the status may have changed.
    public init(core: EngineCore, runner: StepRunner, audit: AuditSink, logger: Logger, onChange: (@Sendable (Status) -> Void)? = nil) {
        self.core = core
        self.runner = runner
        self.audit = audit
        self.logger = logger
        self.onChange = onChange
    }

    public var status: Status {
        Status(counters: core.counters, openIncidents: core.openIncidents.count, auditProblem: auditFailure.map { "\($0.error)" })
    }

    /// The engine's counters.
    public var counters: EngineCore.Counters { core.counters }

    /// Incidents currently open.
    public var openIncidents: [(id: Int64, target: String, playbook: String)] { core.openIncidents }

    /// Records an observation and acts on it.
    public func handle(_ observation: Observation) async {
        await carry(core.observe(observation))
    }

    /// Records observations (and `records` of the daemon's own before them) and acts on them,
    /// like `handle`, for a sender that must know they are durable before it says so (an
    /// Alertmanager webhook is answered 2xx only then). True once their records are durable;
    /// false at once, handing nothing over, while the audit log cannot be written (the sender
    /// tries again later); false too if the write fails on the way (they then wait in the
    /// backlog like every record).
    public func handleDurably(_ observations: [Observation], records: [AuditRecord] = []) async -> Bool {
        guard auditFailure == nil else { return false }
        var commands = records.map { EngineCore.Command.record($0) }
        for observation in observations { commands += core.observe(observation) }
        let upTo = enqueued + commands.count
        await carry(commands)
        if carried >= upTo { return true }
        if auditFailure != nil { return false }
        return await withCheckedContinuation { durabilityWaiters.append((upTo, $0)) }
    }

    /// Whether a playbook covering `target` has a rule an alert can set off.
    public func hasAlertRule(for target: String) -> Bool { core.hasAlertRule(for: target) }

    /// Records something the daemon itself went through (not about one target).
    public func note(_ message: String) async {
        await record(AuditRecord(kind: .daemon, message: message))
    }

    /// Registers an incident a previous medicd left open, before the targets are read (see
    /// `EngineCore.register`).
    public func register(incident: Int64, target: String, playbook: String, trigger: String) {
        core.register(incident: incident, target: target, playbook: playbook, trigger: trigger, at: .now())
    }

    /// Takes up an incident a previous medicd left open (see `EngineCore.adopt`).
    public func adopt(incident: Int64, target: String, playbook: String, trigger: String, why: String) async {
        await carry(core.adopt(incident: incident, target: target, playbook: playbook, trigger: trigger, why: why, at: .now()))
    }

    /// A human resumes automatic action on a target (`*`: every target).
    public func resume(_ target: String, actor: String) async {
        await carry(core.resume(target, actor: actor, at: .now()))
    }

    /// A human pauses automatic action on a target (`*`: every target).
    public func pause(_ target: String, actor: String) async {
        await carry(core.pause(target, actor: actor, at: .now()))
    }

    /// A human silences a target (or glob) for a while; written to the chain before it returns.
    public func silence(_ silence: Silence) async {
        await carry(core.silence(silence, at: .now()))
    }

    /// A human ends the silences on exactly `pattern`; returns how many were in force.
    public func unsilence(_ pattern: String, actor: String) async -> Int {
        let (ended, commands) = core.unsilence(pattern, actor: actor, at: .now())
        await carry(commands)
        return ended
    }

    /// A human runs a playbook on a target; returns why it cannot, or nil once it started.
    public func runByHand(playbook: String, target: String, actor: String) async -> String? {
        let (error, commands) = core.runByHand(playbook: playbook, target: target, actor: actor, at: .now())
        await carry(commands)
        return error
    }

    /// The engine's state, for `medic status`.
    public func report() -> EngineReport { core.report(at: .now()) }

    /// Records observations and acts on them, their records written together (a read of every
    /// target at start-up: one durable write, not one per target).
    public func handle(_ observations: [Observation]) async {
        var commands: [EngineCore.Command] = []
        for observation in observations { commands += core.observe(observation) }
        await carry(commands)
    }

    /// Records what a person did that the engine itself does not handle (a silence, a reload).
    public func record(_ record: AuditRecord) async {
        await carry([.record(record)])
    }

    /// Replaces the playbooks; incidents in flight finish under the version they started with.
    public func replacePlaybooks(_ playbooks: [Playbook]) {
        core.replacePlaybooks(playbooks)
    }

    /// Replaces the daemon-wide settings (a reload that changed `dry_run`).
    public func replaceSettings(_ settings: EngineCore.Settings) {
        core.settings = settings
    }

    /// Waits until no step is running. Pending wake-ups (back-off, verification, stabilisation)
    /// are cancelled: they belong to a daemon that is stopping.
    public func stop() async {
        while draining { try? await Task.sleep(for: .milliseconds(10)) }
        // A reboot step that is waiting for the new boot has done its work: the host is going
        // down, and waiting for it would hold the reboot up.
        for token in rebootSteps { steps[token]?.cancel() }
        while let task = steps.values.first {
            await task.value
        }
        for timer in timers.values { timer.cancel() }
        timers.removeAll()
    }

    /// Carries out the core's commands in order, after every command queued before them. A
    /// record must be durable before anything after it is done; while the audit log cannot be
    /// written, commands wait in the backlog (detection goes on, nothing acts blind) and a retry
    /// every second carries them out once it can be written again.
    private func carry(_ commands: [EngineCore.Command]) async {
        enqueue(commands)
        guard !draining, auditFailure == nil else {
            onChange?(status)
            return
        }
        draining = true
        _ = await drain()
        draining = false
        onChange?(status)
    }

    /// Adds to the backlog; past its bound (a long audit outage under a flood of observations)
    /// observation records are dropped first, and counted.
    private func enqueue(_ commands: [EngineCore.Command]) {
        for command in commands {
            if backlog.count >= Self.backlogLimit, case .record(let record) = command, record.kind == .observation {
                droppedObservations += 1
                continue
            }
            backlog.append(command)
            enqueued += 1
        }
    }

    static let backlogLimit = 100_000

    /// Carries out the backlog until it is empty (true) or a write fails (false, the commands
    /// not carried out back at its head).
    private func drain() async -> Bool {
        while !backlog.isEmpty {
            let batch = backlog
            backlog.removeAll()
            if let rest = await carryOut(batch) {
                backlog = rest + backlog
                return false
            }
        }
        return true
    }

    /// Carries out `batch`: every record of it in one durable write, then its steps and
    /// timers, so each step's intent is durable before it runs and a burst of incidents costs
    /// one write, not one a step. Returns the batch if the write failed (nothing was done).
    private func carryOut(_ batch: [EngineCore.Command]) async -> [EngineCore.Command]? {
        var records = batch.compactMap { command -> AuditRecord? in
            if case .record(let record) = command { record } else { nil }
        }
        guard await write(&records) else {
            for waiter in durabilityWaiters { waiter.continuation.resume(returning: false) }
            durabilityWaiters.removeAll()
            return batch
        }
        carried += batch.count
        durabilityWaiters.removeAll { waiter in
            guard waiter.upTo <= carried else { return false }
            waiter.continuation.resume(returning: true)
            return true
        }
        for command in batch { perform(command) }
        return nil
    }

    private func perform(_ command: EngineCore.Command) {
        switch command {
        case .record:
            break
        case .run(let token, let step, let context):
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
            let delay = at.since(.now())
            timers[token] = Task {
                if delay > .zero { try? await Task.sleep(for: delay) }
                if !Task.isCancelled { await self.woke(token) }
            }
        }
    }

    /// Retries the backlog every second until the audit log takes it, then says so in it.
    private func retryUntilWritable() async {
        while let failure = auditFailure {
            try? await Task.sleep(for: .seconds(1))
            if draining { continue }
            draining = true
            let emptied = await drain()
            if emptied {
                auditFailure = nil
                let lost = droppedObservations
                droppedObservations = 0
                logger.notice("audit log writable again after \(DurationText.format(ContinuousClock.now - failure.since))")
                enqueue([.record(AuditRecord(
                    kind: .daemon,
                    message: "the audit log is writable again after \(DurationText.format(ContinuousClock.now - failure.since)) (\(failure.error)); "
                        + "what waited was written and carried out in order" + (lost > 0 ? "; \(lost) observations were dropped meanwhile" : ""),
                    details: ["dropped_observations": String(lost)]))])
                _ = await drain()
            }
            draining = false
            onChange?(status)
        }
        retrying = false
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
            if auditFailure == nil {
                auditFailure = (ContinuousClock.now, "\(error)")
                logger.critical("audit log write failed: \(error); detection goes on, no step runs until the log can be written")
            }
            if !retrying {
                retrying = true
                Task { await self.retryUntilWritable() }
            }
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
        case .stepResult where record.details[.result] == "failed":
            logger.error("\(subject) \(record.message)")
        default:
            break
        }
    }
}
