import Engine
import MedicCore
import Systemd

/// Runs the steps that act on systemd units over the bus: restart, start, stop, reload, kill.
public struct SystemdStepRunner: StepRunner {
    private let manager: SystemdManager

    public init(manager: SystemdManager) { self.manager = manager }

    public func run(_ step: Step, on target: String) async -> StepOutcome {
        do {
            switch step.action {
            case .restart:
                return try await JobAction(manager: manager, method: .restart).run(unit: target, timeout: step.timeout)
            case .start:
                return try await JobAction(manager: manager, method: .start).run(unit: target, timeout: step.timeout)
            case .reload:
                return try await JobAction(manager: manager, method: .reload).run(unit: target, timeout: step.timeout)
            case .stop:
                return try await JobAction(manager: manager, method: .stop).run(unit: target, timeout: step.timeout)
            case .kill(let signal):
                try await manager.killUnit(target, signal: signal)
                return .success("sent signal \(signal) to the main process")
            default:
                return .failure("\(step.name) is not run by the systemd runner")
            }
        } catch {
            return .failure("\(error)")
        }
    }
}
