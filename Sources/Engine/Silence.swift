import MedicCore

/// A silence or maintenance window: no automatic action on matching targets from `start` until
/// `end`. Observations are still recorded.
public struct Silence: Sendable, Equatable {
    /// A unit name or glob, or `*` for every target.
    public var pattern: String
    public var start: Timestamp
    public var end: Timestamp
    public var reason: String
    /// Who set it (e.g. `uid 0`).
    public var author: String

    public init(pattern: String, start: Timestamp, end: Timestamp, reason: String, author: String) {
        self.pattern = pattern
        self.start = start
        self.end = end
        self.reason = reason
        self.author = author
    }

    public func covers(_ target: String, at time: Timestamp) -> Bool {
        time >= start && time < end && Glob.matches(pattern, target)
    }
}
