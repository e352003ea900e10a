import MedicCore
import Systemd

/// An `AuditSink` that writes to the store and then mirrors each record to journald, with a
/// MESSAGE_ID per kind and MEDIC_* fields, so a fleet's existing log shipping carries the audit
/// trail too. The store is the record of truth: a record is acknowledged once it is durable
/// there; the journal copy is best effort. Each copy is also a witness of the log
/// (`MEDIC_LOG`, `MEDIC_SEQ`, `MEDIC_HASH`): `AuditWitness` finds a log cut short or rewritten
/// by comparing it with them.
public struct JournalMirror: AuditSink {
    private let store: AuditStore

    public init(store: AuditStore) { self.store = store }

    /// Stable MESSAGE_IDs, one per kind (`journalctl MESSAGE_ID=…` finds them).
    public static let messageIDs: [AuditRecord.Kind: String] = [
        .observation: "7ce46e085d1d4db784940d787c6c4a83",
        .incidentOpened: "1c17567d607b4601b0aab1e03013bfd9",
        .incidentClosed: "336c9ab8992042c6a3f63e0aa9366df0",
        .decision: "2fd0cdcb5c7b42e5ac82aa47699794f4",
        .stepIntent: "c52616eaf2204d4fab2726876ecf5952",
        .stepResult: "60639f707e7c402889c5c8cf2595ed8b",
        .playbookLoaded: "c2e1e53d269e457ab5fa9799137c5451",
        .playbookRefused: "5f52c54c4bae44d4a72d7beb02131f63",
        .daemon: "79c02e9434324d2d97b713f93e4fa788",
        .guardStopped: "4a5b0f0e8e1f4d0c9b7a4f3e2d1c0b9a",
        .escalation: "d3c2b1a09f8e4d7c8b6a5f4e3d2c1b0a",
        .silence: "0f1e2d3c4b5a49687766554433221100",
        .humanCommand: "8899aabbccdd4eff8011223344556677",
    ]

    public func append(_ records: [AuditRecord]) async throws -> [Int64] {
        let written: [(seq: Int64, hash: String)]
        do {
            written = try await store.appendChained(records)
        } catch {
            // Not in the audit log: the journal gets what can be kept, marked as such.
            for record in records { mirror(record, seq: "unwritten", hash: nil, priority: .error) }
            throw error
        }
        for (record, row) in zip(records, written) {
            let failed = record.kind == .playbookRefused || record.details[.result] == "failed" || record.details[.outcome] == "failed"
            mirror(record, seq: String(row.seq), hash: row.hash, priority: failed ? .warning : .info)
        }
        return written.map(\.seq)
    }

    private func mirror(_ record: AuditRecord, seq: String, hash: String?, priority: JournalPriority) {
        var fields: [(String, String)] = [
            ("MESSAGE_ID", Self.messageIDs[record.kind] ?? ""),
            ("MEDIC_SEQ", seq),
            ("MEDIC_KIND", record.kind.rawValue),
            ("MEDIC_LOG", store.logID),
        ]
        if let hash { fields.append(("MEDIC_HASH", hash)) }
        if let target = record.target { fields.append(("MEDIC_TARGET", target)) }
        if let incident = record.incident { fields.append(("MEDIC_INCIDENT", String(incident))) }
        if let playbook = record.playbook { fields.append(("MEDIC_PLAYBOOK", playbook)) }
        if let step = record.step { fields.append(("MEDIC_STEP", step)) }
        JournalWriter.post(message: "audit \(seq) \(record.kind.rawValue): \(record.message)", priority: priority, fields: fields)
    }
}
