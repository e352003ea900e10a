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
        return migrator
    }
}
