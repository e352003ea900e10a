import Crypto
import Foundation
import GRDB

/// The audit log's tamper evidence: each record carries the SHA-256 of its content and of the
/// record before it (`prevHash`), so a record changed, removed or inserted anywhere breaks the
/// chain from that point. When old records are pruned, the first one kept is anchored: its
/// sequence number and `prevHash` are kept in `chain_anchor`, so the rest still verifies and a
/// removal at the start is caught too.
public enum AuditChain {
    /// The hash of a stored record, given the hash of the record before it.
    static func hash(_ record: StoredRecord, previous: String) -> String {
        let fields: [String] = [
            String(record.seq ?? 0), String(record.wallMicroseconds), String(record.monotonicNanoseconds), record.bootID, record.host,
            record.actor, record.kind, record.target ?? "", record.incident.map(String.init) ?? "", record.playbook ?? "",
            record.playbookHash ?? "", record.step ?? "", record.message, record.details, previous,
        ]
        // Each field with its length first, so no two different records read the same.
        var bytes: [UInt8] = []
        for field in fields {
            let utf8 = Array(field.utf8)
            bytes += Array("\(utf8.count):".utf8) + utf8
        }
        return SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
    }

    /// The hash the next record follows: the last record's, or the anchor's for an empty log.
    static func lastHash(_ db: Database) throws -> String {
        if let last = try String.fetchOne(db, sql: "SELECT hash FROM record ORDER BY seq DESC LIMIT 1") { return last }
        return try anchor(db)?.prevHash ?? ""
    }

    /// Where the chain starts after pruning, if it was pruned.
    static func anchor(_ db: Database) throws -> (seq: Int64, prevHash: String)? {
        guard let row = try Row.fetchOne(db, sql: "SELECT seq, prevHash FROM chain_anchor WHERE id = 1") else { return nil }
        return (row["seq"], row["prevHash"])
    }

    /// The first problem in the chain, or nil if it is intact.
    public struct Problem: Sendable, Equatable, CustomStringConvertible {
        /// The record where the chain breaks.
        public var seq: Int64
        public var description: String
    }

    /// What a walk of the chain found.
    public struct Verification: Sendable, Equatable {
        public var records: Int
        public var first: Int64?
        public var last: Int64?
        public var anchored: Bool
        public var problem: Problem?
    }

    /// Walks the whole log in order, recomputing every hash.
    static func verify(_ db: Database) throws -> Verification {
        let anchor = try anchor(db)
        var expectedPrevious = anchor?.prevHash ?? ""
        var expectedSeq = anchor?.seq ?? 1
        var result = Verification(records: 0, anchored: anchor != nil)
        let cursor = try StoredRecord.order(Column("seq")).fetchCursor(db)
        while let record = try cursor.next() {
            let seq = record.seq ?? 0
            result.records += 1
            if result.first == nil { result.first = seq }
            result.last = seq
            guard result.problem == nil else { continue }
            if seq != expectedSeq {
                result.problem = seq > expectedSeq
                    ? Problem(seq: seq, description: "record \(expectedSeq)\(seq - expectedSeq > 1 ? "–\(seq - 1)" : "") removed: the log goes from \(expectedSeq - 1) to \(seq)")
                    : Problem(seq: seq, description: "record \(seq) out of order (expected \(expectedSeq))")
            } else if record.prevHash != expectedPrevious {
                result.problem = Problem(seq: seq, description: "record \(seq) does not follow record \(seq - 1): a record before it was removed, inserted or replaced")
            } else if hash(record, previous: record.prevHash) != record.hash {
                result.problem = Problem(seq: seq, description: "record \(seq) was changed after it was written (its content no longer matches its hash)")
            }
            expectedPrevious = record.hash
            expectedSeq = seq + 1
        }
        return result
    }
}
