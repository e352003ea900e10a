import Crypto
import Foundation
import MedicCore
import Yams

/// Turns playbook YAML into a validated `Playbook`, or every problem in it as `Diagnostics`.
public enum PlaybookParser {
    /// Parses the bytes of a playbook file. `file` is the name used in diagnostics; `defaults`
    /// come from the daemon's config.
    public static func parse(data: [UInt8], file: String, defaults: PlaybookDefaults = PlaybookDefaults()) -> Result<Playbook, Diagnostics> {
        let root: Node
        switch YAMLDocument.compose(data: data, file: file, what: "a playbook", needs: "'playbook:', 'targets:' and 'on:'") {
        case .failure(let diagnostics): return .failure(diagnostics)
        case .success(let node): root = node
        }
        var reader = PlaybookReader(file: file, defaults: defaults)
        let hash = SHA256.hash(data: data).hexString
        let playbook = reader.playbook(root, hash: hash)
        return YAMLDocument.result(playbook, reader.nodes.diagnostics)
    }

    /// Reads and parses a playbook file.
    public static func parse(file: String, defaults: PlaybookDefaults = PlaybookDefaults()) -> Result<Playbook, Diagnostics> {
        YAMLDocument.read(file: file).flatMap { parse(data: $0, file: file, defaults: defaults) }
    }
}

/// Reads a playbook's tree into the model, collecting every problem.
struct PlaybookReader {
    var nodes: NodeReader
    let file: String
    /// Receivers named by `notify` steps, checked once the receivers are read.
    var notified: [(name: String, node: Node)] = []
    /// `pool` steps, which need every target to be in a pool.
    var poolSteps: [Node] = []
    /// `cache` steps, each of which needs its targets behind Varnish.
    var cacheSteps: [Node] = []
    let defaults: PlaybookDefaults

    init(file: String, defaults: PlaybookDefaults = PlaybookDefaults()) {
        self.file = file
        self.defaults = defaults
        nodes = NodeReader(file: file)
    }

    static let topKeys = ["playbook", "dry_run", "targets", "guards", "receivers", "on"]

    mutating func playbook(_ root: Node, hash: String) -> Playbook? {
        guard let top = nodes.mapping(root, what: "a playbook", allowed: Self.topKeys, required: ["playbook", "targets", "on"]) else { return nil }
        let name = top["playbook"].flatMap { nodes.string($0.value, what: "'playbook' (its name)") }
        let dryRun = top["dry_run"].flatMap { nodes.bool($0.value, what: "'dry_run'") } ?? false
        var targets: [(TargetSpec, Node)] = []
        if let node = top["targets"]?.value, let items = nodes.sequence(node, what: "'targets'") {
            if items.isEmpty { nodes.report(node, "'targets' is empty; name at least one unit, or host") }
            for item in items {
                if let target = target(item) { targets.append((target, item)) }
            }
        }
        let guards = top["guards"].flatMap { guardSettings($0.value, base: defaults.guards) } ?? defaults.guards
        var rules: [(Rule, Node)] = []
        if let node = top["on"]?.value, let items = nodes.sequence(node, what: "'on'") {
            if items.isEmpty { nodes.report(node, "'on' is empty; give at least one 'when:' with steps") }
            for item in items {
                if let rule = rule(item) { rules.append((rule, item)) }
            }
        }
        checkCoverage(targets: targets, rules: rules)
        let receivers = defaults.receivers.merging(top["receivers"].map { self.receivers($0.value) } ?? [:]) { _, own in own }
        checkReferences(receivers: receivers, targets: targets)
        guard let name else { return nil }
        return Playbook(
            name: name, file: file, contentHash: hash, dryRun: dryRun, targets: targets.map(\.0), rules: rules.map(\.0), guards: guards,
            receivers: receivers)
    }

    /// Every `notify` names a receiver; every `pool` step has targets in a pool, every `cache`
    /// step targets behind Varnish.
    private mutating func checkReferences(receivers: [String: Receiver], targets: [(TargetSpec, Node)]) {
        let names = (Array(receivers.keys) + [Receiver.journal.name]).sorted()
        for (name, node) in notified where receivers[name] == nil && name != Receiver.journal.name {
            var message = "'notify' names no receiver '\(name)'"
            if let close = suggestion(for: name, among: names) { message += " (did you mean '\(close)'?)" }
            nodes.report(node, message + "; receivers: \(names.joined(separator: ", ")) (define them under 'receivers:' here or in medic.yaml)")
        }
        if let step = poolSteps.first {
            // A fleet peer's servers come from its registration.
            for (target, node) in targets where target.pool == nil && !target.selector.isPeers {
                nodes.report(node, "target \(target.selector) has no 'pool:' (haproxy, backend, server), but the 'pool' step at line \(step.mark.map { "\($0.line)" } ?? "?") acts on its pool")
            }
        }
        if let step = cacheSteps.first {
            for (target, node) in targets where !target.selector.isPeers {
                if case .varnish? = target.pool?.balancer { continue }
                nodes.report(node, "target \(target.selector) is not behind Varnish ('pool: { varnish: HOST:PORT, … }'), but the 'cache' step at line \(step.mark.map { "\($0.line)" } ?? "?") bans in the Varnish in front of it")
            }
        }
    }

    /// Every target must be something a rule can fire for, and every trigger must have a target
    /// it can fire for.
    private mutating func checkCoverage(targets: [(TargetSpec, Node)], rules: [(Rule, Node)]) {
        guard !rules.isEmpty, !targets.isEmpty else { return }
        for (target, node) in targets {
            let used = rules.contains { rule in rule.0.condition.triggers.contains { Self.applies($0, to: target) } }
            if !used {
                let triggers = Set(rules.flatMap { $0.0.condition.triggers.map(\.name) }).sorted().joined(separator: ", ")
                nodes.report(node, "target \(target.selector) is used by no trigger: the rules react to \(triggers), which \(target.selector) cannot set off")
            }
        }
        for (rule, node) in rules {
            for trigger in rule.condition.triggers where !targets.contains(where: { Self.applies(trigger, to: $0.0) }) {
                let need = switch trigger {
                case .unhealthy: "a target with a probe"
                case .heartbeatMissed: "a target with a heartbeat"
                case .hostDown, .hostIsolated, .hostReturned: "a 'peers' target (the fleet's other hosts; a host cannot see its own death)"
                case .limit(let limit): if case .disk = limit.resource { "the host target" } else { "a unit target" }
                default: "a unit target"
                }
                nodes.report(node, "trigger '\(trigger)' can never fire: it needs \(need)")
            }
        }
    }

    static func applies(_ trigger: Trigger, to target: TargetSpec) -> Bool {
        let isHost = target.selector == .host
        let isPeers = target.selector.isPeers
        switch trigger {
        case .crashed, .heartbeatLate, .journal: return !isHost && !isPeers
        case .unhealthy: return target.probe != nil
        case .heartbeatMissed: return target.heartbeat != nil
        case .hostDown, .hostIsolated, .hostReturned: return isPeers
        case .alert: return !isPeers
        case .limit(let limit):
            if case .disk = limit.resource { return isHost }
            return !isPeers
        }
    }

    // MARK: Guards

    static let guardKeys = ["rate", "backoff", "cooldown", "flap", "stabilise", "settle", "retry_every", "storm"]

    /// `guards:` read over `base` (the config's defaults, or the built-in ones).
    mutating func guardSettings(_ node: Node, base: Guards) -> Guards? {
        guard let keys = nodes.mapping(node, what: "'guards'", allowed: Self.guardKeys) else { return nil }
        var guards = base
        if let rate = keys["rate"]?.value, let entries = nodes.mapping(rate, what: "'rate'", allowed: StepKind.allCases.map(\.rawValue)) {
            for (name, pair) in entries {
                guard let kind = StepKind(rawValue: name), let limit = rateLimit(pair.value, what: "'rate.\(name)'") else { continue }
                guards.rates[kind] = limit
            }
        }
        if let backoff = keys["backoff"]?.value, let entries = nodes.mapping(backoff, what: "'backoff'", allowed: ["initial", "max", "reset_after"]) {
            if let d = entries["initial"].flatMap({ nodes.duration($0.value, what: "'initial'") }) { guards.backoffInitial = d }
            if let d = entries["max"].flatMap({ nodes.duration($0.value, what: "'max'") }) { guards.backoffMaximum = d }
            if let d = entries["reset_after"].flatMap({ nodes.duration($0.value, what: "'reset_after'") }) { guards.resetAfter = d }
        }
        if let d = keys["cooldown"].flatMap({ nodes.duration($0.value, what: "'cooldown'") }) { guards.cooldown = d }
        if let flap = keys["flap"]?.value, let limit = rateLimit(flap, what: "'flap'") { guards.flap = limit }
        if let d = keys["stabilise"].flatMap({ nodes.duration($0.value, what: "'stabilise'") }) { guards.stabilise = d }
        if let d = keys["settle"].flatMap({ nodes.duration($0.value, what: "'settle'") }) { guards.settle = d }
        if let d = keys["retry_every"].flatMap({ nodes.duration($0.value, what: "'retry_every'") }) { guards.retryEvery = d }
        if let storm = keys["storm"]?.value, let text = nodes.string(storm, what: "'storm'") {
            let parts = text.split(separator: " ")
            if parts.count == 3, parts[1] == "in", let share = Quantity.parsePercent(String(parts[0])), let window = DurationText.parse(String(parts[2])) {
                guards.stormShare = share
                guards.stormWindow = window
            } else {
                nodes.report(storm, "'storm' must be 'SHARE in DURATION', e.g. '30% in 1m'")
            }
        }
        return guards
    }

    mutating func rateLimit(_ node: Node, what: String) -> RateLimit? {
        guard let text = nodes.string(node, what: what) else { return nil }
        guard let limit = RateLimit(parsing: text) else {
            nodes.report(node, "\(what) must be 'N in DURATION', e.g. '3 in 10m'; found '\(text)'")
            return nil
        }
        return limit
    }

    // MARK: Rules

    mutating func rule(_ node: Node) -> Rule? {
        guard let keys = nodes.mapping(node, what: "an 'on' entry", allowed: ["when", "do", "escalate"], required: ["when", "do"]) else { return nil }
        var condition: Condition?
        var text = ""
        if let whenNode = keys["when"]?.value, let whenText = nodes.string(whenNode, what: "'when'") {
            text = whenText
            switch ConditionParser.parse(whenText) {
            case .success(let parsed): condition = parsed
            case .failure(let failure): nodes.report(whenNode, offset: failure.offset, failure.message)
            }
        }
        let steps = keys["do"].map { plan($0.value, what: "'do'") } ?? []
        var levels: [(EscalationLevel, Node)] = []
        if let escalate = keys["escalate"]?.value, let items = nodes.sequence(escalate, what: "'escalate'") {
            for item in items {
                if let level = escalationLevel(item) { levels.append((level, item)) }
            }
            checkLadder(levels)
        }
        guard let condition else { return nil }
        return Rule(condition: condition, text: text, steps: steps, escalation: levels.map(\.0))
    }

    private mutating func escalationLevel(_ node: Node) -> EscalationLevel? {
        guard let keys = nodes.mapping(node, what: "an escalation level", allowed: ["after", "do"], required: ["do"]) else { return nil }
        var after: EscalationLevel.After = .failure
        if let afterNode = keys["after"]?.value, let text = nodes.string(afterNode, what: "'after'") {
            if text == "failure" {
                after = .failure
            } else {
                let parts = text.split(separator: " ")
                if parts.count == 4, let n = Int(parts[0]), n > 0, parts[2] == "in", let window = DurationText.parse(String(parts[3])),
                   parts[1] == "failures" || parts[1] == "restarts" {
                    after = parts[1] == "failures" ? .failures(n, within: window) : .restarts(n, within: window)
                } else {
                    nodes.report(afterNode, "'after' must be 'failure', 'N failures in DURATION' or 'N restarts in DURATION'; found '\(text)'")
                    return nil
                }
            }
        }
        guard let doNode = keys["do"]?.value else { return nil }
        return EscalationLevel(after: after, steps: plan(doNode, what: "an escalation's 'do'"))
    }

    /// An escalation ladder that can loop: two rungs with the same condition, or a rung that
    /// runs after every failure and restarts the target again without a count.
    private mutating func checkLadder(_ levels: [(EscalationLevel, Node)]) {
        var seen: [EscalationLevel.After: Int] = [:]
        for (index, (level, node)) in levels.enumerated() {
            if let other = seen[level.after] {
                nodes.report(node, "escalation levels \(other + 1) and \(index + 1) both run after '\(level.after)': the ladder can loop between them; give each a different 'after'")
            }
            seen[level.after] = index
            if level.after == .failure, level.steps.contains(where: { [.restart, .start].contains($0.kind) }) {
                nodes.report(node, "this escalation restarts the target after every failure, and a restart can fail again: it can loop; use 'after: N failures in DURATION'")
            }
        }
    }
}
