import Foundation
import MedicCore

/// Alertmanager's webhook payload, version 4 (what its `webhook_configs` receiver posts).
public struct AlertmanagerPayload: Decodable, Sendable {
    public struct Alert: Decodable, Sendable {
        /// `firing` or `resolved`.
        public var status: String
        public var labels: [String: String]
        public var annotations: [String: String]?
        public var startsAt: String
        public var endsAt: String?
        public var generatorURL: String?
        public var fingerprint: String
    }

    public var version: String
    public var status: String
    public var receiver: String
    public var groupLabels: [String: String]?
    public var commonLabels: [String: String]?
    public var externalURL: String?
    public var alerts: [Alert]

    /// Decodes and checks a webhook body; the error says what is wrong with it.
    public static func decode(_ body: [UInt8]) throws(AlertIntakeError) -> AlertmanagerPayload {
        let payload: AlertmanagerPayload
        do {
            payload = try JSONDecoder().decode(AlertmanagerPayload.self, from: Data(body))
        } catch let DecodingError.keyNotFound(key, context) {
            throw .malformed("field '\((context.codingPath + [key]).map(\.stringValue).joined(separator: "."))' is missing")
        } catch let DecodingError.typeMismatch(_, context) where !context.codingPath.isEmpty {
            throw .malformed("field '\(context.codingPath.map(\.stringValue).joined(separator: "."))' has the wrong type")
        } catch {
            throw .malformed("not JSON of Alertmanager's webhook (version 4)")
        }
        guard payload.version == "4" else { throw .malformed("version '\(payload.version)' is not 4 (Alertmanager's webhook payload version)") }
        for (index, alert) in payload.alerts.enumerated() {
            guard ["firing", "resolved"].contains(alert.status) else { throw .malformed("alerts.\(index).status '\(alert.status)' is not firing or resolved") }
            guard alert.labels["alertname"].map({ !$0.isEmpty }) == true else { throw .malformed("alerts.\(index).labels has no alertname") }
            guard !alert.fingerprint.isEmpty else { throw .malformed("alerts.\(index).fingerprint is empty") }
            guard AlertIntake.wallMicroseconds(alert.startsAt) != nil else { throw .malformed("alerts.\(index).startsAt '\(alert.startsAt)' is not an RFC 3339 time") }
        }
        return payload
    }
}

/// Why a webhook request was refused.
public enum AlertIntakeError: Error, Equatable, CustomStringConvertible {
    case malformed(String)

    public var description: String {
        switch self {
        case .malformed(let why): "malformed Alertmanager webhook: \(why)"
        }
    }
}

/// Turns Alertmanager's notifications into observations: each alert mapped to a target of this
/// host, and each seen once. Alertmanager sends a group again every `group_interval` while it
/// changes and every `repeat_interval` while it fires: an alert already seen with the same
/// fingerprint, start and status is a repeat and opens nothing again.
///
/// The target of an alert, in this order:
/// - its `unit` label (`web.service`; a name without a type is a `.service`);
/// - else, when its `instance` label (host or host:port), or its `host` or `nodename` label,
///   names this host (its host name, full name, `localhost` or a loopback address), the host
///   target;
/// - else none: the alert is recorded and ignored, as one for a target without an alert rule is.
public struct AlertIntake: Sendable {
    /// What one payload comes to.
    public struct Intake: Sendable {
        /// New alerts, as observations of their targets.
        public var observations: [Observation] = []
        /// Alerts that map to no target: said so, once each.
        public var unmatched: [(alert: String, why: String, facts: [String: String])] = []
        /// Alerts seen before (a repeat): nothing is done.
        public var repeats = 0
    }

    /// The names this host answers to.
    public let hostNames: Set<String>
    /// Keys of the alerts seen (`fingerprint startsAt status`), with when, oldest first.
    private var seen: [String: Timestamp] = [:]
    private var order: [String] = []
    static let remembered = 50_000

    public init(hostNames: Set<String>) {
        self.hostNames = hostNames.union(["localhost", "127.0.0.1", "::1", "[::1]"])
    }

    /// The host names of this machine: its node name and, when the resolver has one, its full name.
    public static func localNames() -> Set<String> {
        var names: Set<String> = []
        let name = ProcessInfo.processInfo.hostName
        names.insert(name)
        if let short = name.split(separator: ".").first { names.insert(String(short)) }
        var buffer = [CChar](repeating: 0, count: 256)
        if gethostname(&buffer, buffer.count) == 0 { names.insert(String(cString: buffer)) }
        return names
    }

    /// The key under which an alert is remembered.
    public static func key(fingerprint: String, startsAt: String, status: String) -> String { "\(fingerprint) \(startsAt) \(status)" }

    /// Remembers alerts recorded before (from the audit log, at start-up), so that a restarted
    /// medicd does not take Alertmanager's repeats for news.
    public mutating func remember(_ keys: [String], at now: Timestamp) {
        for key in keys where seen[key] == nil { note(key, at: now) }
    }

    /// Whether an alert has been seen; used to answer a repeat without a second record.
    public func hasSeen(_ key: String) -> Bool { seen[key] != nil }

    /// Marks the alerts of `intake` seen, once their records are durable (a payload that could
    /// not be recorded is news again when Alertmanager sends it again).
    public mutating func commit(_ intake: Intake, at now: Timestamp) {
        for observation in intake.observations {
            if let key = observation.facts["alert_key"] { note(key, at: now) }
        }
        for entry in intake.unmatched {
            if let key = entry.facts["alert_key"] { note(key, at: now) }
        }
    }

    /// Forgets the alerts of `intake` again: they could not be recorded.
    public mutating func forget(_ intake: Intake) {
        let keys = Set((intake.observations.map(\.facts) + intake.unmatched.map(\.facts)).compactMap { $0["alert_key"] })
        for key in keys { seen[key] = nil }
        order.removeAll { keys.contains($0) }
    }

    /// What `payload` says that is new; `hasRule` tells whether a target has an alert rule.
    public func take(_ payload: AlertmanagerPayload, at now: Timestamp, hasRule: (String) -> Bool) -> Intake {
        var intake = Intake()
        for alert in payload.alerts {
            let key = Self.key(fingerprint: alert.fingerprint, startsAt: alert.startsAt, status: alert.status)
            guard seen[key] == nil, !intake.observations.contains(where: { $0.facts["alert_key"] == key }) else {
                intake.repeats += 1
                continue
            }
            let name = alert.labels["alertname"] ?? "?"
            var facts = [
                "alert": name, "alert_status": alert.status, "alert_fingerprint": alert.fingerprint, "alert_starts_at": alert.startsAt,
                "alert_key": key, "receiver": payload.receiver,
            ]
            if let ends = alert.endsAt, alert.status == "resolved" { facts["alert_ends_at"] = ends }
            if let url = alert.generatorURL, !url.isEmpty { facts["generator_url"] = url }
            for (label, value) in alert.labels { facts[Observation.labelPrefix + label] = value }
            for (annotation, value) in alert.annotations ?? [:] { facts["annotation." + annotation] = value }
            guard let target = target(of: alert.labels) else {
                intake.unmatched.append((name, "its labels name no target of this host (no unit label, and no instance, host or nodename label naming \(hostNames.sorted().first ?? "it"))", facts))
                continue
            }
            guard hasRule(target) else {
                intake.unmatched.append((name, "no playbook of this host has an alert rule for \(target)", facts))
                continue
            }
            let firing = alert.status == "firing"
            let summary = alert.annotations?["summary"].map { ": \($0)" } ?? ""
            intake.observations.append(Observation(
                target: target, kind: firing ? .alertFiring(name) : .alertResolved(name), time: now,
                occurred: Self.wallMicroseconds(firing ? alert.startsAt : alert.endsAt ?? "").map { now.movedTo(wall: $0) },
                facts: facts, summary: "alert \(name) \(firing ? "firing" : "resolved")\(summary)"))
        }
        return intake
    }

    /// The target an alert's labels name on this host, if any.
    public func target(of labels: [String: String]) -> String? {
        if let unit = labels["unit"], !unit.isEmpty { return unit.contains(".") ? unit : unit + ".service" }
        for label in ["instance", "host", "nodename"] {
            guard let value = labels[label], !value.isEmpty else { continue }
            if hostNames.contains(Self.hostPart(value)) { return "host" }
        }
        return nil
    }

    /// `web1:9100` → `web1`, `[::1]:9100` → `::1`.
    static func hostPart(_ instance: String) -> String {
        if instance.hasPrefix("["), let close = instance.firstIndex(of: "]") {
            return String(instance[instance.index(after: instance.startIndex)..<close])
        }
        let colons = instance.filter { $0 == ":" }.count
        return colons == 1 ? String(instance.split(separator: ":")[0]) : instance
    }

    /// An RFC 3339 time, with or without fractions of a second (Alertmanager writes
    /// nanoseconds), in microseconds since the epoch.
    static func wallMicroseconds(_ text: String) -> Int64? {
        guard text.count >= 20 else { return nil }
        var whole = text
        var fraction: Int64 = 0
        if let dot = text.firstIndex(of: ".") {
            let digitsEnd = text[dot...].dropFirst().firstIndex { !$0.isNumber } ?? text.endIndex
            let digits = String(text[text.index(after: dot)..<digitsEnd].prefix(6))
            fraction = (Int64(digits) ?? 0) * Int64([1, 100_000, 10_000, 1000, 100, 10, 1][digits.count])
            whole = String(text[..<dot]) + String(text[digitsEnd...])
        }
        let formatter = ISO8601DateFormatter()
        guard let date = formatter.date(from: whole) else { return nil }
        return Int64(date.timeIntervalSince1970) * 1_000_000 + fraction
    }

    private mutating func note(_ key: String, at now: Timestamp) {
        seen[key] = now
        order.append(key)
        if order.count > Self.remembered {
            for old in order.prefix(order.count - Self.remembered) { seen[old] = nil }
            order.removeFirst(order.count - Self.remembered)
        }
    }
}
