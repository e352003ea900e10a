import Foundation
import GRDB
import MedicCore

/// A record as stored: the engine's `AuditRecord` plus its sequence number, host and boot.
public struct StoredRecord: Codable, Sendable, Equatable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "record"

    /// Position in the log, from 1, without gaps.
    public var seq: Int64?
    public var wallMicroseconds: Int64
    public var monotonicNanoseconds: Int64
    public var bootID: String
    public var host: String
    /// Who did it: `medicd`, or a person through the CLI (`uid 1000 (alice)`).
    public var actor: String
    public var kind: String
    public var target: String?
    public var incident: Int64?
    public var playbook: String?
    public var playbookHash: String?
    public var step: String?
    public var message: String
    /// A JSON object of string facts.
    public var details: String
    /// The hash of the record before it, and of this record (see `AuditChain`).
    public var prevHash: String
    public var hash: String
    /// The forward-secure seal of `hash` (`EPOCH:HMAC`), or "" when no sealing key was set up.
    public var seal: String

    init(_ record: AuditRecord, host: String, bootID: String) {
        wallMicroseconds = record.time.wallMicroseconds
        monotonicNanoseconds = record.time.monotonicNanoseconds
        self.bootID = bootID
        self.host = host
        actor = record.actor
        kind = record.kind.rawValue
        target = record.target
        incident = record.incident
        playbook = record.playbook
        playbookHash = record.playbookHash
        step = record.step
        message = record.message
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        details = (try? encoder.encode(record.details)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        prevHash = ""
        hash = ""
        seal = ""
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) {
        seq = inserted.rowID
    }

    /// The wall-clock time, as ISO 8601 UTC with milliseconds.
    public var time: String {
        Timestamp(wallMicroseconds: wallMicroseconds, monotonicNanoseconds: monotonicNanoseconds).iso8601
    }

    /// The details, decoded.
    public var facts: [String: String] {
        (try? JSONDecoder().decode([String: String].self, from: Data(details.utf8))) ?? [:]
    }

    /// A step intent that dry-run only recorded: nothing was done. (Records written before the
    /// `dry_run` fact existed say so only in their message.)
    var wasDryRun: Bool {
        facts[.dryRun] == "true" || (kind == AuditRecord.Kind.stepIntent.rawValue && message.hasPrefix("dry-run: would"))
    }
}

/// A filter over the audit log.
public struct AuditQuery: Sendable {
    /// Only records at or after this wall-clock time (microseconds since the epoch).
    public var sinceWallMicroseconds: Int64?
    /// Only records about this unit.
    public var unit: String?
    /// Only records of these kinds.
    public var kinds: [AuditRecord.Kind]?
    /// Only records of this incident.
    public var incident: Int64?
    /// Only records after this sequence number (to follow the log).
    public var afterSeq: Int64?
    /// Only records before this wall-clock time (microseconds since the epoch).
    public var untilWallMicroseconds: Int64?

    public init(
        sinceWallMicroseconds: Int64? = nil, unit: String? = nil, kinds: [AuditRecord.Kind]? = nil,
        incident: Int64? = nil, afterSeq: Int64? = nil
    ) {
        self.sinceWallMicroseconds = sinceWallMicroseconds
        self.unit = unit
        self.kinds = kinds
        self.incident = incident
        self.afterSeq = afterSeq
    }

    func request() -> QueryInterfaceRequest<StoredRecord> {
        var request = StoredRecord.all()
        if let sinceWallMicroseconds { request = request.filter(Column("wallMicroseconds") >= sinceWallMicroseconds) }
        if let unit { request = request.filter(Column("target") == unit) }
        if let kinds { request = request.filter(kinds.map(\.rawValue).contains(Column("kind"))) }
        if let incident { request = request.filter(Column("incident") == incident) }
        if let afterSeq { request = request.filter(Column("seq") > afterSeq) }
        if let untilWallMicroseconds { request = request.filter(Column("wallMicroseconds") < untilWallMicroseconds) }
        return request.order(Column("seq"))
    }
}
