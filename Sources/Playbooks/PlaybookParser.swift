import Crypto
import Foundation
import MedicCore
import Yams

/// Turns playbook YAML into a validated `Playbook`, or every problem in it as `Diagnostic`s.
public enum PlaybookParser {
    /// Files larger than this are refused before parsing.
    public static let maximumFileSize = 1 << 20
    /// YAML trees with more nodes than this (after alias expansion) are refused.
    static let maximumNodes = 50_000
    static let maximumDepth = 64

    static let topKeys = ["playbook", "targets", "on"]
    static let targetKeys = ["unit"]
    static let ruleKeys = ["when", "do"]
    static let stepNames = ["restart", "verify"]
    static let restartKeys = ["timeout"]
    static let verifyKeys = ["active-for", "timeout"]
    static let defaultRestartTimeout: Duration = .seconds(30)
    static let defaultVerifyTimeout: Duration = .seconds(10)

    /// Parses the bytes of a playbook file. `file` is the name used in diagnostics.
    public static func parse(data: [UInt8], file: String) -> Result<Playbook, Diagnostics> {
        func fail(_ message: String) -> Result<Playbook, Diagnostics> {
            .failure(Diagnostics([Diagnostic(file: file, line: 1, column: 1, message: message)]))
        }
        if data.count > maximumFileSize {
            return fail("file is \(data.count) bytes; playbooks larger than \(maximumFileSize) bytes are refused")
        }
        if data.contains(0) { return fail("file is binary (it contains NUL bytes); a playbook is YAML text") }
        guard let text = String(validating: data, as: UTF8.self) else {
            return fail("file is not valid UTF-8; a playbook is YAML text in UTF-8")
        }
        if text.allSatisfy({ $0.isWhitespace }) {
            return fail("file is empty; a playbook needs at least 'playbook:', 'targets:' and 'on:'")
        }
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: text) else { return fail("file holds no YAML document") }
            root = node
        } catch let error as YamlError {
            return .failure(Diagnostics([diagnostic(for: error, file: file)]))
        } catch {
            return fail("cannot parse YAML: \(error)")
        }
        guard root.boundedSize(limit: maximumNodes, depth: maximumDepth) != nil else {
            return fail("document expands to more than \(maximumNodes) nodes or \(maximumDepth) levels (an alias bomb?); refused")
        }
        var reader = NodeReader(file: file)
        let hash = SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
        let playbook = readPlaybook(root, reader: &reader, file: file, hash: hash)
        if let playbook, reader.diagnostics.isEmpty { return .success(playbook) }
        return .failure(Diagnostics(reader.diagnostics.sorted { ($0.line, $0.column) < ($1.line, $1.column) }))
    }

    /// Reads and parses a playbook file.
    public static func parse(file: String) -> Result<Playbook, Diagnostics> {
        guard let handle = FileHandle(forReadingAtPath: file) else {
            return .failure(Diagnostics([Diagnostic(file: file, line: 1, column: 1, message: "cannot open file: \(String(cString: strerror(errno)))")]))
        }
        defer { try? handle.close() }
        let data = (try? handle.read(upToCount: maximumFileSize + 1)) ?? Data()
        return parse(data: [UInt8](data), file: file)
    }

    private static func readPlaybook(_ root: Node, reader: inout NodeReader, file: String, hash: String) -> Playbook? {
        guard let top = reader.mapping(root, what: "a playbook", allowed: topKeys, required: topKeys) else { return nil }
        let name = top["playbook"].flatMap { reader.string($0.value, what: "'playbook' (its name)") }
        var targets: [Target] = []
        if let node = top["targets"]?.value, let items = reader.sequence(node, what: "'targets'") {
            if items.isEmpty { reader.report(node, "'targets' is empty; name at least one unit") }
            for item in items {
                if let target = readTarget(item, reader: &reader) { targets.append(target) }
            }
        }
        var rules: [Rule] = []
        if let node = top["on"]?.value, let items = reader.sequence(node, what: "'on'") {
            if items.isEmpty { reader.report(node, "'on' is empty; give at least one 'when:' with steps") }
            var seen: Set<TriggerName> = []
            for item in items {
                guard let rule = readRule(item, reader: &reader) else { continue }
                if !seen.insert(rule.trigger).inserted {
                    reader.report(item, "trigger '\(rule.trigger.rawValue)' appears twice; merge its steps into one 'when:'")
                }
                rules.append(rule)
            }
        }
        guard let name else { return nil }
        return Playbook(name: name, file: file, contentHash: hash, targets: targets, rules: rules)
    }

    private static func readTarget(_ node: Node, reader: inout NodeReader) -> Target? {
        guard let keys = reader.mapping(node, what: "a target", allowed: targetKeys, required: ["unit"]),
              let unitNode = keys["unit"]?.value,
              let unit = reader.string(unitNode, what: "'unit'")
        else { return nil }
        if let problem = UnitName.problem(with: unit) {
            reader.report(unitNode, "'\(unit)' is not a valid unit name: \(problem)")
            return nil
        }
        return Target(unit: unit)
    }

    private static func readRule(_ node: Node, reader: inout NodeReader) -> Rule? {
        guard let keys = reader.mapping(node, what: "an 'on' entry", allowed: ruleKeys, required: ruleKeys) else { return nil }
        var trigger: TriggerName?
        if let whenNode = keys["when"]?.value, let text = reader.string(whenNode, what: "'when'") {
            trigger = TriggerName(rawValue: text)
            if trigger == nil {
                let known = TriggerName.allCases.map(\.rawValue)
                var message = "unknown trigger '\(text)'"
                if let close = suggestion(for: text, among: known) { message += " (did you mean '\(close)'?)" }
                reader.report(whenNode, message + "; triggers available: \(known.joined(separator: ", "))")
            }
        }
        var steps: [Step] = []
        if let doNode = keys["do"]?.value, let items = reader.sequence(doNode, what: "'do'") {
            if items.isEmpty { reader.report(doNode, "'do' is empty; give at least one step") }
            for item in items {
                if let step = readStep(item, reader: &reader) { steps.append(step) }
            }
        }
        guard let trigger else { return nil }
        return Rule(trigger: trigger, steps: steps)
    }

    /// A step is a one-key mapping `name: { options }`, or just the step's name.
    private static func readStep(_ node: Node, reader: inout NodeReader) -> Step? {
        let nameNode: Node
        var options: Node?
        switch node {
        case .scalar:
            nameNode = node
        case .mapping(let mapping) where mapping.count == 1:
            nameNode = mapping.first!.key
            options = mapping.first!.value
        default:
            reader.report(node, "a step is a step name with its options, e.g. '- restart: { timeout: 30s }'")
            return nil
        }
        guard let name = reader.string(nameNode, what: "a step's name") else { return nil }
        guard stepNames.contains(name) else {
            var message = "unknown step '\(name)'"
            if let close = suggestion(for: name, among: stepNames) { message += " (did you mean '\(close)'?)" }
            reader.report(nameNode, message + "; steps available: \(stepNames.joined(separator: ", "))")
            return nil
        }
        if let opts = options, case .scalar(let scalar) = opts, scalar.string.isEmpty || scalar.tag.description.hasSuffix(":null") {
            options = nil
        }
        switch name {
        case "restart":
            var timeout = defaultRestartTimeout
            if let options {
                guard let keys = reader.mapping(options, what: "'restart'", allowed: restartKeys) else { return nil }
                if let t = keys["timeout"] { guard let d = reader.duration(t.value, what: "'timeout'") else { return nil }; timeout = d }
            }
            return .restart(timeout: timeout)
        default:
            guard let options,
                  let keys = reader.mapping(options, what: "'verify'", allowed: verifyKeys, required: ["active-for"])
            else {
                if options == nil { reader.report(nameNode, "'verify' needs 'active-for', e.g. '- verify: { active-for: 5s }'") }
                return nil
            }
            var timeout = defaultVerifyTimeout
            if let t = keys["timeout"] { guard let d = reader.duration(t.value, what: "'timeout'") else { return nil }; timeout = d }
            guard let activeNode = keys["active-for"]?.value,
                  let activeFor = reader.duration(activeNode, what: "'active-for'")
            else { return nil }
            return .verify(activeFor: activeFor, timeout: timeout)
        }
    }

    private static func diagnostic(for error: YamlError, file: String) -> Diagnostic {
        switch error {
        case .scanner(let context, let problem, let mark, _),
             .parser(let context, let problem, let mark, _),
             .composer(let context, let problem, let mark, _):
            let text = [context?.text, problem].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: ": ")
            return Diagnostic(file: file, line: mark.line, column: mark.column, message: "YAML syntax: \(text)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            return Diagnostic(
                file: file, line: context.mark.line, column: context.mark.column,
                message: "duplicate key \(duplicates.map { "'\($0)'" }.joined(separator: ", ")) in a mapping")
        case .reader(let problem, _, _, _):
            return Diagnostic(file: file, line: 1, column: 1, message: "cannot read YAML: \(problem)")
        default:
            return Diagnostic(file: file, line: 1, column: 1, message: "cannot parse YAML: \(error)")
        }
    }
}
