import Engine
import MedicCore
import Systemd

/// `verify`: the unit must be active (within `timeout`) and then stay active for `activeFor`.
struct VerifyAction {
    let manager: SystemdManager

    func run(unit: String, activeFor: Duration, timeout: Duration) async throws -> StepOutcome {
        guard let settled = try await manager.waitForActiveState(of: unit, timeout: timeout, until: settledStates.contains) else {
            return .failure("not active within \(DurationText.format(timeout))")
        }
        guard settled == "active" else {
            return .failure("unit is \(settled), not active", ["ActiveState": settled])
        }
        let start = ContinuousClock.now
        if let left = try await manager.waitForActiveState(of: unit, timeout: activeFor, until: { $0 != "active" && $0 != "reloading" }) {
            let after = DurationText.format(ContinuousClock.now - start)
            return .failure("unit left active after \(after): ActiveState=\(left)", ["ActiveState": left])
        }
        return .success("stayed active for \(DurationText.format(activeFor))", ["ActiveState": "active"])
    }
}
