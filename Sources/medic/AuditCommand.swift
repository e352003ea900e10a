import ArgumentParser
import Audit
import Foundation
import MedicCore

/// `medic audit`: prints the audit log.
struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Show the audit log: observations, incidents, step intents and results.")

    @Option(help: "State directory of medicd (the audit log is STATE/audit.sqlite).")
    var state = "/var/lib/medic"

    @Option(help: "Only records of the last DURATION (e.g. 30s, 10m, 6h).")
    var since: String?

    @Option(help: "Only records about this unit.")
    var unit: String?

    @Option(help: "Only records of this incident.")
    var incident: Int64?

    @Option(help: "Only records of these kinds (comma-separated): \(AuditRecord.Kind.allCases.map(\.rawValue).joined(separator: ", ")).")
    var kind: String?

    @Flag(help: "Print one JSON object per line.")
    var json = false

    func validate() throws {
        if let since, DurationText.parse(since) == nil {
            throw ValidationError("--since '\(since)' is not a duration; write e.g. 30s, 10m, 6h, 2d")
        }
        if let kind {
            for name in kind.split(separator: ",") where AuditRecord.Kind(rawValue: String(name)) == nil {
                throw ValidationError("--kind '\(name)' is not a record kind; use \(AuditRecord.Kind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }
    }

    func run() throws {
        var query = AuditQuery(unit: unit, incident: incident)
        if let since, let duration = DurationText.parse(since) {
            query.sinceWallMicroseconds = Timestamp.now().wallMicroseconds - duration.milliseconds * 1000
        }
        query.kinds = kind.map { $0.split(separator: ",").compactMap { AuditRecord.Kind(rawValue: String($0)) } }
        let store: AuditStore
        do {
            store = try AuditStore(stateDirectory: state, readOnly: true)
        } catch {
            FileHandle.standardError.write(Data("medic: \(error)\n".utf8))
            throw ExitCode(1)
        }
        let records = try store.records(query)
        if json {
            for record in records { print(AuditJSON.line(record)) }
        } else {
            print(AuditTable.render(records))
        }
    }
}

/// One JSON object per record, with `details` as an object.
enum AuditJSON {
    struct Line: Encodable {
        var seq: Int64
        var time: String
        var monotonic_ns: Int64
        var boot_id: String
        var host: String
        var kind: String
        var target: String?
        var incident: Int64?
        var playbook: String?
        var playbook_hash: String?
        var step: String?
        var message: String
        var details: [String: String]
    }

    static func line(_ record: StoredRecord) -> String {
        let line = Line(
            seq: record.seq ?? 0, time: record.time, monotonic_ns: record.monotonicNanoseconds, boot_id: record.bootID,
            host: record.host, kind: record.kind, target: record.target, incident: record.incident,
            playbook: record.playbook, playbook_hash: record.playbookHash, step: record.step,
            message: record.message, details: record.facts)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(line)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}

/// The human-readable table.
enum AuditTable {
    static func render(_ records: [StoredRecord]) -> String {
        let header = ["SEQ", "TIME (UTC)", "KIND", "TARGET", "INCIDENT", "STEP", "MESSAGE"]
        let rows = records.map { r in
            [String(r.seq ?? 0), r.time, r.kind, r.target ?? "-", r.incident.map(String.init) ?? "-", r.step ?? "-", r.message]
        }
        return Table(header: header, rows: rows).render() + "\n\(records.count) records"
    }
}

/// A plain text table: columns padded to their widest cell, the last one left free.
struct Table {
    let header: [String]
    let rows: [[String]]

    func render() -> String {
        let all = [header] + rows
        let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        return all.map { row in
            row.indices.map { column in
                column == row.count - 1 ? row[column] : row[column].padding(toLength: widths[column], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}
