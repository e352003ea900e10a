import MedicCore
import Yams

extension PlaybookReader {
    /// `receivers: { oncall: { webhook: URL, format: slack }, log: { journal: err } }`.
    mutating func receivers(_ node: Node) -> [String: Receiver] {
        guard case .mapping(let mapping) = node else {
            nodes.report(node, "'receivers' must be a mapping of names to receivers, e.g. { oncall: { webhook: 'https://…' } }")
            return [:]
        }
        var result: [String: Receiver] = [:]
        for (key, value) in mapping {
            guard let name = nodes.string(key, what: "a receiver's name") else { continue }
            if let receiver = receiver(name, value) { result[name] = receiver }
        }
        return result
    }

    static let priorities = ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"]

    private mutating func receiver(_ name: String, _ node: Node) -> Receiver? {
        guard let keys = nodes.mapping(node, what: "receiver '\(name)'", allowed: ["webhook", "format", "timeout", "retries", "journal"]) else { return nil }
        switch (keys["webhook"], keys["journal"]) {
        case (let webhook?, nil):
            guard let url = nodes.string(webhook.value, what: "'webhook'") else { return nil }
            guard url.hasPrefix("http://") || url.hasPrefix("https://") else {
                nodes.report(webhook.value, "'\(url)' is not an http:// or https:// URL")
                return nil
            }
            var format = Receiver.Format.json
            if let node = keys["format"]?.value, let text = nodes.string(node, what: "'format'") {
                guard let known = Receiver.Format(rawValue: text) else {
                    nodes.report(node, "format '\(text)' is not one of \(Receiver.Format.allCases.map(\.rawValue).joined(separator: ", "))")
                    return nil
                }
                format = known
            }
            let timeout = keys["timeout"].flatMap { nodes.duration($0.value, what: "'timeout'") } ?? .seconds(5)
            let retries = keys["retries"].flatMap { nodes.count($0.value, what: "'retries'") } ?? 3
            return Receiver(name: name, kind: .webhook(url: url, format: format, timeout: timeout, retries: retries))
        case (nil, let journal?):
            if let extra = keys["format"] ?? keys["timeout"] ?? keys["retries"] {
                nodes.report(extra.key, "'format', 'timeout' and 'retries' apply to webhooks only")
            }
            guard let text = nodes.string(journal.value, what: "'journal' (a priority)") else { return nil }
            guard let priority = Self.priorities.firstIndex(of: text) else {
                nodes.report(journal.value, "'\(text)' is not a journal priority; one of \(Self.priorities.joined(separator: ", "))")
                return nil
            }
            return Receiver(name: name, kind: .journal(priority: priority))
        default:
            nodes.report(node, "receiver '\(name)' is either 'webhook: URL' or 'journal: PRIORITY'")
            return nil
        }
    }
}
