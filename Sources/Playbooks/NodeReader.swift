import MedicCore
import Yams

/// Walks a composed YAML tree, collecting every problem with its position instead of stopping
/// at the first. The readers return nil where a value is unusable; the diagnostic is recorded.
struct NodeReader {
    let file: String
    private(set) var diagnostics: [Diagnostic] = []

    init(file: String) { self.file = file }

    mutating func report(_ node: Node?, _ message: String) {
        report(node, offset: 0, message)
    }

    /// Reports a problem `offset` characters into a scalar's text (for `when:` expressions).
    mutating func report(_ node: Node?, offset: Int, _ message: String) {
        let mark = node?.mark
        var column = (mark?.column ?? 1) + offset
        if case .scalar(let scalar)? = node, scalar.style == .singleQuoted || scalar.style == .doubleQuoted { column += 1 }
        diagnostics.append(Diagnostic(file: file, line: mark?.line ?? 1, column: column, message: message))
    }

    /// The pairs of a mapping, checking keys against `allowed`; reports unknown keys (with a
    /// suggestion), keys that are not strings, and missing `required` keys.
    mutating func mapping(
        _ node: Node, what: String, allowed: [String], required: [String] = []
    ) -> [String: (key: Node, value: Node)]? {
        guard case .mapping(let mapping) = node else {
            report(node, "\(what) must be a mapping with keys \(allowed.joined(separator: ", ")); found \(describe(node))")
            return nil
        }
        var result: [String: (key: Node, value: Node)] = [:]
        for (key, value) in mapping {
            guard case .scalar(let scalar) = key else {
                report(key, "keys in \(what) must be plain names")
                continue
            }
            let name = scalar.string
            if !allowed.contains(name) {
                var message = "unknown key '\(name)' in \(what)"
                if let close = suggestion(for: name, among: allowed) { message += " (did you mean '\(close)'?)" }
                message += "; valid keys: \(allowed.joined(separator: ", "))"
                report(key, message)
                continue
            }
            result[name] = (key, value)
        }
        for name in required where result[name] == nil {
            report(node, "\(what) is missing required key '\(name)'")
        }
        return result
    }

    mutating func sequence(_ node: Node, what: String) -> [Node]? {
        guard case .sequence(let sequence) = node else {
            report(node, "\(what) must be a list; found \(describe(node))")
            return nil
        }
        return Array(sequence)
    }

    mutating func string(_ node: Node, what: String) -> String? {
        guard case .scalar(let scalar) = node, !scalar.string.isEmpty else {
            report(node, "\(what) must be a non-empty string; found \(describe(node))")
            return nil
        }
        return scalar.string
    }

    mutating func bool(_ node: Node, what: String) -> Bool? {
        guard case .scalar(let scalar) = node, let value = Bool(scalar.string.lowercased()) else {
            report(node, "\(what) must be true or false; found \(describe(node))")
            return nil
        }
        return value
    }

    /// A positive whole number.
    mutating func count(_ node: Node, what: String) -> Int? {
        guard case .scalar(let scalar) = node, let value = Int(scalar.string), value > 0 else {
            report(node, "\(what) must be a whole number above 0; found \(describe(node))")
            return nil
        }
        return value
    }

    mutating func duration(_ node: Node, what: String) -> Duration? {
        guard case .scalar(let scalar) = node else {
            report(node, "\(what) must be a duration such as 500ms, 30s, 10m or 6h; found \(describe(node))")
            return nil
        }
        guard let duration = DurationText.parse(scalar.string) else {
            report(node, "\(what): '\(scalar.string)' is not a duration; write a number with a unit: 500ms, 30s, 10m, 6h, 1d")
            return nil
        }
        return duration
    }

    func describe(_ node: Node) -> String {
        switch node {
        case .scalar(let scalar): scalar.string.isEmpty ? "nothing" : "'\(scalar.string)'"
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .alias: "an alias"
        }
    }
}

extension Node {
    /// Counts the nodes reachable from here (aliases counted each time they are reached), up
    /// to `limit`; returns nil past the limit or past `depth` levels (an alias bomb, or a
    /// pathological nesting).
    func boundedSize(limit: Int, depth: Int) -> Int? {
        var count = 0
        func visit(_ node: Node, _ level: Int) -> Bool {
            count += 1
            if count > limit || level > depth { return false }
            switch node {
            case .scalar: return true
            case .alias: return true
            case .sequence(let sequence): return sequence.allSatisfy { visit($0, level + 1) }
            case .mapping(let mapping): return mapping.allSatisfy { visit($0.key, level + 1) && visit($0.value, level + 1) }
            }
        }
        return visit(self, 0) ? count : nil
    }
}
