import GRDB
import Foundation
import MedicCore

/// One incident as the audit log tells it: what broke, when Medic knew, what it did, and how it
/// ended. Built from the records alone, so it reads the same on any copy of the log.
public struct IncidentSummary: Sendable, Equatable, Encodable {
    public var id: Int64
    public var target: String
    public var playbook: String
    public var trigger: String
    /// `open`, or how it closed: `recovered`, `superseded`, `dry-run`, …
    public var status: String
    public var opened: String
    public var closed: String?
    public var timeToDetectMs: Int?
    /// From the fault to the moment the target was healthy again on fresh evidence.
    public var timeToRecoverMs: Int?
    /// When the target was healthy again: the end of the impact window.
    public var healthyAgain: String?
    /// How long it was then watched to be stable before the incident closed.
    public var stabilisedMs: Int?
    /// Each step that ran, with its result: `restart: succeeded`.
    public var steps: [String]
    public var escalations: Int
    public var guardStops: Int

    enum CodingKeys: String, CodingKey {
        case id, target, playbook, trigger, status, opened, closed, steps, escalations
        case timeToDetectMs = "time_to_detect_ms", timeToRecoverMs = "time_to_recover_ms", guardStops = "guard_stops"
        case healthyAgain = "healthy_at", stabilisedMs = "stabilised_ms"
    }

    /// The incidents in `records` (which must hold every record of each incident), oldest first.
    public static func from(_ records: [StoredRecord]) -> [IncidentSummary] {
        var summaries: [Int64: IncidentSummary] = [:]
        for record in records {
            guard let id = record.incident else { continue }
            if record.kind == AuditRecord.Kind.incidentOpened.rawValue {
                summaries[id] = IncidentSummary(
                    id: id, target: record.target ?? "?", playbook: record.playbook ?? "?", trigger: record.facts[.trigger] ?? "?",
                    status: "open", opened: record.time, timeToDetectMs: record.facts[.timeToDetectMs].flatMap(Int.init),
                    steps: [], escalations: 0, guardStops: 0)
                continue
            }
            guard var summary = summaries[id] else { continue }
            switch AuditRecord.Kind(rawValue: record.kind) {
            case .stepResult:
                summary.steps.append("\(record.step ?? "?"): \(record.facts[.result] ?? "?")")
            case .guardStopped:
                summary.guardStops += 1
                if record.step != nil { summary.steps.append("\(record.step!): refused (\(record.facts[.guardName] ?? "guard"))") }
            case .escalation:
                summary.escalations += 1
            case .incidentClosed:
                summary.status = record.facts[.outcome] ?? "closed"
                summary.closed = record.time
                summary.timeToRecoverMs = record.facts[.timeToRecoverMs].flatMap(Int.init)
                summary.healthyAgain = record.facts[.healthyAt]
                summary.stabilisedMs = record.facts[.stabilisedMs].flatMap(Int.init)
            default:
                break
            }
            summaries[id] = summary
        }
        return summaries.values.sorted { $0.id < $1.id }
    }
}

extension AuditStore {
    /// Every incident opened since `sinceWallMicroseconds` (all when nil), oldest first.
    public func incidents(sinceWallMicroseconds since: Int64? = nil) throws -> [IncidentSummary] {
        let opened = try records(AuditQuery(sinceWallMicroseconds: since, kinds: [.incidentOpened])).compactMap(\.incident)
        guard let first = opened.first else { return [] }
        let rows = try read { db in
            try StoredRecord.fetchAll(db, sql: "SELECT * FROM record WHERE incident >= ? ORDER BY seq", arguments: [first])
        }
        return IncidentSummary.from(rows).filter { opened.contains($0.id) }
    }
}

extension AuditStore {
    /// Every record of these incidents, in the order they were written.
    public func records(ofIncidents ids: Set<Int64>) throws -> [StoredRecord] {
        try read { db in
            try StoredRecord.filter(ids.sorted().contains(Column("incident"))).order(Column("seq")).fetchAll(db)
        }
    }
}

extension AuditStore {
    /// The keys (`fingerprint startsAt status`) of the Alertmanager alerts recorded since then.
    public func alertKeys(sinceWallMicroseconds since: Int64) throws -> [String] {
        try read { db in
            try String.fetchAll(db, sql: """
                SELECT json_extract(details, '$.alert_key') FROM record
                WHERE kind = 'observation' AND wallMicroseconds >= ? AND json_extract(details, '$.alert_key') IS NOT NULL ORDER BY seq
                """, arguments: [since])
        }
    }
}
