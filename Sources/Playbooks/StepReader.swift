import MedicCore
import Yams

extension PlaybookReader {
    /// A list of steps.
    mutating func plan(_ node: Node, what: String) -> [Step] {
        guard let items = nodes.sequence(node, what: what) else { return [] }
        if items.isEmpty { nodes.report(node, "\(what) is empty; give at least one step") }
        return items.compactMap { step($0) }
    }

    /// A step is `name`, `name: VALUE` (its main option) or `name: { options }`.
    mutating func step(_ node: Node) -> Step? {
        let nameNode: Node
        var value: Node?
        switch node {
        case .scalar:
            nameNode = node
        case .mapping(let mapping) where mapping.count == 1:
            nameNode = mapping.first!.key
            value = mapping.first!.value
        default:
            nodes.report(node, "a step is a step name with its options, e.g. '- restart: { timeout: 30s }'")
            return nil
        }
        guard let name = nodes.string(nameNode, what: "a step's name") else { return nil }
        guard let kind = StepKind(rawValue: name) else {
            let names = StepKind.allCases.map(\.rawValue)
            var message = "unknown step '\(name)'"
            if let close = suggestion(for: name, among: names) { message += " (did you mean '\(close)'?)" }
            nodes.report(nameNode, message + "; steps available: \(names.joined(separator: ", "))")
            return nil
        }
        if let v = value, case .scalar(let scalar) = v, scalar.string.isEmpty || scalar.tag.description.hasSuffix(":null") {
            value = nil
        }
        return stepOptions(kind, nameNode: nameNode, value: value)
    }

    private mutating func options(_ value: Node?, _ kind: StepKind, allowed: [String], required: [String] = []) -> [String: (key: Node, value: Node)]? {
        guard let value else { return [:] }
        return nodes.mapping(value, what: "'\(kind.rawValue)'", allowed: allowed + ["timeout"], required: required)
    }

    static let budgetKeys = ["fleet_budget", "budget", "budget_wait"]

    /// A step's fleet budget (`fleet_budget: N`, with `budget: NAME` and `budget_wait: D`):
    /// `.some(nil)` when it has none, nil when what it has is wrong (reported).
    private mutating func fleetBudget(_ keys: [String: (key: Node, value: Node)], defaultName: String, doing: String) -> FleetBudget?? {
        guard let slotsNode = keys["fleet_budget"]?.value else {
            if let name = ["budget", "budget_wait"].first(where: { keys[$0] != nil }) {
                nodes.report(keys[name]?.key, "'\(name)' needs 'fleet_budget: N' beside it (how many hosts may \(doing) at once)")
            }
            return .some(nil)
        }
        guard let text = nodes.string(slotsNode, what: "'fleet_budget'"), let slots = Int(text), (1...1000).contains(slots) else {
            nodes.report(slotsNode, "'fleet_budget' must be how many hosts of the fleet may \(doing) at once, a number from 1, e.g. 'fleet_budget: 1'")
            return nil
        }
        let name = keys["budget"].flatMap { nodes.string($0.value, what: "'budget' (the budget's name)") } ?? defaultName
        if name.isEmpty || !name.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) {
            nodes.report(keys["budget"]?.value, "'budget' must be a name of letters, digits, '-', '_' or '.'; found '\(name)'")
        }
        let wait = keys["budget_wait"].flatMap { nodes.duration($0.value, what: "'budget_wait'") } ?? .seconds(1800)
        return FleetBudget(name: name, slots: slots, wait: wait)
    }

    private mutating func timeout(_ keys: [String: (key: Node, value: Node)]) -> Duration? {
        keys["timeout"].flatMap { nodes.duration($0.value, what: "'timeout'") }
    }

    /// Whether `value` is a plain scalar (the step's main option written without a mapping).
    private func isScalar(_ value: Node?) -> Bool {
        if case .scalar? = value { return true }
        return false
    }

    private mutating func stepOptions(_ kind: StepKind, nameNode: Node, value: Node?) -> Step? {
        switch kind {
        case .restart, .start, .stop, .reload:
            guard let keys = options(value, kind, allowed: []) else { return nil }
            let action: Step.Action = switch kind {
            case .restart: .restart
            case .start: .start
            case .stop: .stop
            default: .reload
            }
            return Step(action, timeout: timeout(keys))

        case .kill:
            if isScalar(value), let value, let text = nodes.string(value, what: "'kill'") {
                guard let signal = Signals.number(text) else { nodes.report(value, Signals.problem(text)); return nil }
                return Step(.kill(signal: signal))
            }
            guard let keys = options(value, kind, allowed: ["signal"], required: ["signal"]),
                  let signalNode = keys["signal"]?.value, let text = nodes.string(signalNode, what: "'signal'")
            else {
                if value == nil { nodes.report(nameNode, "'kill' needs a signal, e.g. '- kill: SIGTERM'") }
                return nil
            }
            guard let signal = Signals.number(text) else { nodes.report(signalNode, Signals.problem(text)); return nil }
            return Step(.kill(signal: signal), timeout: timeout(keys))

        case .verify:
            guard let value, let keys = nodes.mapping(value, what: "'verify'", allowed: ["healthy", "for"], required: ["healthy"]) else {
                if value == nil { nodes.report(nameNode, "'verify' needs 'healthy: within DURATION', e.g. '- verify: { healthy: within 20s }'") }
                return nil
            }
            guard let healthyNode = keys["healthy"]?.value, let text = nodes.string(healthyNode, what: "'healthy'") else { return nil }
            let words = text.split(separator: " ")
            guard words.count == 2, words[0] == "within", let within = DurationText.parse(String(words[1])) else {
                nodes.report(healthyNode, "'healthy' must be 'within DURATION', e.g. 'within 20s'; found '\(text)'")
                return nil
            }
            let stable = keys["for"].flatMap { nodes.duration($0.value, what: "'for'") } ?? .zero
            return Step(.verify(within: within, stable: stable), timeout: within + stable)

        case .wait:
            if isScalar(value), let value {
                guard let d = nodes.duration(value, what: "'wait'") else { return nil }
                return Step(.wait(d), timeout: d)
            }
            guard let keys = options(value, kind, allowed: ["for"], required: ["for"]),
                  let d = keys["for"].flatMap({ nodes.duration($0.value, what: "'for'") })
            else {
                if value == nil { nodes.report(nameNode, "'wait' needs a duration, e.g. '- wait: 5s'") }
                return nil
            }
            return Step(.wait(d), timeout: d)

        case .collect:
            guard let keys = options(value, kind, allowed: ["journal"]) else { return nil }
            let lines = keys["journal"].flatMap { nodes.count($0.value, what: "'journal' (lines)") } ?? 200
            return Step(.collect(journalLines: lines), timeout: timeout(keys))

        case .pool:
            poolSteps.append(nameNode)
            if isScalar(value), let value, let text = nodes.string(value, what: "'pool'") {
                guard let state = PoolState(rawValue: text) else {
                    nodes.report(value, "pool state '\(text)' is not one of drain, maint, ready")
                    return nil
                }
                return Step(.pool(state))
            }
            guard let keys = options(value, kind, allowed: ["state"] + Self.budgetKeys, required: ["state"]),
                  let stateNode = keys["state"]?.value, let text = nodes.string(stateNode, what: "'state'")
            else {
                if value == nil { nodes.report(nameNode, "'pool' needs a state: drain, maint or ready") }
                return nil
            }
            guard let state = PoolState(rawValue: text) else {
                nodes.report(stateNode, "pool state '\(text)' is not one of drain, maint, ready")
                return nil
            }
            guard let budget = fleetBudget(keys, defaultName: "pool", doing: "have servers out of the pool") else { return nil }
            if state == .ready, let budget {
                nodes.report(keys["fleet_budget"]?.key, "a fleet budget limits taking servers out (drain, maint); returning them (ready) needs none, so '\(budget.name)' has nothing to count here")
                return nil
            }
            let wait = budget.map { $0.wait + StepKind.pool.defaultTimeout }
            return Step(.pool(state, budget: budget), timeout: timeout(keys) ?? wait)

        case .cache:
            cacheSteps.append(nameNode)
            guard let keys = options(value, kind, allowed: ["ban"], required: ["ban"]),
                  let banNode = keys["ban"]?.value, let ban = nodes.string(banNode, what: "'ban'")
            else {
                if value == nil { nodes.report(nameNode, "'cache' needs what to ban, e.g. '- cache: { ban: \'req.url ~ \"^/api/\"\' }'") }
                return nil
            }
            let expression = ban.trimmingCharacters(in: .whitespaces)
            guard expression.hasPrefix("req.") || expression.hasPrefix("obj."), !expression.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                nodes.report(banNode, "'ban' must be one line of Varnish's ban expression on req.* or obj.* fields, e.g. 'req.url ~ \"^/api/\"' or 'obj.http.x-host == \"shop\"'; found '\(ban)'")
                return nil
            }
            return Step(.cache(ban: expression), timeout: timeout(keys))

        case .reboot:
            guard let keys = options(value, kind, allowed: ["at_most"] + Self.budgetKeys) else { return nil }
            var limit = RateLimit(count: 1, window: .seconds(21_600))
            if let atMost = keys["at_most"]?.value {
                guard let parsed = rateLimit(atMost, what: "'at_most'") else { return nil }
                limit = parsed
            }
            guard let budget = fleetBudget(keys, defaultName: "reboot", doing: "reboot") else { return nil }
            // The default timeout covers the wait for a slot, then the reboot itself.
            return Step(.reboot(limit: limit, budget: budget), timeout: timeout(keys) ?? budget.map { $0.wait + StepKind.reboot.defaultTimeout })

        case .exec:
            if case .sequence? = value, let value {
                guard let command = program(value, what: "'exec'") else { return nil }
                return Step(.exec(ExecCommand(arguments: command)))
            }
            guard let keys = options(value, kind, allowed: ["command", "workdir", "user", "output"], required: ["command"]),
                  let commandNode = keys["command"]?.value
            else {
                if value == nil { nodes.report(nameNode, "'exec' needs a command as a list: '- exec: [/usr/local/bin/fix, --now]'") }
                return nil
            }
            guard let command = program(commandNode, what: "'command'") else { return nil }
            var exec = ExecCommand(arguments: command)
            if let node = keys["workdir"]?.value, let directory = nodes.string(node, what: "'workdir'") {
                if directory.hasPrefix("/") { exec.workingDirectory = directory } else { nodes.report(node, "'workdir' must be an absolute path; found '\(directory)'") }
            }
            if let node = keys["user"]?.value, let user = nodes.string(node, what: "'user'") { exec.user = user }
            if let node = keys["output"]?.value, let text = nodes.string(node, what: "'output'") {
                if let bytes = Quantity.parseSize(text), bytes >= 1, bytes <= 1_048_576 {
                    exec.outputLimit = Int(bytes)
                } else {
                    nodes.report(node, "'output' is how much of the program's output to keep, a size from 1B to 1MiB such as 16KiB; found '\(text)'")
                }
            }
            return Step(.exec(exec), timeout: timeout(keys))

        case .notify:
            if isScalar(value), let value, let recipient = nodes.string(value, what: "'notify'") {
                notified.append((recipient, value))
                return Step(.notify(recipient: recipient, message: nil))
            }
            guard let keys = options(value, kind, allowed: ["to", "message"], required: ["to"]),
                  let recipient = keys["to"].flatMap({ nodes.string($0.value, what: "'to'") })
            else {
                if value == nil { nodes.report(nameNode, "'notify' needs a recipient, e.g. '- notify: oncall'") }
                return nil
            }
            notified.append((recipient, keys["to"]!.value))
            let message = keys["message"].flatMap { nodes.string($0.value, what: "'message'") }
            return Step(.notify(recipient: recipient, message: message), timeout: timeout(keys))
        }
    }
}

extension PlaybookReader {
    /// A program and its arguments: a list whose first item is an absolute path.
    mutating func program(_ node: Node, what: String) -> [String]? {
        if case .scalar = node {
            nodes.report(node, "\(what) must be a list of arguments, never a shell string: [/path/to/program, arg1, arg2]")
            return nil
        }
        guard let command = stringList(node, what: what), !command.isEmpty else { return nil }
        guard command[0].hasPrefix("/") else {
            nodes.report(node, "the program '\(command[0])' must be an absolute path")
            return nil
        }
        return command
    }
}

/// Signal names and numbers as Linux has them.
enum Signals {
    static let names = [
        "HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "BUS": 7, "FPE": 8, "KILL": 9, "USR1": 10,
        "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14, "TERM": 15, "CONT": 18, "STOP": 19, "TSTP": 20,
    ]

    /// `SIGTERM`, `TERM` or `15`.
    static func number(_ text: String) -> Int32? {
        if let n = Int32(text), n > 0, n < 65 { return n }
        let name = text.hasPrefix("SIG") ? String(text.dropFirst(3)) : text
        return names[name].map(Int32.init)
    }

    static func problem(_ text: String) -> String {
        "'\(text)' is not a signal; write a name such as SIGTERM, SIGKILL, SIGHUP, or a number"
    }
}
