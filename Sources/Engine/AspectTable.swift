import MedicCore

/// A value for each aspect of a target's health that has spoken. The unit's own state, which
/// every target has, is kept inline; the others (probe, heartbeats, limits, alerts) in a table
/// that a target without them never allocates: two tables a target were 2.4 MB at 10,000 units.
struct AspectTable<Value: Sendable>: Sendable {
    private var unit: Value?
    private var others: [Observation.HealthAspect: Value] = [:]

    subscript(aspect: Observation.HealthAspect) -> Value? {
        get { aspect == .unit ? unit : others[aspect] }
        set {
            if aspect == .unit { unit = newValue } else { others[aspect] = newValue }
        }
    }

    /// No aspect has spoken.
    var isEmpty: Bool { unit == nil && others.isEmpty }

    /// Whether every aspect's value satisfies `predicate`.
    func allSatisfy(_ predicate: (Value) -> Bool) -> Bool {
        (unit.map(predicate) ?? true) && others.values.allSatisfy(predicate)
    }
}
