import MedicCore

/// Holds a limit for its duration before it fires, and clears it with hysteresis, so one spike
/// is not an incident and a value hovering at the threshold does not flap. Pure: values and
/// times go in, observations come out.
public struct LimitTracker: Sendable {
    private struct State: Sendable {
        var since: Timestamp?
        var fired = false
    }

    /// How far back under the threshold a fired limit must go to clear: 10%.
    public static let hysteresis = 0.1
    private struct Key: Hashable {
        var target: String
        var limit: ResourceLimit
    }

    private var states: [Key: State] = [:]

    public init() {}

    /// Takes one reading of the value `limit` looks at; returns an observation when the limit
    /// fires (held for its duration) or clears. `facts` are gathered only then.
    public mutating func evaluate(
        target: String, limit: ResourceLimit, value: Double, at now: Timestamp, facts gather: @autoclosure () -> [String: String] = [:]
    ) -> Observation? {
        // One lookup of the state, changed in place.
        Self.step(&states[Key(target: target, limit: limit), default: State()], target: target, limit: limit, value: value, at: now, facts: gather)
    }

    private static func step(
        _ state: inout State, target: String, limit: ResourceLimit, value: Double, at now: Timestamp, facts gather: () -> [String: String]
    ) -> Observation? {
        func facts() -> [String: String] {
            var facts = gather()
            facts["value"] = Self.format(value, limit)
            facts["limit"] = limit.description
            return facts
        }
        if limit.comparison.holds(value, limit.threshold) {
            if state.since == nil { state.since = now }
            guard !state.fired, now.since(state.since!) >= (limit.holdFor ?? .zero) else { return nil }
            state.fired = true
            return Observation(
                target: target, kind: .limitExceeded(limit), time: now, facts: facts(),
                summary: "limit held: \(limit) (now \(Self.format(value, limit)))")
        }
        state.since = nil
        guard state.fired else { return nil }
        let margin = limit.threshold * hysteresis
        let cleared = switch limit.comparison {
        case .greater, .greaterOrEqual: value < limit.threshold - margin
        case .less, .lessOrEqual: value > limit.threshold + margin
        }
        guard cleared else { return nil }
        state.fired = false
        return Observation(
            target: target, kind: .limitCleared(limit), time: now, facts: facts(),
            summary: "limit cleared: \(limit.name) back to \(Self.format(value, limit))")
    }

    /// Whether `limit` of `target` is above its threshold now, held or not yet: while it is,
    /// a limit watched by an event is also sampled, to see it hold and clear.
    public func isActive(target: String, limit: ResourceLimit) -> Bool {
        states[Key(target: target, limit: limit)].map { $0.since != nil || $0.fired } ?? false
    }

    /// Whether `limit` of `target` has been evaluated and was below its threshold then, not
    /// held: false for a target never evaluated (its cgroup just became known).
    public func wasBelow(target: String, limit: ResourceLimit) -> Bool {
        states[Key(target: target, limit: limit)].map { $0.since == nil && !$0.fired } ?? false
    }

    static func format(_ value: Double, _ limit: ResourceLimit) -> String {
        if limit.isPercentage { return Quantity.formatPercent(value) }
        if limit.resource == .memory { return Quantity.formatSize(value) }
        return Quantity.formatCount(value)
    }
}
