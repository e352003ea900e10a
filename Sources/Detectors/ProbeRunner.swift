import Logging
import MedicCore

/// Runs each target's probe on its interval (first runs staggered at random, so a hundred
/// probes do not fire at once), with a bound on how many run at a time, and reports a target
/// `unhealthy` after its consecutive-failure count and `healthy` after its consecutive-success
/// count. A probe that hangs is ended by its own timeout and never stalls the others.
public struct ProbeRunner: Sendable {
    /// The units and their probes.
    public let probes: [(unit: String, probe: Probe)]
    private let check: ProbeCheck
    private let limiter: ConcurrencyLimit
    private let restarts: RestartNotices
    private let logger: Logger

    /// `restarts`: targets brought up again, whose probe starts counting afresh so that it says
    /// `healthy` again once the new process passes. `limiter`: shared by runners that must
    /// not exceed one bound together (one runner per probe, as medicd has).
    public init(
        probes: [(unit: String, probe: Probe)], limiter: ConcurrencyLimit = ConcurrencyLimit(32), check: ProbeCheck = ProbeCheck(),
        restarts: RestartNotices = RestartNotices(), logger: Logger
    ) {
        self.probes = probes
        self.check = check
        self.restarts = restarts
        self.limiter = limiter
        self.logger = logger
    }

    /// Runs until cancelled, delivering each transition.
    public func run(deliver: @escaping @Sendable (Observation) async -> Void) async {
        await withTaskGroup(of: Void.self) { group in
            for (unit, probe) in probes {
                group.addTask { await loop(unit: unit, probe: probe, deliver: deliver) }
            }
        }
    }

    private func loop(unit: String, probe: Probe, deliver: @Sendable (Observation) async -> Void) async {
        var counter = ProbeCounter(failures: probe.failures, successes: probe.successes)
        let stagger = Double.random(in: 0..<1) * probe.every.seconds
        try? await Task.sleep(for: .milliseconds(Int64(stagger * 1000)))
        while !Task.isCancelled {
            let started = ContinuousClock.now
            await limiter.acquire()
            let result = await check.run(probe)
            await limiter.release()
            let probeStarted = Timestamp.now().adding(.zero - (ContinuousClock.now - started))
            if restarts.take(unit) {
                // Brought up again: what the probe saw before spoke of the replaced process.
                counter = ProbeCounter(failures: probe.failures, successes: probe.successes)
                try? await Task.sleep(until: started + probe.every, clock: .continuous)
                continue
            }
            if let healthy = counter.record(passed: result.passed) {
                let summary = healthy
                    ? "probe passing again (\(result.detail), \(counter.successes) in a row)"
                    : "probe failing: \(result.detail) (\(counter.failuresInRow) in a row)"
                // `occurred`: when the probe that decided began, so the engine can tell a verdict
                // about a process it has since restarted.
                await deliver(Observation(
                    target: unit, kind: healthy ? .healthy : .unhealthy, time: .now(), occurred: probeStarted,
                    facts: ["probe": probe.kindDescription, "result": result.detail, "latency_ms": String(result.latency.milliseconds)],
                    summary: summary))
            }
            let next = started + probe.every
            try? await Task.sleep(until: next, clock: .continuous)
        }
    }
}

/// Hysteresis: `failures` failures in a row make unhealthy, `successes` passes in a row make
/// healthy. Returns the new state when it changes (the first verdict counts as a change), and
/// repeats `unhealthy` at 2, 4, 8… times `failures` failures in a row.
public struct ProbeCounter: Sendable {
    public let failures: Int
    public let successes: Int
    private var passesInRow = 0
    /// Failures in a row so far.
    public private(set) var failuresInRow = 0
    public private(set) var healthy: Bool?

    public init(failures: Int, successes: Int) {
        self.failures = failures
        self.successes = successes
    }

    public mutating func record(passed: Bool) -> Bool? {
        if passed {
            passesInRow += 1
            failuresInRow = 0
            if healthy != true, passesInRow >= successes { healthy = true; return true }
        } else {
            failuresInRow += 1
            passesInRow = 0
            if healthy != false, failuresInRow >= failures { healthy = false; return false }
            // Still failing: said again at 2, 4, 8… times the count, so that a verdict the
            // engine set aside as older than a restart is followed by a fresh one.
            if healthy == false, failuresInRow % failures == 0, (failuresInRow / failures).nonzeroBitCount == 1 { return false }
        }
        return nil
    }
}

/// At most N at a time (probes running at once).
public actor ConcurrencyLimit {
    private var available: Int
    private var waiting: [CheckedContinuation<Void, Never>] = []

    public init(_ limit: Int) { available = max(1, limit) }

    func acquire() async {
        if available > 0 {
            available -= 1
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    func release() {
        if waiting.isEmpty { available += 1 } else { waiting.removeFirst().resume() }
    }
}

extension Probe {
    /// `http http://127.0.0.1:8081/health`, for the audit log.
    public var kindDescription: String {
        switch kind {
        case .http(let url): "http \(url)"
        case .tcp(let address): "tcp \(address)"
        case .exec(let command): "exec \(command.joined(separator: " "))"
        }
    }
}
