import Systemd

/// What `UnitTracker` keeps of a unit between signals: the fields its observations report and
/// its crash descriptions read, and when the process exited. systemd's resource figures, the
/// unit's cgroup, its status text and failed commands are not kept (a failed command is read
/// again when a crash needs it: `UnitWatcher`). A whole `UnitState` a unit was 6 MB of the
/// tracker's table at 10,000 units; this is under half of it.
struct KeptUnitState: Sendable, Equatable {
    var activeState: String?
    var subState: String?
    var result: String?
    var mainPID: UInt32?
    var execMainPID: UInt32?
    var nRestarts: UInt32?
    var execMainCode: Int32?
    var execMainStatus: Int32?
    var invocationID: String?
    var execMainExitTimestamp: UInt64?
    /// The services among the unit's `Requires=` and `BindsTo=` (nil: none, or not read).
    var requiredServices: [String]?

    init() {}

    init(_ state: UnitState) {
        activeState = state.activeState
        subState = state.subState
        result = state.result
        mainPID = state.mainPID
        execMainPID = state.execMainPID
        nRestarts = state.nRestarts
        execMainCode = state.execMainCode
        execMainStatus = state.execMainStatus
        invocationID = state.invocationID
        execMainExitTimestamp = state.execMainExitTimestamp
        let services = state.requires?.filter { $0.hasSuffix(".service") } ?? []
        requiredServices = services.isEmpty ? nil : services
    }

    /// Fields present in `newer` replace those kept; absent ones keep their value.
    mutating func merge(_ newer: UnitState) {
        var state = unitState
        state.merge(newer)
        self = KeptUnitState(state)
    }

    /// The kept fields as a `UnitState` (the rest unset).
    var unitState: UnitState {
        var state = UnitState(
            activeState: activeState, subState: subState, result: result, mainPID: mainPID, execMainPID: execMainPID,
            nRestarts: nRestarts, execMainCode: execMainCode, execMainStatus: execMainStatus, invocationID: invocationID)
        state.execMainExitTimestamp = execMainExitTimestamp
        state.requires = requiredServices
        return state
    }
}
