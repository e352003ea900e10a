import Engine
import MedicCore
import Systemd

/// A unit job (restart, start, reload, stop), then a wait until the unit has settled where the
/// job should leave it: active (ready, for Type=notify) after restart, start and reload,
/// inactive after stop. Fails if the job fails or the unit does not get there in time.
struct JobAction {
    enum Method { case restart, start, reload, stop }

    let manager: SystemdManager
    let method: Method

    func run(unit: String, timeout: Duration) async throws -> StepOutcome {
        let started = ContinuousClock.now
        let outcome: SystemdManager.JobOutcome = switch method {
        case .restart: try await manager.restartUnit(unit, timeout: timeout)
        case .start: try await manager.startUnit(unit, timeout: timeout)
        case .reload: try await manager.reloadUnit(unit, timeout: timeout)
        case .stop: try await manager.stopUnit(unit, timeout: timeout)
        }
        switch outcome {
        case .timedOut:
            return .failure("job did not finish within \(DurationText.format(timeout))")
        case .finished(let result) where result != "done":
            let state = try await manager.state(of: unit)
            return .failure("job \(result): \(state)", ["job_result": result])
        case .finished:
            break
        }
        let remaining = max(timeout - (ContinuousClock.now - started), .zero)
        let settled: Set<String> = ["active", "failed", "inactive"]
        guard let state = try await manager.waitForActiveState(of: unit, timeout: remaining, until: settled.contains) else {
            return .failure("not settled within \(DurationText.format(timeout)) of the job")
        }
        let properties = try await manager.state(of: unit)
        var details = ["job_result": "done", "ActiveState": state]
        details["MainPID"] = properties.mainPID.map(String.init)
        details["InvocationID"] = properties.invocationID
        let wanted = method == .stop ? "inactive" : "active"
        guard state == wanted else {
            return .failure("unit is \(state) after the job (Result=\(properties.result ?? "?"))", details)
        }
        if method == .stop { return .success("stopped", details) }
        return .success("active, MainPID \(properties.mainPID.map(String.init) ?? "?")", details)
    }
}
