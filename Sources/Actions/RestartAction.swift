import Engine
import MedicCore
import Systemd

/// `restart`: RestartUnit, wait for the job, then wait until the unit is active again; fail if
/// the job fails or the unit is not active within the timeout.
struct RestartAction {
    let manager: SystemdManager

    func run(unit: String, timeout: Duration) async throws -> StepOutcome {
        let started = ContinuousClock.now
        switch try await manager.restartUnit(unit, timeout: timeout) {
        case .timedOut:
            return .failure("restart job did not finish within \(DurationText.format(timeout))")
        case .finished(let result) where result != "done":
            let state = try await manager.state(of: unit)
            return .failure("restart job \(result): \(state)", ["job_result": result])
        case .finished:
            break
        }
        let remaining = max(timeout - (ContinuousClock.now - started), .zero)
        guard let settled = try await manager.waitForActiveState(of: unit, timeout: remaining, until: settledStates.contains) else {
            return .failure("not active within \(DurationText.format(timeout)) of the restart")
        }
        let state = try await manager.state(of: unit)
        var details = ["job_result": "done", "ActiveState": settled]
        details["MainPID"] = state.mainPID.map(String.init)
        details["InvocationID"] = state.invocationID
        guard settled == "active" else {
            return .failure("unit is \(settled) after the restart (Result=\(state.result ?? "?"))", details)
        }
        return .success("active again, MainPID \(state.mainPID.map(String.init) ?? "?")", details)
    }
}
