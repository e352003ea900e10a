import GRDB

/// The audit log's schema, as migrations. A migration, once released, is never edited: a new
/// schema is a new migration, and tests migrate databases of every earlier version.
enum AuditSchema {
    static var migrator: DatabaseMigrator {
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
            let records = try StoredRecord.order(Column("seq")).fetchAll(db)
            for var record in records {
                record.prevHash = previous
                record.hash = AuditChain.hash(record, previous: previous)
                try db.execute(sql: "UPDATE record SET prevHash = ?, hash = ? WHERE seq = ?", arguments: [record.prevHash, record.hash, record.seq])
                previous = record.hash
            }
        }
        return migrator
    }
}
