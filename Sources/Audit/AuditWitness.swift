import GRDB
import MedicCore
import Systemd

/// The journal as a witness of the audit log. Every record medicd writes is mirrored to the
/// journal with its log's identity, sequence number and hash (`JournalMirror`); a log whose
/// tail was cut off, or whose records were recomputed after an edit, no longer matches what the
/// journal saw. journald's own sealing (`Seal=yes`, `journalctl --setup-keys`) and forwarding
/// to another host protect the witness in turn.
public enum AuditWitness {
    /// What comparing the log with its witnesses found.
    public struct Report: Sendable, Equatable {
        /// Witnesses of this log found in the journal.
        public var witnessed: Int
        /// The newest record the journal witnessed.
        public var newest: Int64?
        /// The first record missing from the log, or different from its witness.
        public var problem: AuditChain.Problem?
    }

    /// Compares the log in `store` with the witnesses `journal` holds of it.
    public static func compare(_ store: AuditStore, journal: JournalReader) throws -> Report {
        let entries = try journal.entries(matching: ["MEDIC_LOG=\(store.logID)"], fields: ["MEDIC_SEQ", "MEDIC_HASH"])
        var witnesses: [Int64: (hash: String, time: UInt64)] = [:]
        for entry in entries {
            guard let seq = entry.fields["MEDIC_SEQ"].flatMap(Int64.init), let hash = entry.fields["MEDIC_HASH"] else { continue }
            witnesses[seq] = (hash, entry.realtimeUSec)
        }
        var report = Report(witnessed: witnesses.count, newest: witnesses.keys.max())
        guard !witnesses.isEmpty else { return report }
        let when = { (seq: Int64) in Timestamp(wallMicroseconds: Int64(witnesses[seq]?.time ?? 0), monotonicNanoseconds: 0).iso8601 }
        report.problem = try store.read { db -> AuditChain.Problem? in
            let first = try Int64.fetchOne(db, sql: "SELECT MIN(seq) FROM record") ?? 1
            let last = try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM record") ?? 0
            let cursor = try Row.fetchCursor(db, sql: "SELECT seq, hash FROM record ORDER BY seq")
            var held: [Int64: String] = [:]
            while let row = try cursor.next() {
                let seq: Int64 = row["seq"]
                if witnesses[seq] != nil { held[seq] = row["hash"] }
            }
            // Records pruned by retention (before the first kept) are not missing.
            for seq in witnesses.keys.sorted() where seq >= first {
                guard let hash = held[seq] else {
                    return seq > last
                        ? AuditChain.Problem(seq: seq, description: "the log ends at record \(last), but the journal witnessed record \(seq) (written \(when(seq))): records \(last + 1)–\(report.newest ?? seq) were removed from its end")
                        : AuditChain.Problem(seq: seq, description: "record \(seq), witnessed by the journal (written \(when(seq))), is missing from the log")
                }
                if hash != witnesses[seq]?.hash {
                    return AuditChain.Problem(seq: seq, description: "record \(seq) differs from its witness in the journal (written \(when(seq))): it was changed, or the chain recomputed, after it was written")
                }
            }
            return nil
        }
        return report
    }
}
