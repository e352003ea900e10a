import Logging
import MedicCore
import Systemd

/// What the watcher reports: observations, and the bus coming and going (a gap during which
/// signals may have been missed, which the audit log must show).
public enum WatcherEvent: Sendable {
    case observation(Observation)
    case busLost(String)
    case busRestored
}

/// Watches systemd units over the bus and delivers observations: reads each unit's state at
/// start (and again after every reconnect, since signals may have been missed), then follows
/// systemd's PropertiesChanged signals. It never polls.
public struct UnitWatcher: Sendable {
    private let manager: SystemdManager
    private let units: [String]
    private let logger: Logger

    public init(manager: SystemdManager, units: [String], logger: Logger) {
        self.manager = manager
        self.units = units
        self.logger = logger
    }

    /// Runs until the bus closes. `ready` is called once every unit has been read and is being
    /// watched; `deliver` receives each event in order.
    public func run(
        ready: @Sendable () async -> Void,
        deliver: @Sendable (WatcherEvent) async -> Void
    ) async throws {
        var tracker = UnitTracker(units: units)
        for observation in try await snapshot(&tracker) { await deliver(.observation(observation)) }
        await ready()
        for await event in manager.bus.events {
            switch event {
            case .disconnected(let error):
                logger.warning("lost the bus (\(error)); reconnecting")
                await deliver(.busLost("\(error)"))
            case .connected:
                logger.notice("bus reconnected; re-reading \(units.count) units")
                await deliver(.busRestored)
                do {
                    for observation in try await snapshot(&tracker) { await deliver(.observation(observation)) }
                } catch {
                    logger.error("re-reading units after reconnect failed: \(error)")
                }
            case .unitChanged, .jobRemoved:
                for observation in tracker.ingest(event, at: .now()) { await deliver(.observation(observation)) }
            }
        }
    }

    private func snapshot(_ tracker: inout UnitTracker) async throws -> [Observation] {
        var observations: [Observation] = []
        for unit in units {
            let state = try await manager.state(of: unit)
            if state.loadState != "loaded" {
                logger.warning("\(unit): LoadState=\(state.loadState ?? "unknown"); watching it anyway")
            }
            observations += tracker.snapshot(unit, state, at: .now())
        }
        return observations
    }
}
