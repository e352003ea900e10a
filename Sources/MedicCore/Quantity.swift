/// Sizes (`512MiB`, `1.5GiB`, `10MB`), percentages (`90%`) and counts, as playbooks write them.
public enum Quantity {
    private static let sizeUnits: [(String, Double)] = [
        ("KiB", 1024), ("MiB", 1_048_576), ("GiB", 1_073_741_824), ("TiB", 1_099_511_627_776),
        ("KB", 1e3), ("MB", 1e6), ("GB", 1e9), ("TB", 1e12), ("B", 1),
    ]

    /// Bytes, from a size with its unit; nil if it is not one.
    public static func parseSize(_ text: String) -> Double? {
        for (suffix, factor) in sizeUnits where text.hasSuffix(suffix) {
            guard let value = Double(text.dropLast(suffix.count)), value >= 0, value.isFinite else { return nil }
            return value * factor
        }
        return nil
    }

    /// A fraction (0.9), from `90%`; nil if it is not a percentage from 0 to 100.
    public static func parsePercent(_ text: String) -> Double? {
        guard text.hasSuffix("%"), let value = Double(text.dropLast()), value >= 0, value <= 100 else { return nil }
        return value / 100
    }

    public static func formatSize(_ bytes: Double) -> String {
        for (suffix, factor) in sizeUnits.prefix(4).reversed() where bytes >= factor {
            return formatCount(bytes / factor) + suffix
        }
        return formatCount(bytes) + "B"
    }

    public static func formatPercent(_ fraction: Double) -> String { formatCount(fraction * 100) + "%" }

    public static func formatCount(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : format1(value)
    }

    private static func format1(_ value: Double) -> String {
        let scaled = (value * 100).rounded() / 100
        return "\(scaled)"
    }
}
