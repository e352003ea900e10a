/// A fleet-wide budget on a dangerous step: at most `slots` hosts of the fleet do it at once
/// (`reboot: { fleet_budget: 1 }`). A host takes a slot before the step and keeps it until it is
/// back and healthy; one whose turn has not come waits up to `wait`, then the step is refused
/// (a guard stop, escalated).
public struct FleetBudget: Sendable, Equatable, Hashable {
    /// The budget's name, shared by every host that names it (default: the step's kind).
    public var name: String
    public var slots: Int
    public var wait: Duration

    public init(name: String, slots: Int, wait: Duration) {
        self.name = name
        self.slots = slots
        self.wait = wait
    }
}

/// What the fleet's budgets answered a step.
public enum BudgetGrant: Sendable, Equatable {
    /// A slot is this host's: its number and etcd's revision of it (a fencing token), and how
    /// long the host waited for it.
    case granted(slot: Int, revision: Int64, waited: Duration)
    /// No slot within the wait, or etcd out of reach: why, for the refusal.
    case refused(String)
}

/// The fleet's budgets, as the actions see them (the `Fleet` module implements them over etcd).
public protocol FleetBudgets: Sendable {
    /// Takes a slot of `budget` for `incident`, waiting up to the budget's wait for one.
    func acquire(_ budget: FleetBudget, incident: Int64, target: String) async -> BudgetGrant
}
