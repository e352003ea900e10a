import MedicCore
import Systemd

/// Turns systemd's unit signals into observations, for the units it tracks. Pure: it holds the
/// last known state of each unit and decides; `UnitWatcher` feeds it from the bus.
///
/// systemd sends a snapshot of every changed interface (Unit and Service) at each state change,
/// often repeated. A crash is reported once per crash episode: when a Service snapshot first
/// shows a non-success `Result` (the earliest sign, ~2 ms after the process died), or when the
/// unit enters `failed` without one. A later snapshot with `Result=success` (the unit was
/// started again) ends the episode; repeated snapshots of a state already seen report nothing,
/// and a different result (systemd giving up with start-limit-hit) is reported again.
public struct UnitTracker: Sendable {
    private struct Tracked: Sendable {
        var state = KeptUnitState()
        /// The result of the crash episode already reported (nil: none open). A new non-success
        /// result (exit-code, then start-limit-hit) is a new report.
        var crashReported: String?
        /// The last job queued for the unit, and when it finished (nil while pending).
        var job: (id: UInt32, ours: Bool, finished: Timestamp?)?
        /// Whether the unit got as far as starting its processes since that job was queued.
        var startedSinceJob = false
    }

    /// A crash this soon after someone else's stop or restart job finished is that job's doing
    /// (systemd may send the job's end before the unit's new state).
    static let jobGrace: Duration = .milliseconds(500)
    private var units: [String: Tracked] = [:]
    private var selectors: SelectorIndex<Void>

    /// Tracks the units `selectors` select (names or globs); units matching a glob are taken on
    /// as they appear.
    public init(selectors: [TargetSelector]) {
        self.selectors = SelectorIndex(selectors.map { ($0, ()) })
    }

    /// Tracks exactly these units.
    public init(units: [String]) {
        self.init(selectors: units.map { .unit($0) })
    }

    /// Changes what is tracked (a reload); units no longer selected are forgotten.
    public mutating func retarget(_ selectors: [TargetSelector]) {
        self.selectors = SelectorIndex(selectors.map { ($0, ()) })
        units = units.filter { name, _ in tracks(name) }
    }

    /// Whether a unit is (or would be) tracked.
    public func tracks(_ unit: String) -> Bool { selectors.selects(unit) }


    /// Takes a full state read with GetAll (at start, or after a reconnect): reports a unit
    /// found crashed, unless that crash was already reported.
    public mutating func snapshot(_ unit: String, _ state: UnitState, at time: Timestamp) -> [Observation] {
        guard tracks(unit) else { return [] }
        var tracked = units[unit] ?? Tracked()
        let previous = tracked.state
        tracked.state = KeptUnitState(state)
        var observations: [Observation] = []
        if previous.activeState != state.activeState || previous.subState != state.subState {
            observations.append(stateChanged(unit, state, at: time, note: "state read from systemd"))
        }
        let crashed = state.result.flatMap(CrashKind.init(systemdResult:))
        if let crashed, state.activeState != "active", tracked.crashReported != state.result {
            tracked.crashReported = state.result
            observations.append(crash(unit, crashed, state, at: time))
        } else if crashed == nil {
            tracked.crashReported = nil
        }
        units[unit] = tracked
        return observations
    }

    /// Takes one bus event and returns what it means for the tracked units.
    public mutating func ingest(_ event: BusEvent, at time: Timestamp) -> [Observation] {
        switch event {
        case .jobNew(let id, _, let unit, let ours) where tracks(unit):
            units[unit, default: Tracked()].job = (id, ours, nil)
            units[unit]?.startedSinceJob = false
            return []
        case .jobRemoved(let id, _, let unit, let result) where tracks(unit):
            guard var tracked = units[unit], tracked.job?.id == id else { return [] }
            tracked.job?.finished = time
            var observations: [Observation] = []
            if result == "failed", !tracked.startedSinceJob, tracked.state.activeState == "failed",
               tracked.crashReported != CrashKind.startLimitHit.rawValue {
                // systemd refused to start it at all: the start limit (its Result may still
                // name the last run's failure).
                tracked.crashReported = CrashKind.startLimitHit.rawValue
                observations.append(Observation(
                    target: unit, kind: .crashed(.startLimitHit), time: time, facts: facts(tracked.state.unitState).merging(["Job": "\(id) failed"]) { $1 },
                    summary: "start limit hit: systemd refused to start the unit again (start request repeated too quickly)"))
            }
            units[unit] = tracked
            return observations
        default:
            break
        }
        guard case .unitChanged(let unit, let change) = event, tracks(unit) else { return [] }
        var tracked = units[unit] ?? Tracked()
        let previous = tracked.state
        tracked.state.merge(change)
        var observations: [Observation] = []
        let state = tracked.state.unitState
        if state.activeState == "active" || (state.activeState == "activating" && state.subState != "auto-restart") {
            tracked.startedSinceJob = true
        }
        if previous.activeState != state.activeState || previous.subState != state.subState, change.activeState != nil {
            observations.append(stateChanged(unit, state, at: time, note: nil))
        }
        if let result = change.result {
            // A Service snapshot: its Result is the current run's.
            if let kind = CrashKind(systemdResult: result) {
                if tracked.crashReported != result {
                    tracked.crashReported = result
                    if let job = tracked.job, job.finished.map({ time.since($0) < Self.jobGrace }) ?? true,
                       previous.activeState == "deactivating" {
                        // Not a crash: a job (a stop or restart) began taking it down before the
                        // process ended — someone else's, or Medic's own (one it asked for, or
                        // one systemd passed on from it to a unit that Requires= another).
                        var facts = facts(state)
                        facts["Job"] = String(job.id)
                        let how = CrashDescription.describe(kind, state)
                        observations.append(job.ours
                            ? Observation(target: unit, kind: .stateChanged, time: time, facts: facts,
                                          summary: "taken down by Medic's own job \(job.id), not a crash (\(how))")
                            : Observation(target: unit, kind: .stoppedByRequest("stop or restart"), time: time, facts: facts,
                                          summary: "taken down by a job someone else asked for, job \(job.id) (\(how))"))
                    } else {
                        observations.append(crash(unit, kind, state, at: time))
                    }
                }
            } else {
                tracked.crashReported = nil
            }
        } else if change.activeState == "failed", previous.activeState != "failed", tracked.crashReported == nil {
            // A unit that entered `failed` without a Service snapshot saying why.
            tracked.crashReported = state.result ?? "failed"
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
        if let requires = state.requires?.filter({ $0.hasSuffix(".service") }), !requires.isEmpty {
            facts["Requires"] = requires.joined(separator: ",")
        }
        return facts
    }
}
