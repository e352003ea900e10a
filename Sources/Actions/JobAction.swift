import MedicCore
import Systemd

/// A unit job (restart, start, reload, stop), then a wait until the unit has settled where the
/// job should leave it: active (ready, for Type=notify) after restart, start and reload,
/// inactive after stop. Fails if the job fails or the unit does not get there in time.
///
/// A `restart` of a unit that is not running is a start: systemd propagates a restart job to
/// every unit that `Requires=` the restarted one (stopping them), while a start leaves them
/// alone. Jobs systemd queues beside Medic's for other units are recorded with the step.
struct JobAction {
    enum Method: String { case restart, start, reload, stop }

    let manager: SystemdManager
    let method: Method

    /// `unitDown`: the engine last saw the unit down (crashed, failed, stopped), so a restart is
    /// carried out as a start (no bus call is spent asking again on the crash path).
    func run(unit: String, timeout: Duration, unitDown: Bool = false) async throws -> StepOutcome {
        let started = ContinuousClock.now
        var job = method.rawValue
        var details: [String: String] = [:]
        if method == .restart, unitDown {
            job = "start"
            details["job_type"] = "start (the unit was down, so a start: a restart would be passed on to what Requires= it)"
        }
        let run = try await manager.runJob(job, unit: unit, timeout: timeout)
        details["job"] = String(run.id)
        if !run.affected.isEmpty { details["affected_jobs"] = run.affected.map(\.description).joined(separator: ", ") }
        let also = run.affected.isEmpty ? "" : "; systemd also queued \(run.affected.map(\.description).joined(separator: ", "))"
        switch run.outcome {
        case .timedOut:
            return .failure("job did not finish within \(DurationText.format(timeout))" + also, details)
        case .finished(let result) where result != "done":
            let state = try await manager.state(of: unit)
            details["job_result"] = result
            return .failure("\(job) job \(result): \(state)" + also, details)
        case .finished:
            break
        }
        let remaining = max(timeout - (ContinuousClock.now - started), .zero)
        let settled: Set<String> = ["active", "failed", "inactive"]
        guard let state = try await manager.waitForActiveState(of: unit, timeout: remaining, until: settled.contains) else {
            return .failure("not settled within \(DurationText.format(timeout)) of the job" + also, details)
        }
        let properties = try await manager.state(of: unit)
        details["job_result"] = "done"
        details["ActiveState"] = state
        details["MainPID"] = properties.mainPID.map(String.init)
        details["InvocationID"] = properties.invocationID
        let wanted = method == .stop ? "inactive" : "active"
        guard state == wanted else {
            return .failure("unit is \(state) after the \(job) job (Result=\(properties.result ?? "?"))" + also, details)
        }
        if method == .stop { return .success("stopped" + also, details) }
        let how = job == method.rawValue ? "" : " (started: it was not running)"
        return .success("active, MainPID \(properties.mainPID.map(String.init) ?? "?")\(how)" + also, details)
    }
}
