import Logging
import MedicCore
import Systemd

/// Samples the resources of the units and the host that have limits, every `interval`, and
/// turns limits held for their duration into observations (through `LimitTracker`).
///
/// A pressure limit (`cpu.pressure > 50%`) compares the share of time some of the target's
/// tasks stalled since the previous look (PSI `some total`), a CPU limit the CPU time used.
/// Where the kernel can say a limit may have been crossed (`LimitEvents`), it is waited for:
/// a pressure limit is a PSI trigger on the same share over 2 s, and is not sampled at all while
/// it stays quiet; a memory limit is also looked at the moment the cgroup's `memory.events`
/// changes (it hit `memory.high` or `memory.max`). After such an event the target is looked at
/// every second while one of its limits is above its threshold, and for 10 s in any case.
/// `board` says, for `medic status`, how each limit is watched.
public struct ResourceWatcher: Sendable {
    public let unitLimits: [String: [ResourceLimit]]
    public let hostLimits: [ResourceLimit]
    public let interval: Duration
    public let board: LimitWatchBoard
    /// Opens when the first round may begin: medicd's start-up reads every target over the
    /// bus, and the first round's reads (each unit's cgroup) would compete with it.
    public let firstRound: Gate
    let manager: SystemdManager
    let sampler: UnitSampler
    let hostSampler: HostSampler
    let logger: Logger

    /// systemd's own accounting, read where the kernel's files do not give a figure.
    static let accounting: [UnitRead] = [.service("MemoryCurrent"), .service("CPUUsageNSec"), .service("TasksCurrent")]
    /// A PSI trigger's window, and how often a target is sampled after an event, and how long.
    static let triggerWindow = Duration.seconds(2)
    static let afterEventEvery = Duration.seconds(1)
    static let afterEventFor = Duration.seconds(10)

    public init(
        manager: SystemdManager, unitLimits: [String: [ResourceLimit]], hostLimits: [ResourceLimit], interval: Duration,
        sampler: UnitSampler = UnitSampler(), hostSampler: HostSampler = HostSampler(), board: LimitWatchBoard = LimitWatchBoard(), firstRound: Gate = Self.openGate, logger: Logger
    ) {
        self.firstRound = firstRound
        self.manager = manager
        self.unitLimits = unitLimits
        self.hostLimits = hostLimits
        self.interval = interval
        self.sampler = sampler
        self.hostSampler = hostSampler
        self.board = board
        self.logger = logger
    }

    /// What makes the watcher look: its round, a kernel event, or the follow-up of one.
    enum Wake: Sendable {
        case round
        case event(String)
        case again(String)
    }

    /// A gate that is open: the first round begins at once.
    public static let openGate: Gate = {
        let gate = Gate()
        gate.open()
        return gate
    }()

    public func run(deliver: @escaping @Sendable (Observation) async -> Void) async {
        await firstRound.wait()
        let (wakes, continuation) = AsyncStream.makeStream(of: Wake.self, bufferingPolicy: .bufferingNewest(65_536))
        let events = LimitEvents { continuation.yield(.event($0)) }
        let ticker = Task {
            var next = ContinuousClock.now
            while !Task.isCancelled {
                continuation.yield(.round)
                next += interval
                try? await Task.sleep(until: next, clock: .continuous)
            }
        }
        var loop = LimitLoop(watcher: self, events: events, generation: board.begin())
        loop.publishAll()
        defer {
            ticker.cancel()
            continuation.finish()
            events.close()
            board.end(loop.generation)
        }
        var lastRound: ContinuousClock.Instant?
        for await wake in wakes {
            switch wake {
            case .round:
                // Rounds that queued up behind a slow one are one round.
                if let lastRound, ContinuousClock.now - lastRound < interval / 2 { continue }
                lastRound = .now
                await loop.round(deliver: deliver)
            case .event(let key), .again(let key):
                if case .event = wake { loop.lastEvent[key] = .now } else { loop.following.remove(key) }
                await loop.look(at: key, deliver: deliver)
                if loop.follows(key), loop.following.insert(key).inserted {
                    Task {
                        try? await Task.sleep(for: Self.afterEventEvery)
                        continuation.yield(.again(key))
                    }
                }
            }
        }
    }

    /// What an observation of a unit's limit tells about the unit besides the figure it compares.
    static func facts(_ sample: UnitSample, _ rates: Rates) -> [String: String] {
        var facts = ["sources": sample.sources.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")]
        facts["memory_bytes"] = sample.memoryBytes.map { String(Int64($0)) }
        facts["cpu_share"] = rates.cpu.map { String($0) }
        facts["tasks"] = sample.tasks.map { String(Int64($0)) }
        for (pressure, average) in sample.pressures { facts[pressure.rawValue + "_pressure"] = String(average) }
        for (pressure, share) in rates.stalls { facts[pressure.rawValue + "_stalled"] = String(share) }
        facts["oom_kills"] = sample.oomKills.map { String(Int64($0)) }
        return facts
    }

    /// The figure a unit's limit compares: bytes, a share of one core, a count, or a share of a
    /// limit.
    static func value(of limit: ResourceLimit, sample: UnitSample, rates: Rates, host: HostSample) -> Double? {
        switch limit.resource {
        case .memory:
            guard let bytes = sample.memoryBytes else { return nil }
            if limit.isPercentage { return host.memoryTotal.map { bytes / $0 } }
            return bytes
        case .cpu:
            return rates.cpu
        case .fds:
            guard let fds = sample.fds else { return nil }
            if limit.isPercentage { return sample.fdLimit.map { fds / max(1, $0) } }
            return fds
        case .tasks:
            return limit.isPercentage ? nil : sample.tasks
        case .disk:
            return nil
        case .pressure(let pressure):
            return rates.stalls[pressure]
        }
    }

    /// The figure a host limit compares.
    static func hostValue(of limit: ResourceLimit, _ host: HostSample, previous: HostSample?) -> Double? {
        switch limit.resource {
        case .memory:
            guard let total = host.memoryTotal, let available = host.memoryAvailable else { return nil }
            return limit.isPercentage ? 1 - available / total : total - available
        case .cpu:
            guard let busy = host.cpuBusy, let total = host.cpuTotal, let oldBusy = previous?.cpuBusy, let oldTotal = previous?.cpuTotal,
                  total > oldTotal else { return nil }
            return (busy - oldBusy) / (total - oldTotal)
        case .disk(let path):
            return host.disks[path]?.blocks
        case .fds:
            guard let used = host.fileHandles, let max = host.fileHandlesMax else { return nil }
            return limit.isPercentage ? used / max : used
        case .tasks:
            return nil
        case .pressure(let pressure):
            guard let stalled = host.stalls[pressure], let before = previous?.stalls[pressure], let then = previous?.taken,
                  host.taken > then else { return nil }
            return max(0, stalled - before) / (host.taken - then).seconds
        }
    }
}
