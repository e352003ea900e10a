import MedicCore

/// Parses a rule's `when:` text:
///
///     expr    := term ('or' term)*
///     term    := factor ('and' factor)*
///     factor  := 'not' factor | '(' expr ')' | atom
///     atom    := 'crashed' ['(' kind {',' kind} ')'] | 'unhealthy' | 'heartbeat-missed'
///              | 'heartbeat-late' | 'host-down' | 'host-isolated' | 'host-returned' | 'journal' QUOTED
///              | 'alert' QUOTED ['{' label op QUOTED {',' label op QUOTED} '}']   (op: = != =~ !~)
///              | resource OP value ['for' duration]            (memory, cpu, fds, tasks, disk PATH)
///              | metric OP number ['in' duration]              (restarts, failures, host.*)
struct ConditionParser {
    struct Failure: Error {
        /// Offset in characters from the start of the text.
        var offset: Int
        var message: String
    }

    private struct Token {
        var text: String
        var offset: Int
        var quoted = false
    }

    private var tokens: [Token]
    private var index = 0

    static func parse(_ text: String) -> Result<Condition, Failure> {
        do {
            var parser = ConditionParser(tokens: try tokenize(text))
            guard !parser.tokens.isEmpty else { throw Failure(offset: 0, message: "'when' is empty; name a trigger such as crashed") }
            let condition = try parser.expression()
            if let extra = parser.peek {
                throw Failure(offset: extra.offset, message: "unexpected '\(extra.text)'; join conditions with 'and' or 'or'")
            }
            if condition.triggers.isEmpty {
                throw Failure(offset: 0, message: "'\(text)' has no trigger to set it off; add one of \(Trigger.names.joined(separator: ", "))")
            }
            return .success(condition)
        } catch let failure as Failure {
            return .failure(failure)
        } catch {
            return .failure(Failure(offset: 0, message: "\(error)"))
        }
    }

    private init(tokens: [Token]) { self.tokens = tokens }

    private static func tokenize(_ text: String) throws -> [Token] {
        var tokens: [Token] = []
        let chars = Array(text)
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if c.isWhitespace { i += 1; continue }
            if c == "(" || c == ")" || c == "," || c == "{" || c == "}" {
                tokens.append(Token(text: String(c), offset: i)); i += 1; continue
            }
            if c == "\"" || c == "'" {
                guard let close = chars[(i + 1)...].firstIndex(of: c) else { throw Failure(offset: i, message: "unterminated quote") }
                tokens.append(Token(text: String(chars[(i + 1)..<close]), offset: i, quoted: true))
                i = close + 1; continue
            }
            if "<>=!".contains(c) {
                var j = i + 1
                if j < chars.count, chars[j] == "=" || (chars[j] == "~" && "=!".contains(c)) { j += 1 }
                tokens.append(Token(text: String(chars[i..<j]), offset: i)); i = j; continue
            }
            var j = i
            while j < chars.count, !chars[j].isWhitespace, !"(),{}<>=!\"'".contains(chars[j]) { j += 1 }
            tokens.append(Token(text: String(chars[i..<j]), offset: i)); i = j
        }
        return tokens
    }

    private var peek: Token? { index < tokens.count ? tokens[index] : nil }

    private mutating func next(_ what: String) throws -> Token {
        guard let token = peek else {
            throw Failure(offset: tokens.last.map { $0.offset + $0.text.count } ?? 0, message: "expected \(what) at the end")
        }
        index += 1
        return token
    }

    private mutating func accept(_ word: String) -> Bool {
        if let token = peek, !token.quoted, token.text == word { index += 1; return true }
        return false
    }

    private mutating func expression() throws -> Condition {
        var left = try term()
        while accept("or") { left = .or(left, try term()) }
        return left
    }

    private mutating func term() throws -> Condition {
        var left = try factor()
        while accept("and") { left = .and(left, try factor()) }
        return left
    }

    private mutating func factor() throws -> Condition {
        if accept("not") { return .not(try factor()) }
        if accept("(") {
            let inner = try expression()
            let close = try next("')'")
            guard close.text == ")" else { throw Failure(offset: close.offset, message: "expected ')' here, found '\(close.text)'") }
            return inner
        }
        return try atom()
    }

    private mutating func atom() throws -> Condition {
        let token = try next("a trigger")
        switch token.text {
        case "crashed":
            guard accept("(") else { return .trigger(.crashed(nil)) }
            var kinds: Set<CrashKind> = []
            repeat {
                let kind = try next("a crash kind")
                guard let parsed = CrashKind(rawValue: kind.text), parsed != .other else {
                    let valid = CrashKind.allCases.filter { $0 != .other }.map(\.rawValue)
                    var message = "unknown crash kind '\(kind.text)'"
                    if let close = suggestion(for: kind.text, among: valid) { message += " (did you mean '\(close)'?)" }
                    throw Failure(offset: kind.offset, message: message + "; kinds: \(valid.joined(separator: ", "))")
                }
                kinds.insert(parsed)
            } while accept(",")
            let close = try next("')'")
            guard close.text == ")" else { throw Failure(offset: close.offset, message: "expected ')' after the crash kinds") }
            return .trigger(.crashed(kinds))
        case "unhealthy": return .trigger(.unhealthy)
        case "heartbeat-missed": return .trigger(.heartbeatMissed)
        case "heartbeat-late": return .trigger(.heartbeatLate)
        case "host-down": return .trigger(.hostDown)
        case "host-isolated": return .trigger(.hostIsolated)
        case "host-returned": return .trigger(.hostReturned)
        case "journal":
            let pattern = try next("a quoted pattern")
            guard pattern.quoted, !pattern.text.isEmpty else {
                throw Failure(offset: pattern.offset, message: "journal needs a quoted pattern, e.g. journal \"Out of memory\"")
            }
            return .trigger(.journal(pattern.text))
        case "alert":
            return .trigger(.alert(try alertRule()))
        case "memory", "cpu", "fds", "tasks", "disk", "memory.pressure", "cpu.pressure", "io.pressure":
            return .trigger(.limit(try limit(token)))
        default:
            if let metric = Metric(rawValue: token.text) { return try comparison(metric, token) }
            var message = "unknown trigger or metric '\(token.text)'"
            let known = Trigger.names + Metric.allCases.map(\.rawValue)
            if let close = suggestion(for: token.text, among: known) { message += " (did you mean '\(close)'?)" }
            throw Failure(offset: token.offset, message: message + "; triggers: \(Trigger.names.joined(separator: ", ")); metrics: \(Metric.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }

    /// `"NAME" [{ label OP "value", … }]` after `alert`.
    private mutating func alertRule() throws -> AlertRule {
        let name = try next("a quoted alert name")
        guard name.quoted, !name.text.isEmpty else {
            throw Failure(offset: name.offset, message: "alert needs the alert's name in quotes, e.g. alert \"HighErrorRate\"")
        }
        var rule = AlertRule(name: name.text)
        guard accept("{") else { return rule }
        repeat {
            let label = try next("a label name")
            guard !label.quoted, label.text.first.map({ $0.isLetter || $0 == "_" }) == true,
                  label.text.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
                throw Failure(offset: label.offset, message: "'\(label.text)' is not a label name (letters, digits and _, e.g. job)")
            }
            let opToken = try next("a matcher (=, !=, =~, !~)")
            guard let op = LabelMatcher.Operator(rawValue: opToken.text) else {
                throw Failure(offset: opToken.offset, message: "expected =, !=, =~ or !~ after '\(label.text)', found '\(opToken.text)'")
            }
            let value = try next("a quoted value")
            guard value.quoted else {
                throw Failure(offset: value.offset, message: "the value of '\(label.text)' goes in quotes, e.g. \(label.text) \(op.rawValue) \"\(value.text)\"")
            }
            guard let matcher = LabelMatcher(label: label.text, op: op, value: value.text) else {
                throw Failure(offset: value.offset, message: "'\(value.text)' is not a valid regular expression")
            }
            rule.matchers.append(matcher)
        } while accept(",")
        let close = try next("'}'")
        guard close.text == "}", !close.quoted else { throw Failure(offset: close.offset, message: "expected '}' or ',' after the matcher, found '\(close.text)'") }
        return rule
    }

    private mutating func comparisonOperator() throws -> Comparison {
        let token = try next("a comparison (>, >=, <, <=)")
        guard let op = Comparison(rawValue: token.text) else {
            throw Failure(offset: token.offset, message: "expected a comparison (>, >=, <, <=), found '\(token.text)'")
        }
        return op
    }

    private mutating func limit(_ name: Token) throws -> ResourceLimit {
        var resource: ResourceLimit.Resource
        switch name.text {
        case "memory": resource = .memory
        case "cpu": resource = .cpu
        case "fds": resource = .fds
        case "tasks": resource = .tasks
        case "memory.pressure": resource = .pressure(.memory)
        case "cpu.pressure": resource = .pressure(.cpu)
        case "io.pressure": resource = .pressure(.io)
        default:
            let path = try next("a mount point after 'disk'")
            guard path.text.hasPrefix("/") else { throw Failure(offset: path.offset, message: "disk needs an absolute mount point, e.g. disk / > 95%") }
            resource = .disk(path: path.text)
        }
        let op = try comparisonOperator()
        let valueToken = try next("a threshold")
        let text = valueToken.text
        var threshold: Double
        var percent = false
        if let fraction = Quantity.parsePercent(text) {
            threshold = fraction
            percent = true
        } else if let bytes = Quantity.parseSize(text), resource == .memory {
            threshold = bytes
        } else if let count = Double(text), resource == .fds || resource == .tasks {
            threshold = count
        } else {
            let expected = switch resource {
            case .memory: "a size such as 512MiB or 1.5GiB, or a percentage of the limit"
            case .cpu: "a percentage such as 90%"
            case .fds, .tasks: "a count or a percentage of the limit"
            case .disk: "a percentage such as 95%"
            case .pressure: "a percentage of the time stalled such as 20%"
            }
            throw Failure(offset: valueToken.offset, message: "'\(text)' is not a valid threshold for \(name.text); write \(expected)")
        }
        let holdFor = try durationAfter("for")
        threshold = threshold.isFinite ? threshold : 0
        return ResourceLimit(resource: resource, comparison: op, threshold: threshold, isPercentage: percent, holdFor: holdFor)
    }

    private mutating func comparison(_ metric: Metric, _ name: Token) throws -> Condition {
        let op = try comparisonOperator()
        let valueToken = try next("a number")
        let value: Double
        if metric.isPercentage {
            guard let fraction = Quantity.parsePercent(valueToken.text) else {
                throw Failure(offset: valueToken.offset, message: "\(metric.rawValue) is compared with a percentage, e.g. 40%")
            }
            value = fraction
        } else {
            guard let number = Double(valueToken.text), number >= 0 else {
                throw Failure(offset: valueToken.offset, message: "'\(valueToken.text)' is not a number")
            }
            value = number
        }
        let within = try durationAfter("in")
        if within == nil, metric.isCount {
            throw Failure(offset: name.offset, message: "\(metric.rawValue) counts need a window, e.g. '\(metric.rawValue) > 3 in 10m'")
        }
        return .compare(metric, op, value, within: within)
    }

    /// `WORD DURATION` if the next token is `word`; nil if it is not there.
    private mutating func durationAfter(_ word: String) throws -> Duration? {
        guard accept(word) else { return nil }
        let token = try next("a duration after '\(word)'")
        guard let duration = DurationText.parse(token.text) else {
            throw Failure(offset: token.offset, message: "'\(token.text)' is not a duration; write e.g. 30s, 10m, 1h")
        }
        return duration
    }
}
