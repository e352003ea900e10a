import Foundation
import GRDB
import MedicCore

/// The audit log's schema, as migrations. A migration, once released, is never edited: a new
/// schema is a new migration, and tests migrate databases of every earlier version.
enum AuditSchema {
    /// The migrator; records that migrations add to the chain are written as `host` on boot `bootID`.
    static func migrator(host: String = "", bootID: String = "") -> DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: records") { db in
            try db.create(table: "record") { t in
                t.autoIncrementedPrimaryKey("seq")
                t.column("wallMicroseconds", .integer).notNull()
                t.column("monotonicNanoseconds", .integer).notNull()
                t.column("bootID", .text).notNull()
                t.column("host", .text).notNull()
                t.column("kind", .text).notNull()
                t.column("target", .text)
                t.column("incident", .integer)
                t.column("playbook", .text)
                t.column("playbookHash", .text)
                t.column("step", .text)
                t.column("message", .text).notNull()
                t.column("details", .text).notNull()
            }
            try db.create(index: "record_by_target", on: "record", columns: ["target", "seq"])
            try db.create(index: "record_by_incident", on: "record", columns: ["incident", "seq"])
            try db.create(index: "record_by_time", on: "record", columns: ["wallMicroseconds"])
        }
        migrator.registerMigration("v2: silences") { db in
            try db.create(table: "silence") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("pattern", .text).notNull()
                t.column("startMicroseconds", .integer).notNull()
                t.column("endMicroseconds", .integer).notNull()
                t.column("reason", .text).notNull()
                t.column("author", .text).notNull()
            }
        }
        migrator.registerMigration("v3: actor and hash chain") { db in
            try db.alter(table: "record") { t in
                t.add(column: "actor", .text).notNull().defaults(to: "medicd")
                t.add(column: "prevHash", .text).notNull().defaults(to: "")
                t.add(column: "hash", .text).notNull().defaults(to: "")
            }
            try db.create(table: "chain_anchor") { t in
                t.column("id", .integer).primaryKey()
                t.column("seq", .integer).notNull()
                t.column("prevHash", .text).notNull()
            }
            // Records written before the chain existed are chained now, in order.
            var previous = ""
            // (The seal column comes in v4; before it, records have none.)
            let records = try StoredRecord.fetchAll(db, sql: "SELECT *, '' AS seal FROM record ORDER BY seq")
            for var record in records {
                record.prevHash = previous
                record.hash = AuditChain.hash(record, previous: previous)
                try db.execute(sql: "UPDATE record SET prevHash = ?, hash = ? WHERE seq = ?", arguments: [record.prevHash, record.hash, record.seq])
                previous = record.hash
            }
        }
        migrator.registerMigration("v4: seals, log identity, silences in the chain") { db in
            try db.alter(table: "record") { t in
                t.add(column: "seal", .text).notNull().defaults(to: "")
            }
            // The identity its journal witnesses carry (MEDIC_LOG=), so the witness of one log is
            // never compared with another.
            try db.create(table: "log_identity") { t in
                t.column("id", .integer).primaryKey()
                t.column("log", .text).notNull()
            }
            try db.execute(sql: "INSERT INTO log_identity (id, log) VALUES (1, ?)", arguments: [UUID().uuidString.lowercased()])
            // Silences lived in a table of their own, outside the chain: those not yet over move
            // into it, and the table goes.
            let now = Timestamp.now()
            let rows = try Row.fetchAll(db, sql: "SELECT * FROM silence WHERE endMicroseconds > ? ORDER BY id", arguments: [now.wallMicroseconds])
            let carried = rows.map { row in
                let silence = Silence(pattern: row["pattern"], start: now.movedTo(wall: row["startMicroseconds"]), end: now.movedTo(wall: row["endMicroseconds"]),
                                      reason: row["reason"], author: row["author"])
                return AuditRecord(kind: .silence, time: now, target: silence.pattern,
                                   message: "silence on \(silence.pattern) until \(silence.end.iso8601) by \(silence.author) moved into the chain (schema v4)",
                                   details: silence.details)
            }
            _ = try AuditChain.append(carried, host: host, bootID: bootID, sealer: RecordSealer?.none, db: db)
            try db.drop(table: "silence")
        }
        return migrator
    }
}
