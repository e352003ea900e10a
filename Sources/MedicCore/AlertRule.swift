/// A playbook trigger on a Prometheus Alertmanager alert: its name and label matchers, as
/// written `alert "HighErrorRate" { job = "web", severity =~ "critical|page" }`.
public struct AlertRule: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// The alert's name (its `alertname` label).
    public var name: String
    /// All must hold.
    public var matchers: [LabelMatcher]

    public init(name: String, matchers: [LabelMatcher] = []) {
        self.name = name
        self.matchers = matchers
    }

    /// Whether an alert with `labels` (its `alertname` among them) is this one.
    public func matches(_ labels: [String: String]) -> Bool {
        labels["alertname"] == name && matchers.allSatisfy { $0.matches(labels) }
    }

    public var description: String {
        "alert \"\(name)\"" + (matchers.isEmpty ? "" : " { " + matchers.map(\.description).joined(separator: ", ") + " }")
    }
}

/// One of Prometheus's label matchers: `job = "web"`, `env != "test"`, `severity =~ "crit.*"`,
/// `instance !~ "canary.*"`. A regular expression must match the whole value, as in Prometheus;
/// a label that is absent counts as empty.
public struct LabelMatcher: Sendable, Equatable, Hashable, CustomStringConvertible {
    public enum Operator: String, Sendable, CaseIterable {
        case equal = "=", notEqual = "!=", matches = "=~", notMatches = "!~"
    }

    public var label: String
    public var op: Operator
    public var value: String

    /// Nil when `op` is a regular expression that does not compile.
    public init?(label: String, op: Operator, value: String) {
        self.label = label
        self.op = op
        self.value = value
        if op == .matches || op == .notMatches, (try? Regex("^(?:\(value))$")) == nil { return nil }
    }

    public func matches(_ labels: [String: String]) -> Bool {
        let actual = labels[label] ?? ""
        switch op {
        case .equal: return actual == value
        case .notEqual: return actual != value
        case .matches, .notMatches:
            let whole = (try? Regex("^(?:\(value))$")).map { actual.wholeMatch(of: $0) != nil } ?? false
            return whole == (op == .matches)
        }
    }

    public var description: String { "\(label) \(op.rawValue) \"\(value)\"" }

    // A regular expression is compared by its text.
    public static func == (a: LabelMatcher, b: LabelMatcher) -> Bool { a.label == b.label && a.op == b.op && a.value == b.value }
    public func hash(into hasher: inout Hasher) {
        hasher.combine(label)
        hasher.combine(op)
        hasher.combine(value)
    }
}
