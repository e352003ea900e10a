import Logging
import MedicCore
import Synchronization
import Systemd

/// What the watcher reports: observations, and the bus coming and going (a gap during which
/// signals may have been missed, which the audit log must show).
public enum WatcherEvent: Sendable {
    /// What one signal meant, or what one read of every target found (recorded together).
    case observations([Observation])
    case busLost(String)
    case busRestored
}

/// Watches systemd units over the bus and delivers observations: reads each target's state at
/// start (and again after every reconnect, since signals may have been missed), then follows
/// systemd's PropertiesChanged signals. It never polls.
public actor UnitWatcher {
    private let manager: SystemdManager
    private var tracker: UnitTracker
    private var selectors: [TargetSelector]
    /// Units watched for their health only: the targets' dependencies (configured, and
    /// systemd's Requires=/BindsTo=).
    private var dependencies: Set<String>
    private let logger: Logger

    /// Watches the units the plan names: those its selectors select, and its dependencies for
    /// their health.
    public init(manager: SystemdManager, units: WatchedUnits, logger: Logger) {
        self.manager = manager
        selectors = units.selectors.filter { $0 != .host }
        dependencies = Set(units.dependencies)
        tracker = UnitTracker(selectors: selectors + units.dependencies.map { .unit($0) })
        self.logger = logger
    }

    /// Runs until the bus closes. `ready` is called once every target has been read and is
    /// being watched; `deliver` receives each event in order.
    public func run(
        ready: @Sendable () async -> Void,
        deliver: @escaping @Sendable (WatcherEvent) async -> Void
    ) async throws {
        await deliver(.observations(try await snapshot()))
        await ready()
        // Signals are taken as they come; what they mean is delivered in order, and what came
        // during one delivery (a burst of crashes) goes together in the next.
        await Batcher<WatcherEvent>.pipe(to: { events in
            for event in Self.merged(events) { await deliver(event) }
        }) { batcher in
            for await event in manager.bus.events {
                switch event {
                case .disconnected(let error):
                    logger.warning("lost the bus (\(error)); reconnecting")
                    batcher.add(.busLost("\(error)"))
                case .connected:
                    logger.notice("bus reconnected; re-reading the targets")
                    batcher.add(.busRestored)
                    do {
                        batcher.add(.observations(try await snapshot()))
                    } catch {
                        logger.error("re-reading units after reconnect failed: \(error)")
                    }
                case .unitChanged, .jobNew, .jobRemoved:
                    var observations: [Observation] = []
                    for observation in tracker.ingest(event, at: .now()) {
                        observations.append(await namingFailedCommand(observation).withHostPressure())
                    }
                    if !observations.isEmpty { batcher.add(.observations(observations)) }
                }
            }
        }
    }

    /// `events` with each run of observations as one.
    static func merged(_ events: [WatcherEvent]) -> [WatcherEvent] {
        var merged: [WatcherEvent] = []
        for event in events {
            if case .observations(let more) = event, case .observations(let some)? = merged.last {
                merged[merged.count - 1] = .observations(some + more)
            } else {
                merged.append(event)
            }
        }
        return merged
    }

    /// A crash with no main process (ExecMainPID=0: an `ExecStartPre=` failed, say) is
    /// described by the command that failed, which systemd does not put in its signals: read
    /// once, only then.
    private func namingFailedCommand(_ observation: Observation) async -> Observation {
        guard case .crashed(let kind) = observation.kind, observation.facts["ExecMainPID"] == "0",
              let state = try? await manager.read([.wholeService], of: [observation.target])[observation.target],
              let failed = state.failedCommand
        else { return observation }
        var named = observation
        named.summary = CrashDescription.describe(kind, state)
        named.facts["FailedCommand"] = failed.description
        return named
    }

    /// Watches a new set of targets (after a reload) and returns what reading the new ones found.
    public func retarget(_ units: WatchedUnits) async throws -> [Observation] {
        selectors = units.selectors.filter { $0 != .host }
        dependencies = Set(units.dependencies)
        tracker.retarget(selectors + units.dependencies.map { .unit($0) })
        return try await snapshot()
    }

    /// What is read of every unit: its dependencies. Load, active and sub states come from one
    /// ListUnitsByNames; a unit not active is read in full (its Result, how its process ended).
    /// Each read is a bus call that systemd and the bus daemon answer in about 0.1 ms, so a
    /// running unit costs two; and not every unit is read in full: the Unit interface's GetAll
    /// works out the unit file's install state, about 5 ms a unit the first time (measured,
    /// 1,000 units).
    static let brief: [UnitRead] = [.unit("Requires"), .unit("BindsTo")]
    static let full: [UnitRead] = [.unit("InvocationID"), .wholeService]

    private func read(_ units: [String]) async throws -> [String: UnitState] {
        var states = try await manager.listUnits(named: units)
        let brief = try await manager.read(Self.brief, of: units)
        let full = try await manager.read(Self.full, of: states.filter { $0.value.activeState != "active" }.map(\.key))
        for (unit, state) in brief { states[unit, default: UnitState()].merge(state) }
        for (unit, state) in full { states[unit, default: UnitState()].merge(state) }
        return states
    }

    /// Reads the state of every named target, every loaded unit matching a glob, and every
    /// dependency those need (taking on dependencies systemd names as it finds them): all of a
    /// round's units in one pass over the bus, then the dependencies that round named.
    private func snapshot() async throws -> [Observation] {
        var names = selectors.filter { !$0.isPattern }.map(\.description)
        let patterns = selectors.filter(\.isPattern).map(\.description)
        if !patterns.isEmpty { names += try await manager.listUnits(matching: patterns) }
        let targets = SelectorIndex(selectors.map { ($0, ()) })
        var pending = Set(names).union(dependencies)
        var seen: Set<String> = []
        var observations: [Observation] = []
        while !pending.isEmpty {
            seen.formUnion(pending)
            let states = try await read(Array(pending)).sorted { $0.key < $1.key }
            // A target's dependencies, not watched yet, are taken on and read next round.
            pending = []
            for (unit, state) in states where targets.selects(unit) {
                pending.formUnion((state.requires ?? []).filter { $0.hasSuffix(".service") && !tracker.tracks($0) && !seen.contains($0) })
            }
            if !pending.isEmpty {
                dependencies.formUnion(pending)
                tracker.retarget(selectors + dependencies.map { .unit($0) })
            }
            for (unit, state) in states {
                if state.loadState != "loaded" {
                    logger.warning("\(unit): LoadState=\(state.loadState ?? "unknown"); watching it anyway")
                }
                observations += tracker.snapshot(unit, state, at: .now())
            }
        }
        return observations
    }
}
