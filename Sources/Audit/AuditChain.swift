import Crypto
import Foundation
import GRDB
import MedicCore

/// The audit log's tamper evidence: each record carries the SHA-256 of its content and of the
/// record before it (`prevHash`), so a record changed, removed or inserted anywhere breaks the
/// chain from that point. When old records are pruned, the first one kept is anchored: its
/// sequence number and `prevHash` are kept in `chain_anchor`, so the rest still verifies and a
/// removal at the start is caught too. With a sealing key set up, each record is also sealed
/// (see `SealingKey`), so a chain recomputed from an edited record onward fails with the key.
public enum AuditChain {
    /// The hash of a stored record, given the hash of the record before it.
    public static func hash(_ record: StoredRecord, previous: String) -> String {
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
        return SHA256.hash(data: bytes).hexString
    }

    /// Appends `records` to the chain inside a write transaction: each numbered, hashed onto
    /// the one before, sealed when a key is set, and inserted. Returns them as stored.
    static func append(_ records: [AuditRecord], host: String, bootID: String, sealer: RecordSealer?, db: Database) throws -> [StoredRecord] {
        var previous = try lastHash(db)
        // The next sequence number, as AUTOINCREMENT will give it, so that each record is
        // hashed before it is inserted.
        var seq = (try Int64.fetchOne(db, sql: "SELECT seq FROM sqlite_sequence WHERE name = 'record'") ?? 0) + 1
        var rows = records.map { record in
            var row = StoredRecord(record, host: host, bootID: bootID)
            row.seq = seq
            row.prevHash = previous
            row.hash = hash(row, previous: previous)
            previous = row.hash
            seq += 1
            return row
        }
        let seals = sealer?.seal(rows.map { ($0.hash, $0.wallMicroseconds) }) ?? []
        for index in rows.indices {
            if index < seals.count { rows[index].seal = seals[index] }
            try rows[index].insert(db)
        }
        return rows
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
        /// With a verification key: the records whose seals it proved, and the epochs they span.
        public var sealed = 0
        public var epochs: ClosedRange<Int64>?
        /// With a verification key: records written before sealing began (not provable by it).
        public var unsealed = 0
    }

    /// Walks the whole log in order, recomputing every hash, and with `key` checking every seal.
    static func verify(_ db: Database, key: SealingKey? = nil) throws -> Verification {
        let anchor = try anchor(db)
        var expectedPrevious = anchor?.prevHash ?? ""
        var expectedSeq = anchor?.seq ?? 1
        var result = Verification(records: 0, anchored: anchor != nil)
        var derived = key
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
            if result.problem == nil, let key {
                result.problem = checkSeal(record, key: key, into: &result, derived: &derived)
            }
            expectedPrevious = record.hash
            expectedSeq = seq + 1
        }
        return result
    }

    /// The seal check of one record: sealed with the key of its epoch, epochs never going back,
    /// no record unsealed once sealing began, and none sealed epochs after the time it claims
    /// (as a record re-sealed later with a newer key would be).
    private static func checkSeal(_ record: StoredRecord, key: SealingKey, into result: inout Verification, derived: inout SealingKey?) -> Problem? {
        let seq = record.seq ?? 0
        guard !record.seal.isEmpty else {
            if result.sealed == 0 {
                result.unsealed += 1
                return nil
            }
            return Problem(seq: seq, description: "record \(seq) is not sealed, though the records before it were: the sealing key was removed, or the record was written without medicd")
        }
        guard let colon = record.seal.firstIndex(of: ":"), let epoch = Int64(record.seal[..<colon]), epoch >= 0 else {
            return Problem(seq: seq, description: "record \(seq) has a malformed seal '\(record.seal)'")
        }
        if let last = result.epochs?.upperBound, epoch < last {
            return Problem(seq: seq, description: "record \(seq) is sealed in epoch \(epoch), after a record sealed in epoch \(last): records were re-sealed or reordered")
        }
        let claimed = key.epoch(atWall: record.wallMicroseconds)
        if epoch > claimed + 1 {
            return Problem(seq: seq, description: "record \(seq) says it was written at \(record.time) (epoch \(claimed)) but was sealed in epoch \(epoch): it was re-sealed later, as a forged record would be")
        }
        let epochKey = (derived ?? key).evolved(to: epoch)
        derived = epochKey
        guard epochKey.seal(record.hash) == record.seal else {
            return Problem(seq: seq, description: "record \(seq) does not match its seal (epoch \(epoch)): it was changed, or the chain recomputed from here, after it was sealed")
        }
        result.sealed += 1
        result.epochs = (result.epochs?.lowerBound ?? epoch)...epoch
        return nil
    }
}
