
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

    /// The facts of the chained `silence` record that sets it: exact wall-clock bounds
    /// (`start_us`, `end_us`) for rebuilding it, and ISO 8601 ones for people.
    public var details: [String: String] {
        ["reason": reason, "author": author, "start": start.iso8601, "end": end.iso8601,
         "start_us": String(start.wallMicroseconds), "end_us": String(end.wallMicroseconds)]
    }

    /// The silence a `silence` record's facts describe, on the clocks of `now`'s boot; nil for a
    /// record that does not set one (an unsilence, or a record older than these facts).
    public init?(pattern: String, details: [String: String], author: String, now: Timestamp) {
        guard details[.command] == nil, let start = details["start_us"].flatMap(Int64.init), let end = details["end_us"].flatMap(Int64.init) else { return nil }
        self.init(pattern: pattern, start: now.movedTo(wall: start), end: now.movedTo(wall: end),
                  reason: details["reason"] ?? "", author: details["author"] ?? author)
    }
}
