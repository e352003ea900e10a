import Foundation
import MedicCore
import Playbooks

/// A timeline of what happens to targets, for `medic simulate`: JSON lines such as
///
///     {"at": "0s",  "target": "web.service", "event": "crashed", "kind": "signal"}
///     {"at": "40s", "target": "web.service", "event": "active"}
///     {"at": "50s", "target": "web.service", "fail": "restart"}
///
/// Events: crashed (with kind), active, failed, inactive, stopped (an operator's stop), unhealthy,
/// healthy, heartbeat-missed, heartbeat-late, host-down, host-isolated, host-returned, journal (with pattern), limit (with
/// limit, e.g. "memory > 1.5GiB for 1m"), alert-firing and alert-resolved (with alert, and its
/// labels: {"event": "alert-firing", "alert": "HighErrorRate", "labels": {"job": "web"}}).
/// `fail` makes the next step of that kind on the target fail. `facts` adds facts, e.g.
/// {"host.pressure.memory": "0.45"}.
public struct Timeline: Sendable {
    /// One line of the file.
    public enum Entry: Sendable {
        case observe(Observation)
        case failNext(target: String, step: StepKind)
    }

    public var entries: [(at: Duration, entry: Entry)]

    /// A problem with a line of the timeline.
    public struct LineError: Error, CustomStringConvertible {
        public var line: Int
        public var message: String
        public var description: String { "line \(line): \(message)" }
    }

    private struct Line: Decodable {
        var at: String
        var target: String
        var event: String?
        var kind: String?
        var pattern: String?
        var limit: String?
        var fail: String?
        var job: String?
        var alert: String?
        var labels: [String: String]?
        var facts: [String: String]?
    }

    /// Parses the JSON lines; `base` is the virtual time of `at: 0s`.
    public init(jsonLines text: String, base: Timestamp) throws {
        entries = []
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let lineNumber = index + 1
            let trimmed = raw.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            let line: Line
            do {
                line = try JSONDecoder().decode(Line.self, from: Data(trimmed.utf8))
            } catch {
                throw LineError(line: lineNumber, message: "not a timeline entry (JSON with at, target and event or fail): \(error)")
            }
            guard let at = DurationText.parse(line.at) else { throw LineError(line: lineNumber, message: "'at': '\(line.at)' is not a duration such as 1.5s or 2m") }
            if let fail = line.fail {
                guard let step = StepKind(rawValue: fail) else { throw LineError(line: lineNumber, message: "'fail': '\(fail)' is not a step") }
                entries.append((at, .failNext(target: line.target, step: step)))
                continue
            }
            guard let event = line.event else { throw LineError(line: lineNumber, message: "needs 'event' or 'fail'") }
            let time = base.adding(at)
            var facts = line.facts ?? [:]
            let kind: Observation.Kind
            var summary = event
            switch event {
            case "crashed":
                let crash = CrashKind(rawValue: line.kind ?? "signal") ?? .other
                kind = .crashed(crash)
                facts["Result"] = crash.rawValue
                summary = "crashed (\(crash.rawValue))"
            case "active", "failed", "inactive", "activating":
                kind = .stateChanged
                facts["ActiveState"] = event
                summary = event
            case "stopped":
                kind = .stoppedByRequest(line.job ?? "stop")
                facts["ActiveState"] = "inactive"
                summary = "stopped by a \(line.job ?? "stop") job someone else asked for"
            case "unhealthy": kind = .unhealthy
            case "healthy": kind = .healthy
            case "heartbeat-missed": kind = .heartbeatMissed
            case "heartbeat-resumed": kind = .heartbeatResumed
            case "heartbeat-late": kind = .heartbeatLate
            case "host-down": kind = .hostDown
            case "host-isolated": kind = .hostIsolated
            case "host-returned": kind = .hostReturned
            case "journal":
                guard let pattern = line.pattern else { throw LineError(line: lineNumber, message: "a journal event needs 'pattern'") }
                kind = .journalMatched(pattern)
                summary = "journal matched \"\(pattern)\""
            case "limit":
                guard let text = line.limit, case .success(.trigger(.limit(let limit))) = PlaybookConditions.parse(text) else {
                    throw LineError(line: lineNumber, message: "a limit event needs 'limit', e.g. \"memory > 1.5GiB for 1m\"")
                }
                kind = .limitExceeded(limit)
                summary = "limit held: \(limit)"
            case "limit-cleared":
                guard let text = line.limit, case .success(.trigger(.limit(let limit))) = PlaybookConditions.parse(text) else {
                    throw LineError(line: lineNumber, message: "a limit-cleared event needs 'limit'")
                }
                kind = .limitCleared(limit)
                summary = "limit cleared: \(limit.name)"
            case "alert-firing", "alert-resolved":
                guard let alert = line.alert, !alert.isEmpty else {
                    throw LineError(line: lineNumber, message: "an \(event) event needs 'alert' (the alert's name), e.g. \"alert\": \"HighErrorRate\"")
                }
                let firing = event == "alert-firing"
                kind = firing ? .alertFiring(alert) : .alertResolved(alert)
                for (label, value) in (line.labels ?? [:]).merging(["alertname": alert], uniquingKeysWith: { $1 }) { facts[Observation.labelPrefix + label] = value }
                summary = "alert \(alert) \(firing ? "firing" : "resolved")"
            default:
                throw LineError(line: lineNumber, message: "unknown event '\(event)'")
            }
            entries.append((at, .observe(Observation(target: line.target, kind: kind, time: time, facts: facts, summary: summary))))
        }
    }
}
