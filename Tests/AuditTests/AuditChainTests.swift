import Foundation
import GRDB
import MedicCore
import Testing

@testable import Audit

@Suite("The audit log's hash chain")
struct AuditChainTests {
    /// A log of ten records, and a raw connection to tamper with it as an attacker with the file would.
    private func tenRecords() async throws -> (AuditStore, DatabaseQueue, String) {
        let dir = scratchDirectory()
        let store = try AuditStore(stateDirectory: dir)
        for i in 1...10 {
            try await store.append(AuditRecord(kind: .observation, target: "web.service", message: "observation \(i)", details: ["i": String(i)]))
        }
        return (store, try DatabaseQueue(path: dir + "/" + AuditStore.fileName), dir)
    }

    @Test("a record's hash is written as %02x wrote it, so logs written before still verify")
    func hexAsBefore() {
        let every = (0...255).map(UInt8.init)
        #expect(every.hexString == every.map { String(format: "%02x", $0) }.joined())
        #expect([UInt8]().hexString.isEmpty)
        #expect([UInt8](hex: every.hexString) == every)
    }

    @Test("an intact log verifies, and a person's command carries who they are")
    func intact() async throws {
        let (store, _, dir) = try await tenRecords()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try await store.append(AuditRecord(kind: .humanCommand, target: "web.service", message: "resume", actor: "uid 1000 (alice)"))
        let result = try store.verify()
        #expect(result.problem == nil && result.records == 11 && result.first == 1 && result.last == 11)
        #expect(try store.records().last?.actor == "uid 1000 (alice)")
        #expect(try store.records().first?.actor == "medicd")
    }

    @Test("an edited record is named")
    func edited() async throws {
        let (store, raw, dir) = try await tenRecords()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try await raw.write { try $0.execute(sql: "UPDATE record SET message = 'nothing happened' WHERE seq = 4") }
        #expect(try store.verify().problem?.seq == 4)
        #expect(try store.verify().problem?.description.contains("record 4 was changed") == true)
    }

    @Test("a deleted record is named, in the middle and at either end")
    func deleted() async throws {
        let (store, raw, dir) = try await tenRecords()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try await raw.write { try $0.execute(sql: "DELETE FROM record WHERE seq = 6") }
        #expect(try store.verify().problem?.description == "record 6 removed: the log goes from 5 to 7")
        try await raw.write { try $0.execute(sql: "DELETE FROM record WHERE seq = 1") }
        #expect(try store.verify().problem?.seq == 2)
    }

    @Test("an inserted record, even with the sequence numbers redone, is named")
    func inserted() async throws {
        let (store, raw, dir) = try await tenRecords()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Shift 5…10 up by one and put a forged record at 5, hashed as if it belonged.
        try await raw.write { db in
            try db.execute(sql: "UPDATE record SET seq = seq + 100 WHERE seq >= 5")
            try db.execute(sql: "UPDATE record SET seq = seq - 99 WHERE seq >= 105")
            var forged = try StoredRecord.fetchOne(db, sql: "SELECT * FROM record WHERE seq = 4")!
            forged.seq = 5
            forged.message = "an operator approved the reboot"
            forged.prevHash = try String.fetchOne(db, sql: "SELECT hash FROM record WHERE seq = 4")!
            forged.hash = AuditChain.hash(forged, previous: forged.prevHash)
            try forged.insert(db)
        }
        let problem = try #require(try store.verify().problem)
        #expect(problem.seq == 6, "\(problem)")
        #expect(problem.description.contains("does not follow record 5"))
    }

    @Test("a log of every earlier schema is migrated, chained, and verifies", arguments: ["v1: records", "v2: silences"])
    func migratedFromEarlierSchema(version: String) async throws {
        let dir = scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/" + AuditStore.fileName
        // The schema as a released medicd wrote it.
        let old = try DatabaseQueue(path: path)
        try AuditSchema.migrator().migrate(old, upTo: version)
        try await old.write { db in
            for i in 1...3 {
                try db.execute(
                    sql: "INSERT INTO record (wallMicroseconds, monotonicNanoseconds, bootID, host, kind, message, details) VALUES (?, ?, 'b', 'h', 'observation', ?, '{}')",
                    arguments: [i, i, "old \(i)"])
            }
            guard version == "v2: silences" else { return }
            // A silence still in force and one over, in the table they had outside the chain.
            let now = Timestamp.now().wallMicroseconds
            for (pattern, end) in [("web.service", now + 3_600_000_000), ("db.service", now - 1_000_000)] {
                try db.execute(
                    sql: "INSERT INTO silence (pattern, startMicroseconds, endMicroseconds, reason, author) VALUES (?, ?, ?, 'deploy', 'uid 0 (root)')",
                    arguments: [pattern, now - 60_000_000, end])
            }
        }
        try old.close()
        let store = try AuditStore(stateDirectory: dir)
        try await store.append(AuditRecord(kind: .daemon, message: "medicd started"))
        let result = try store.verify()
        let moved = version == "v2: silences" ? 1 : 0
        #expect(result.problem == nil && result.records == 4 + moved, "\(String(describing: result.problem))")
        #expect(try store.records().map(\.message).filter { !$0.contains("moved into the chain") } == ["old 1", "old 2", "old 3", "medicd started"])
        // The silence in force moved into the chain, with who set it; the one over did not.
        let silences = try store.holds(now: .now()).silences.map(\.silence)
        #expect(silences.map(\.pattern) == (moved == 1 ? ["web.service"] : []))
        #expect(silences.first.map { $0.author == "uid 0 (root)" && $0.reason == "deploy" } ?? true)
        #expect(!store.logID.isEmpty)
    }
}

@Suite("Retention")
struct AuditRetentionTests {
    @Test("pruning by age keeps the chain verifiable from its anchor, and a removal at the new start is still caught")
    func byAge() async throws {
        let dir = scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try AuditStore(stateDirectory: dir)
        let now = Timestamp.now()
        let dayAgo = Timestamp(wallMicroseconds: now.wallMicroseconds - 86_400_000_000, monotonicNanoseconds: 1)
        for i in 1...60 { try await store.append(AuditRecord(kind: .observation, time: dayAgo, message: "old \(i)")) }
        for i in 1...40 { try await store.append(AuditRecord(kind: .observation, message: "new \(i)")) }
        let result = try await store.prune(before: now.wallMicroseconds - 3_600_000_000, maxBytes: nil)
        #expect(result.pruned == 60 && result.firstKept == 61)
        let verified = try store.verify()
        #expect(verified.problem == nil && verified.anchored && verified.first == 61 && verified.records == 40)
        try await store.append(AuditRecord(kind: .daemon, message: "after pruning"))
        #expect(try store.verify().problem == nil)
        let raw = try DatabaseQueue(path: dir + "/" + AuditStore.fileName)
        try await raw.write { try $0.execute(sql: "DELETE FROM record WHERE seq = 61") }
        #expect(try store.verify().problem?.description == "record 61 removed: the log goes from 60 to 62")
    }

    @Test("pruning by size removes the oldest until the log fits, and never the newest record")
    func bySize() async throws {
        let dir = scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try AuditStore(stateDirectory: dir)
        let padding = String(repeating: "x", count: 2000)
        for i in 1...200 { try await store.append(AuditRecord(kind: .observation, message: "record \(i) \(padding)")) }
        let result = try await store.prune(before: nil, maxBytes: 100_000)
        #expect(result.pruned > 100 && result.pruned < 200, "\(result)")
        #expect(try store.verify().problem == nil)
        #expect(try store.records().last?.message.hasPrefix("record 200 ") == true)
        let all = try await store.prune(before: Timestamp.now().wallMicroseconds + 1_000_000, maxBytes: nil)
        #expect(try store.records().count == 1 && all.firstKept == 200)
        #expect(try store.verify().problem == nil)
    }
}
