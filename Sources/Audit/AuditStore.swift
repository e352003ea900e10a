import Foundation
import GRDB
import MedicCore
import Posix

/// The audit log: an append-only SQLite database (`STATE/audit.sqlite`) through GRDB.
///
/// Durability: WAL journal with `synchronous=FULL`, so every committed transaction is fsynced
/// to the WAL before `append` returns; a record acknowledged survives `kill -9` of the daemon and
/// a power cut. Readers (the CLI) use their own connections and never block the writer.
public final class AuditStore: AuditSink {
    /// The database file's name inside the state directory.
    public static let fileName = "audit.sqlite"

    private let pool: DatabasePool
    let host: String
    let bootID: String
    let sealer: RecordSealer
    /// The path of the database file.
    public let path: String
    /// The log's identity, carried by its witnesses in the journal (`MEDIC_LOG=`).
    public let logID: String

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
            // Appends touch the last pages of a table and its indexes; SQLite's default cache
            // (2 MiB a connection) only held pages written once, in medicd's resident memory.
            try db.execute(sql: "PRAGMA cache_size = -512")
        }
        host = ProcessInfo.processInfo.hostName
        bootID = (WholeFile.text("/proc/sys/kernel/random/boot_id") ?? "")
            .trimmingCharacters(in: .whitespacesAndNewlines)
        sealer = RecordSealer(stateDirectory: stateDirectory)
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            if !readOnly { try AuditSchema.migrator(host: host, bootID: bootID).migrate(pool) }
            // A log not yet migrated to v4 (read-only, before medicd's upgrade) has none.
            logID = ((try? pool.read { db in try String.fetchOne(db, sql: "SELECT log FROM log_identity WHERE id = 1") }) ?? nil) ?? ""
        } catch let error as DatabaseError {
            throw AuditError.unreadable(path, error.message ?? "\(error)", code: error.resultCode.rawValue)
        }
    }

    public func append(_ records: [AuditRecord]) async throws -> [Int64] {
        try await appendChained(records).map(\.seq)
    }

    /// Appends records durably and returns each one's sequence number and hash (what its
    /// journal witness carries).
    public func appendChained(_ records: [AuditRecord]) async throws -> [(seq: Int64, hash: String)] {
        let host = self.host, bootID = self.bootID, sealer = self.sealer
        return try await pool.write { db in
            try AuditChain.append(records, host: host, bootID: bootID, sealer: sealer, db: db).map { ($0.seq ?? 0, $0.hash) }
        }
    }

    /// SQLite's journal mode and synchronous level as the store's connections see them
    /// (`wal` and 2, FULL).
    public func durability() throws -> (journalMode: String, synchronous: Int) {
        try pool.read { db in
            (try String.fetchOne(db, sql: "PRAGMA journal_mode") ?? "", try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1)
        }
    }

    /// Gives back the memory SQLite keeps between writes: the reader connections are closed
    /// (opened again at the next read) and the writer's page cache is emptied (the next append
    /// reads its few pages again, from the operating system's page cache); the writer's prepared
    /// statements stay. With 1,000 units watched, some 0.6 MiB after start-up's records.
    /// Waits for the writer's queue, never blocking the caller's thread.
    public func releaseMemory() async {
        pool.invalidateReadOnlyConnections()
        _ = try? await pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA shrink_memory") }
    }

    /// Reads in one transaction.
    func read<T>(_ body: (Database) throws -> T) throws -> T { try pool.read(body) }

    /// Writes in one transaction, durably.
    func write<T: Sendable>(_ body: @Sendable @escaping (Database) throws -> T) async throws -> T { try await pool.write(body) }

    /// Walks the hash chain over the whole log, and with `key` checks its seals (see `AuditChain`).
    public func verify(key: SealingKey? = nil) throws -> AuditChain.Verification {
        try pool.read { db in try AuditChain.verify(db, key: key) }
    }

    /// Sets up forward-secure sealing for the log in `stateDirectory` (`medic audit
    /// setup-keys`): writes the key medicd seals with from now on, and returns the verification
    /// key to keep offline. Refuses to replace a key unless `replace`.
    public static func setUpSealing(stateDirectory: String, interval: Duration, replace: Bool) throws -> SealingKey {
        let key = SealingKey.generate(interval: max(1, interval.components.seconds), now: Timestamp.now().wallMicroseconds / 1_000_000)
        try RecordSealer.install(key, stateDirectory: stateDirectory, replace: replace)
        return key
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
