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
    private let logger: Logger

    public init(manager: SystemdManager, selectors: [TargetSelector], logger: Logger) {
        self.manager = manager
        self.selectors = selectors.filter { $0 != .host }
        tracker = UnitTracker(selectors: self.selectors)
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
                for observation in tracker.ingest(event, at: .now()) { await deliver(.observation(observation)) }
            }
        }
    }

    /// Watches a new set of targets (after a reload) and returns what reading the new ones found.
    public func retarget(_ selectors: [TargetSelector]) async throws -> [Observation] {
        self.selectors = selectors.filter { $0 != .host }
        tracker.retarget(self.selectors)
        return try await snapshot()
    }

    /// Reads the state of every named target and every loaded unit matching a glob.
    private func snapshot() async throws -> [Observation] {
        var names = selectors.filter { !$0.isPattern }.map(\.description)
        let patterns = selectors.filter(\.isPattern).map(\.description)
        if !patterns.isEmpty { names += try await manager.listUnits(matching: patterns) }
        var observations: [Observation] = []
        for unit in Set(names).sorted() {
            let state = try await manager.state(of: unit)
            if state.loadState != "loaded" {
                logger.warning("\(unit): LoadState=\(state.loadState ?? "unknown"); watching it anyway")
            }
            observations += tracker.snapshot(unit, state, at: .now())
        }
        return observations
    }
}
