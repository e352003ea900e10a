import Logging
import MedicCore
import Synchronization
import Systemd

/// What the watcher reports: observations, and the bus coming and going (a gap during which
/// signals may have been missed, which the audit log must show).
public enum WatcherEvent: Sendable {
    case observation(Observation)
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
        deliver: @Sendable (WatcherEvent) async -> Void
    ) async throws {
        for observation in try await snapshot() { await deliver(.observation(observation)) }
        await ready()
        for await event in manager.bus.events {
            switch event {
            case .disconnected(let error):
                logger.warning("lost the bus (\(error)); reconnecting")
                await deliver(.busLost("\(error)"))
            case .connected:
                logger.notice("bus reconnected; re-reading the targets")
                await deliver(.busRestored)
                do {
                    for observation in try await snapshot() { await deliver(.observation(observation)) }
                } catch {
                    logger.error("re-reading units after reconnect failed: \(error)")
                }
            case .unitChanged, .jobNew, .jobRemoved:
                for observation in tracker.ingest(event, at: .now()) {
                    await deliver(.observation(await namingFailedCommand(observation).withHostPressure()))
                }
            }
        }
    }

    /// A crash with no main process (ExecMainPID=0: an `ExecStartPre=` failed, say) is
    /// described by the command that failed, which systemd does not put in its signals: read
    /// once, only then.
    private func namingFailedCommand(_ observation: Observation) async -> Observation {
        guard case .crashed(let kind) = observation.kind, observation.facts["ExecMainPID"] == "0",
              let state = try? await manager.state(of: observation.target), let failed = state.failedCommand
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

    /// Reads the state of every named target, every loaded unit matching a glob, and every
    /// dependency those need (taking on dependencies systemd names as it finds them).
    private func snapshot() async throws -> [Observation] {
        var names = selectors.filter { !$0.isPattern }.map(\.description)
        let patterns = selectors.filter(\.isPattern).map(\.description)
        if !patterns.isEmpty { names += try await manager.listUnits(matching: patterns) }
        var pending = Set(names).union(dependencies).sorted()
        var seen: Set<String> = []
        var observations: [Observation] = []
        while let unit = pending.popLast() {
            guard seen.insert(unit).inserted else { continue }
            let state = try await manager.state(of: unit)
            if state.loadState != "loaded" {
                logger.warning("\(unit): LoadState=\(state.loadState ?? "unknown"); watching it anyway")
            }
            let needs = (state.requires ?? []).filter { $0.hasSuffix(".service") && !tracker.tracks($0) }
            if !needs.isEmpty, selectors.contains(where: { $0.matches(unit) }) {
                dependencies.formUnion(needs)
                tracker.retarget(selectors + dependencies.map { .unit($0) })
                pending += needs
            }
            observations += tracker.snapshot(unit, state, at: .now())
        }
        return observations
    }
}
