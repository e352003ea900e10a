import Engine
import MedicCore
import Systemd

/// Runs steps against systemd units over the bus.
public struct SystemdStepRunner: StepRunner {
    private let manager: SystemdManager

    public init(manager: SystemdManager) { self.manager = manager }

    public func run(_ step: Step, on target: String) async -> StepOutcome {
        do {
            switch step {
            case .restart(let timeout):
                return try await RestartAction(manager: manager).run(unit: target, timeout: timeout)
            case .verify(let activeFor, let timeout):
                return try await VerifyAction(manager: manager).run(unit: target, activeFor: activeFor, timeout: timeout)
            }
        } catch {
            return .failure("\(error)")
        }
    }
}

/// ActiveStates in which a unit has settled, one way or the other.
let settledStates: Set<String> = ["active", "failed", "inactive"]
