import MedicCore

/// How a step ended.
public struct StepOutcome: Sendable, Equatable {
    public var succeeded: Bool
    /// One line for people: `active again, MainPID 412` or `job failed`.
    public var summary: String
    /// Facts for the audit log.
    public var details: [String: String]

    public init(succeeded: Bool, summary: String, details: [String: String] = [:]) {
        self.succeeded = succeeded
        self.summary = summary
        self.details = details
    }

    public static func success(_ summary: String, _ details: [String: String] = [:]) -> StepOutcome {
        StepOutcome(succeeded: true, summary: summary, details: details)
    }

    public static func failure(_ summary: String, _ details: [String: String] = [:]) -> StepOutcome {
        StepOutcome(succeeded: false, summary: summary, details: details)
    }
}

/// Runs one step that acts on the world (restart, start, stop, reload, kill) against a target.
/// The Actions module implements it over systemd; the engine decides what runs and when, and
/// runs `verify` and `wait` itself, from observations and its clock.
public protocol StepRunner: Sendable {
    func run(_ step: Step, on target: String) async -> StepOutcome
}
