import MedicCore

/// A simple cap on restarts per target: at most `limit` in any `window`, so a unit that keeps
/// crashing ends in a refused step instead of an endless loop. (Full guards come later.)
public struct RestartBudget: Sendable {
    public var limit: Int
    public var window: Duration
    private var history: [String: [Timestamp]] = [:]

    public init(limit: Int = 3, window: Duration = .seconds(600)) {
        self.limit = limit
        self.window = window
    }

    /// Parses `N in DURATION`, e.g. `3 in 10m`.
    public init?(parsing text: String) {
        let parts = text.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count == 3, parts[1] == "in", let limit = Int(parts[0]), limit >= 0,
              let window = DurationText.parse(String(parts[2])), window > .zero
        else { return nil }
        self.init(limit: limit, window: window)
    }

    /// Takes one restart for `target` at `now` if the budget allows; false if it is spent.
    public mutating func take(for target: String, at now: Timestamp) -> Bool {
        var recent = (history[target] ?? []).filter { now.since($0) < window }
        guard recent.count < limit else {
            history[target] = recent
            return false
        }
        recent.append(now)
        history[target] = recent
        return true
    }

    /// How many restarts of `target` fall inside the window ending at `now`.
    public func used(for target: String, at now: Timestamp) -> Int {
        (history[target] ?? []).filter { now.since($0) < window }.count
    }
}
