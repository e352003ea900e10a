import MedicCore
import Systemd

/// Turns systemd's unit signals into observations, for the units it tracks. Pure: it holds the
/// last known state of each unit and decides; `UnitWatcher` feeds it from the bus.
///
/// systemd sends a snapshot of every changed interface (Unit and Service) at each state change,
/// often repeated. A crash is reported once per crash episode: when a Service snapshot first
/// shows a non-success `Result` (the earliest sign, ~2 ms after the process died), or when the
/// unit enters `failed` without one. A later snapshot with `Result=success` (the unit was
/// started again) ends the episode; repeated snapshots of a state already seen report nothing.
public struct UnitTracker: Sendable {
    private struct Tracked: Sendable {
        var state = UnitState()
        var crashOpen = false
    }
    private var units: [String: Tracked] = [:]
    private var selectors: [TargetSelector]

    /// Tracks the units `selectors` select (names or globs); units matching a glob are taken on
    /// as they appear.
    public init(selectors: [TargetSelector]) {
        self.selectors = selectors
    }

    /// Tracks exactly these units.
    public init(units: [String]) {
        self.init(selectors: units.map { .unit($0) })
    }

    /// Changes what is tracked (a reload); units no longer selected are forgotten.
    public mutating func retarget(_ selectors: [TargetSelector]) {
        self.selectors = selectors
        units = units.filter { name, _ in selectors.contains { $0.matches(name) } }
    }

    /// Whether a unit is (or would be) tracked.
    public func tracks(_ unit: String) -> Bool { selectors.contains { $0.matches(unit) } }

    /// The units tracked so far.
    public var trackedUnits: [String] { units.keys.sorted() }

    /// The last known state of a unit.
    public func state(of unit: String) -> UnitState? { units[unit]?.state }

    /// Takes a full state read with GetAll (at start, or after a reconnect): reports a unit
    /// found crashed, unless that crash was already reported.
    public mutating func snapshot(_ unit: String, _ state: UnitState, at time: Timestamp) -> [Observation] {
        guard tracks(unit) else { return [] }
        var tracked = units[unit] ?? Tracked()
        let previous = tracked.state
        tracked.state = state
        var observations: [Observation] = []
        if previous.activeState != state.activeState || previous.subState != state.subState {
            observations.append(stateChanged(unit, tracked.state, at: time, note: "state read from systemd"))
        }
        let crashed = state.result.flatMap(CrashKind.init(systemdResult:))
        if let crashed, state.activeState != "active", !tracked.crashOpen {
            tracked.crashOpen = true
            observations.append(crash(unit, crashed, tracked.state, at: time))
        } else if crashed == nil {
            tracked.crashOpen = false
        }
        units[unit] = tracked
        return observations
    }

    /// Takes one bus event and returns what it means for the tracked units.
    public mutating func ingest(_ event: BusEvent, at time: Timestamp) -> [Observation] {
        guard case .unitChanged(let unit, let change) = event, tracks(unit) else { return [] }
        var tracked = units[unit] ?? Tracked()
        let previous = tracked.state
        tracked.state.merge(change)
        var observations: [Observation] = []
        let state = tracked.state
        if previous.activeState != state.activeState || previous.subState != state.subState, change.activeState != nil {
            observations.append(stateChanged(unit, state, at: time, note: nil))
        }
        if let result = change.result {
            // A Service snapshot: its Result is the current run's.
            if let kind = CrashKind(systemdResult: result) {
                if !tracked.crashOpen {
                    tracked.crashOpen = true
                    if let job = state.job, !job.isNone, !job.ours, ["stop", "restart", "try-restart", "reload-or-start"].contains(job.type) {
                        // Not a crash: someone asked systemd to take it down.
                        observations.append(Observation(
                            target: unit, kind: .stoppedByRequest(job.type), time: time, facts: facts(state),
                            summary: "taken down by a \(job.type) job someone else asked for (\(CrashDescription.describe(kind, state)))"))
                    } else {
                        observations.append(crash(unit, kind, state, at: time))
                    }
                }
            } else {
                tracked.crashOpen = false
            }
        } else if change.activeState == "failed", previous.activeState != "failed", !tracked.crashOpen {
            // A unit that entered `failed` without a Service snapshot saying why.
            tracked.crashOpen = true
            observations.append(crash(unit, state.result.flatMap(CrashKind.init(systemdResult:)) ?? .other, state, at: time))
        }
        units[unit] = tracked
        return observations
    }

    private func stateChanged(_ unit: String, _ state: UnitState, at time: Timestamp, note: String?) -> Observation {
        var summary = "\(state.activeState ?? "?") (\(state.subState ?? "?"))"
        if let note { summary += ", \(note)" }
        return Observation(target: unit, kind: .stateChanged, time: time, facts: facts(state), summary: summary)
    }

    private func crash(_ unit: String, _ kind: CrashKind, _ state: UnitState, at time: Timestamp) -> Observation {
        Observation(
            target: unit, kind: .crashed(kind), time: time, occurred: exitTime(state, seen: time), facts: facts(state),
            summary: CrashDescription.describe(kind, state))
    }

    /// When the main process exited, from systemd's ExecMainExitTimestamp, on both clocks.
    private func exitTime(_ state: UnitState, seen: Timestamp) -> Timestamp? {
        guard let usec = state.execMainExitTimestamp, usec > 0 else { return nil }
        let wall = Int64(usec)
        guard wall <= seen.wallMicroseconds, seen.wallMicroseconds - wall < 3_600_000_000 else { return nil }
        return Timestamp(wallMicroseconds: wall, monotonicNanoseconds: seen.monotonicNanoseconds - (seen.wallMicroseconds - wall) * 1000)
    }

    private func facts(_ state: UnitState) -> [String: String] {
        var facts: [String: String] = [:]
        facts["ActiveState"] = state.activeState
        facts["SubState"] = state.subState
        facts["Result"] = state.result
        facts["MainPID"] = state.mainPID.map(String.init)
        facts["ExecMainPID"] = state.execMainPID.map(String.init)
        facts["ExecMainCode"] = state.execMainCode.map(String.init)
        facts["ExecMainStatus"] = state.execMainStatus.map(String.init)
        facts["NRestarts"] = state.nRestarts.map(String.init)
        facts["InvocationID"] = state.invocationID
        if let job = state.job, !job.isNone { facts["Job"] = "\(job.type) \(job.id)\(job.ours ? " (medic)" : "")" }
        return facts
    }
}
