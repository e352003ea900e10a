import Foundation
import GRDB
import MedicCore

/// The audit log: an append-only SQLite database (`STATE/audit.sqlite`) through GRDB.
///
/// Durability: WAL journal with `synchronous=FULL`, so every committed transaction is fsynced
/// to the WAL before `append` returns; a record acknowledged survives `kill -9` of the daemon and
/// a power cut. Readers (the CLI) use their own connections and never block the writer.
public final class AuditStore: AuditSink {
    /// The database file's name inside the state directory.
    public static let fileName = "audit.sqlite"

    private let pool: DatabasePool
    private let host: String
    private let bootID: String
    /// The path of the database file.
    public let path: String

    /// Opens (creating if needed) the audit log in `stateDirectory`, migrating it to the current
    /// schema. With `readOnly`, the file must exist and nothing is written.
    public init(stateDirectory: String, readOnly: Bool = false) throws {
        path = stateDirectory + "/" + Self.fileName
        let fm = FileManager.default
        if readOnly {
            guard fm.fileExists(atPath: path) else { throw AuditError.missing(path) }
        } else {
            try fm.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
        var configuration = Configuration()
        configuration.readonly = readOnly
        configuration.busyMode = .timeout(5)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            if !readOnly { try AuditSchema.migrator.migrate(pool) }
        } catch let error as DatabaseError {
            throw AuditError.unreadable(path, error.message ?? "\(error)", code: error.resultCode.rawValue)
        }
        host = ProcessInfo.processInfo.hostName
        bootID = ((try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8)) ?? "")
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    public func append(_ records: [AuditRecord]) async throws -> [Int64] {
        let host = self.host, bootID = self.bootID
        return try await pool.write { db in
            var previous = try AuditChain.lastHash(db)
            // The next sequence number, as AUTOINCREMENT will give it, so that each record is
            // hashed before it is inserted.
            var seq = (try Int64.fetchOne(db, sql: "SELECT seq FROM sqlite_sequence WHERE name = 'record'") ?? 0) + 1
            return try records.map { record in
                var row = StoredRecord(record, host: host, bootID: bootID)
                row.seq = seq
                row.prevHash = previous
                row.hash = AuditChain.hash(row, previous: previous)
                try row.insert(db)
                previous = row.hash
                seq += 1
                return row.seq!
            }
        }
    }

    /// SQLite's journal mode and synchronous level as the store's connections see them
    /// (`wal` and 2, FULL).
    public func durability() throws -> (journalMode: String, synchronous: Int) {
        try pool.read { db in
            (try String.fetchOne(db, sql: "PRAGMA journal_mode") ?? "", try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1)
        }
    }

    /// Reads in one transaction.
    func read<T>(_ body: (Database) throws -> T) throws -> T { try pool.read(body) }

    /// Writes in one transaction, durably.
    func write<T: Sendable>(_ body: @Sendable @escaping (Database) throws -> T) async throws -> T { try await pool.write(body) }

    /// Walks the hash chain over the whole log (see `AuditChain`).
    public func verify() throws -> AuditChain.Verification {
        try pool.read { db in try AuditChain.verify(db) }
    }

    /// Records matching `query`, oldest first.
    public func records(_ query: AuditQuery = AuditQuery()) throws -> [StoredRecord] {
        try pool.read { db in try query.request().fetchAll(db) }
    }
}

/// What went wrong opening the audit log.
public enum AuditError: Error, CustomStringConvertible {
    case missing(String)
    case unreadable(String, String, code: Int32)

    public var description: String {
        switch self {
        case .missing(let path): "no audit log at \(path) (has medicd run with this --state directory?)"
        case .unreadable(let path, let message, let code):
            "cannot open the audit log at \(path): \(message) (SQLite error \(code)); restore it from a backup, "
                + "or move it aside and medicd starts a new log"
        }
    }
}
