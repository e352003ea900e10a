import Glibc
import MedicCore
import Systemd

/// The resource watcher's state from one look to the next: each unit's cgroup, what was
/// sampled last, which limits the kernel watches (`LimitEvents`) and when each target's last
/// event came.
struct LimitLoop {
    let watcher: ResourceWatcher
    let events: LimitEvents
    /// This watcher's account on the board.
    let generation: Int
    private var tracker = LimitTracker()
    private var rates = RateMeter()
    private var quiet = QuietSlices()
    private var previousHost: HostSample?
    private var groups: [String: String] = [:]
    /// Per target, the limits an armed PSI trigger watches: rounds do not sample them.
    private var triggered: [String: Set<ResourceLimit>] = [:]
    /// Per target, why its limits could not be armed (kept until its cgroup changes).
    private var unarmable: [String: (group: String, reason: String)] = [:]
    /// The cgroup each target's events were armed in.
    private var armedIn: [String: String] = [:]
    var lastEvent: [String: ContinuousClock.Instant] = [:]
    /// Targets with a follow-up look on its way.
    var following: Set<String> = []
    private let mounts: [String]
    private let hostPressureLimits: [ResourceLimit]
    /// Per target with any, the limits the kernel can tell about: pressure above a threshold
    /// (a PSI trigger), memory above one (memory.events, where cgroup2 has the memory
    /// controller).
    private let eventLimits: [String: [ResourceLimit]]
    /// Each limit's text and how a sampled limit is watched, made once: every target's entry on
    /// the board shares them.
    private let descriptions: [ResourceLimit: String]
    private let sampledEvery: String

    static let host = TargetSelector.hostName

    init(watcher: ResourceWatcher, events: LimitEvents, generation: Int) {
        self.watcher = watcher
        self.events = events
        self.generation = generation
        mounts = watcher.hostLimits.compactMap { if case .disk(let path) = $0.resource { path } else { nil } }
        hostPressureLimits = watcher.hostLimits.filter { if case .pressure = $0.resource { true } else { false } }
        let memoryEvents = watcher.sampler.unifiedMemory
        let byEvent = { (limit: ResourceLimit) -> Bool in
            guard limit.comparison == .greater || limit.comparison == .greaterOrEqual else { return false }
            switch limit.resource {
            case .pressure: return true
            case .memory: return memoryEvents
            default: return false
            }
        }
        // The host has pressure files, not a cgroup's memory.events.
        let hostByEvent = hostPressureLimits.filter(byEvent)
        // Units with the same limits share one list.
        var lists: Set<[ResourceLimit]> = []
        let unitsByEvent = watcher.unitLimits.compactMapValues { limits in
            let watched = limits.filter(byEvent)
            return watched.isEmpty ? nil : lists.insert(watched).memberAfterInsert
        }
        eventLimits = unitsByEvent.merging(hostByEvent.isEmpty ? [:] : [Self.host: hostByEvent]) { units, _ in units }
        let limits = Set(watcher.unitLimits.values.joined()).union(watcher.hostLimits)
        descriptions = Dictionary(uniqueKeysWithValues: limits.map { ($0, $0.description) })
        sampledEvery = "sampled every \(DurationText.format(watcher.interval))"
    }

    /// Samples every target's limits that no event covers, and arms what can be armed.
    mutating func round(deliver: @Sendable (Observation) async -> Void) async {
        let sampledHost = watcher.hostLimits.filter { !(triggered[Self.host]?.contains($0) ?? false) }
        let host = watcher.hostSampler.sample(mounts: mounts, pressures: !hostPressureLimits.isEmpty)
        // Known once a unit runs (empty while it does not); it keeps its path across
        // restarts. Those not known yet are read together, in one pass over the bus.
        let unknown = watcher.unitLimits.keys.filter { groups[$0]?.isEmpty ?? true }
        if !unknown.isEmpty, let states = try? await watcher.manager.read([.service("ControlGroup")], of: unknown) {
            for (unit, state) in states { groups[unit] = state.controlGroup }
        }
        let now = ContinuousClock.now
        quiet.beginRound(at: now)
        var skipped = false
        for (unit, limits) in watcher.unitLimits {
            guard let group = groups[unit], !group.isEmpty else { continue }
            arm(unit, limits, group: group)
            let sampled = triggered[unit].map { armed in limits.filter { !armed.contains($0) } } ?? limits
            guard !sampled.isEmpty else { continue }
            if unchanged(unit, group: group, limits: sampled) {
                rates.unchanged(unit, at: now)
                skipped = true
                continue
            }
            await sample(unit, group: group, limits: sampled, host: host, deliver: deliver)
        }
        // The files of the units skipped stay open for their next read; every file is read
        // again in a refreshing round at the latest.
        if !skipped { watcher.sampler.files.endRound() }
        arm(Self.host, watcher.hostLimits, group: nil)
        await evaluateHost(sampledHost, host, deliver: deliver)
        previousHost = host
    }

    /// Whether `unit`'s `limits` were all below their thresholds at its last sample and stay there because its
    /// slice has used no CPU since the round before (`QuietSlices`): then it is not sampled.
    private mutating func unchanged(_ unit: String, group: String, limits: [ResourceLimit]) -> Bool {
        // The slice is read before any unit in it is sampled this round.
        let files = watcher.sampler.files, root = watcher.sampler.unifiedRoot
        guard quiet.isQuiet(group, usage: { files.keyed(root + $0 + "/cpu.stat", "usage_usec") }) else { return false }
        // A unit not evaluated since its cgroup became known is sampled: it may have started above
        // a limit and slept since.
        return limits.allSatisfy { QuietSlices.holdsWhileIdle($0) && tracker.wasBelow(target: unit, limit: $0) }
    }

    /// Looks at `target` now, after a kernel event or as its follow-up: every limit of it.
    mutating func look(at target: String, deliver: @Sendable (Observation) async -> Void) async {
        if target == Self.host {
            arm(Self.host, watcher.hostLimits, group: nil)
            let host = watcher.hostSampler.sample(mounts: [], pressures: true)
            await evaluateHost(hostPressureLimits, host, deliver: deliver)
            previousHost = host
            return
        }
        guard let limits = watcher.unitLimits[target], let group = groups[target], !group.isEmpty else { return }
        arm(target, limits, group: group)
        await sample(target, group: group, limits: limits, host: watcher.hostSampler.sample(mounts: []), deliver: deliver)
    }

    /// Whether `target` is looked at again shortly: an event came within the last 10 s, or a
    /// limit the kernel watches is above its threshold (to see it hold, then clear).
    func follows(_ target: String) -> Bool {
        if let last = lastEvent[target], ContinuousClock.now - last < ResourceWatcher.afterEventFor { return true }
        return triggered[target]?.contains { tracker.isActive(target: target, limit: $0) } ?? false
    }

    /// Arms `target`'s event limits, unless armed in this cgroup already or known not to work
    /// there. A trigger whose cgroup went away (the unit stopped) was disarmed by `LimitEvents`;
    /// it is armed again once the cgroup is back.
    private mutating func arm(_ target: String, _ limits: [ResourceLimit], group: String?) {
        guard let candidates = eventLimits[target] else { return }
        let place = group ?? "/proc/pressure"
        if events.isArmed(target), armedIn[target] == place { return }
        if let unarmable = unarmable[target], unarmable.group == place { return }
        events.disarm(target)
        triggered[target] = []
        armedIn[target] = nil
        let directory = group.map { watcher.sampler.unifiedRoot + $0 } ?? "/proc/pressure"
        // A unit between two runs has no cgroup: armed when it has one again.
        guard access(directory, F_OK) == 0 else {
            publish(target, limits)
            return
        }
        var armed: Set<ResourceLimit> = []
        var problems: [String] = []
        for limit in candidates {
            guard case .pressure(let pressure) = limit.resource else { continue }
            let path = directory + "/" + (group == nil ? pressure.rawValue : pressure.name)
            if let problem = events.armPressure(path, share: limit.threshold, window: ResourceWatcher.triggerWindow, for: target) {
                problems.append(problem)
            } else {
                armed.insert(limit)
            }
        }
        // One watch of memory.events wakes every memory limit of the target.
        if candidates.contains(where: { $0.resource == .memory }), let problem = events.watchChanges(directory + "/memory.events", for: target) {
            problems.append(problem)
        }
        triggered[target] = armed
        armedIn[target] = place
        unarmable[target] = problems.isEmpty ? nil : (place, problems.joined(separator: "; "))
        if !problems.isEmpty { watcher.logger.warning("resources: \(target): sampled instead: \(problems.joined(separator: "; "))") }
        publish(target, limits)
    }

    /// Says how each limit is watched, for `medic status`.
    func publishAll() {
        for (unit, limits) in watcher.unitLimits { publish(unit, limits) }
        if !watcher.hostLimits.isEmpty { publish(Self.host, watcher.hostLimits) }
    }

    private func publish(_ target: String, _ limits: [ResourceLimit]) {
        let place = armedIn[target].map { $0 == "/proc/pressure" ? $0 : watcher.sampler.unifiedRoot + $0 }
        watcher.board.set(target, limits.map { limit in
            var how = sampledEvery
            let byEvent = eventLimits[target]?.contains(limit) ?? false
            if triggered[target]?.contains(limit) ?? false, case .pressure(let pressure) = limit.resource, let place {
                how = "kernel event: PSI trigger on \(place)/\(place == "/proc/pressure" ? pressure.rawValue : pressure.name)"
            } else if byEvent, limit.resource == .memory, let place, unarmable[target] == nil {
                how += ", and at once when \(place)/memory.events changes"
            } else if byEvent, let problem = unarmable[target]?.reason {
                how += " (no kernel event: \(problem))"
            }
            return LimitWatch(target: target, limit: descriptions[limit] ?? limit.description, how: how)
        }, generation: generation)
    }

    /// Samples what `limits` compare and evaluates them.
    private mutating func sample(
        _ unit: String, group: String, limits: [ResourceLimit], host: HostSample, deliver: @Sendable (Observation) async -> Void
    ) async {
        let sampler = watcher.sampler
        let figures = limits.reduce(into: UnitSampler.Figures()) { $0.formUnion(UnitSampler.Figures($1.resource)) }
        var sample = sampler.sample(controlGroup: group, figures: figures)
        if figures.contains(.memory) && sample.memoryBytes == nil || figures.contains(.cpu) && sample.cpuSeconds == nil,
           let state = try? await watcher.manager.read(ResourceWatcher.accounting, of: [unit])[unit] {
            sample = sampler.sample(controlGroup: group, systemd: state, figures: figures)
        }
        let rates = rates.rates(unit, sample, at: .now)
        for limit in limits {
            guard let value = ResourceWatcher.value(of: limit, sample: sample, rates: rates, host: host) else { continue }
            let observation = tracker.evaluate(
                target: unit, limit: limit, value: value, at: .now(),
                facts: ResourceWatcher.facts(sample.filled(from: sampler.sample(controlGroup: group, figures: .all.subtracting(figures))), rates))
            if let observation { await deliver(observation) }
        }
    }

    private mutating func evaluateHost(_ limits: [ResourceLimit], _ host: HostSample, deliver: @Sendable (Observation) async -> Void) async {
        for limit in limits {
            guard let value = ResourceWatcher.hostValue(of: limit, host, previous: previousHost) else { continue }
            if let observation = tracker.evaluate(target: Self.host, limit: limit, value: value, at: .now()) {
                await deliver(observation)
            }
        }
    }
}
