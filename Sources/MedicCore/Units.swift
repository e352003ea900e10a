/// Parsing and printing the units every duration in Medic carries: `500ms`, `30s`, `10m`, `6h`,
/// `1d`, and combinations such as `1m30s`.
public enum DurationText {
    private static let units: [(suffix: String, seconds: Double)] = [
        ("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86_400),
    ]

    /// Parses a duration with units; nil if the text is not one. A bare number is refused:
    /// every duration must say its unit.
    public static func parse(_ text: String) -> Duration? {
        var rest = Substring(text.trimmingCharacters(in: " "))
        guard !rest.isEmpty else { return nil }
        var total = 0.0
        while !rest.isEmpty {
            let number = rest.prefix { $0.isNumber || $0 == "." }
            guard !number.isEmpty, let value = Double(number) else { return nil }
            rest = rest.dropFirst(number.count)
            let suffix = rest.prefix { $0.isLetter }
            guard let unit = units.first(where: { $0.suffix == suffix }) else { return nil }
            rest = rest.dropFirst(suffix.count)
            total += value * unit.seconds
        }
        guard total.isFinite, total < 10 * 365 * 86_400 else { return nil }
        return .milliseconds(Int64((total * 1000).rounded()))
    }

    /// The shortest exact text for a duration, e.g. `1m30s`, `250ms`.
    public static func format(_ duration: Duration) -> String {
        var ms = duration.milliseconds
        if ms == 0 { return "0s" }
        var out = ""
        for (suffix, seconds) in [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)] as [(String, Int64)] {
            if ms >= seconds {
                out += "\(ms / seconds)\(suffix)"
                ms %= seconds
            }
        }
        if ms > 0 { out += "\(ms)ms" }
        return out
    }
}

extension String {
    func trimmingCharacters(in set: Character) -> String {
        String(drop { $0 == set }.reversed().drop { $0 == set }.reversed())
    }
}

extension Duration {
    /// Whole milliseconds, rounded down.
    public var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }

    /// The duration in seconds, as a Double.
    public var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
