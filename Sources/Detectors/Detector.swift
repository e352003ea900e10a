import MedicCore

/// A source of observations: runs until cancelled, handing each observation to `deliver`.
/// medicd runs every detector the same way (`DetectorSet`): restarted in place if it ends, its
/// observations handed to the engine with the host's pressure, started and stopped as reloads
/// change the plan (`DetectorPlan`). Adding a detector is one type conforming to this and one
/// case in `DetectorSpec`.
public protocol Detector: Sendable {
    func run(deliver: @escaping @Sendable (Observation) async -> Void) async throws
}

extension ProbeRunner: Detector {}
extension ResourceWatcher: Detector {}
extension JournalWatcher: Detector {}
extension WatchdogLateMonitor: Detector {}
