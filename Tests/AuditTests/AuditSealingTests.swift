import Foundation
import GRDB
import MedicCore
import Testing

@testable import Audit

/// Forward-secure sealing: `medic audit setup-keys`, medicd's evolving key, `verify --key`.
@Suite("Forward-secure sealing")
struct AuditSealingTests {
    /// A log sealed with 1 s epochs: five records in epoch 0, five three epochs later (their
    /// times set ahead, so no test sleeps). Returns the store, a raw connection and the
    /// verification key.
    private func sealedLog() async throws -> (AuditStore, DatabaseQueue, SealingKey, String) {
        let dir = scratchDirectory()
        let store = try AuditStore(stateDirectory: dir)
        let key = try AuditStore.setUpSealing(stateDirectory: dir, interval: .seconds(1), replace: false)
        let start = Timestamp.now()
        for i in 1...5 { try await store.append(AuditRecord(kind: .observation, time: start, message: "observation \(i)")) }
        for i in 6...10 { try await store.append(AuditRecord(kind: .observation, time: start.adding(.seconds(3)), message: "observation \(i)")) }
        return (store, try DatabaseQueue(path: dir + "/" + AuditStore.fileName), key, dir)
    }

    /// Recomputes the chain from `seq` onward, as someone with the file but no key would after
    /// editing a record; with `resealWith`, also re-seals with that (current) key.
    private func recomputeChain(_ raw: DatabaseQueue, from seq: Int64, resealWith key: SealingKey? = nil) async throws {
        try await raw.write { db in
            var previous = try String.fetchOne(db, sql: "SELECT hash FROM record WHERE seq = ?", arguments: [seq - 1]) ?? ""
            for var record in try StoredRecord.filter(Column("seq") >= seq).order(Column("seq")).fetchAll(db) {
                record.prevHash = previous
                record.hash = AuditChain.hash(record, previous: previous)
                if let key { record.seal = key.seal(record.hash) }
                try record.update(db)
                previous = record.hash
            }
        }
    }

    @Test("every record is sealed, and the key proves them all")
    func sealedAndProved() async throws {
        let (store, _, key, dir) = try await sealedLog()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try store.records().allSatisfy { !$0.seal.isEmpty })
        let result = try store.verify(key: key)
        #expect(result.problem == nil && result.sealed == 10 && result.unsealed == 0, "\(result)")
        #expect(result.epochs == 0...3)
        // The wrong key proves nothing.
        let wrong = SealingKey.generate(interval: 1, now: key.start)
        #expect(try store.verify(key: wrong).problem?.seq == 1)
    }

    @Test("medicd keeps only the current epoch's key: the one before it is gone from disk")
    func keyEvolvesAndForgets() async throws {
        let (_, _, key, dir) = try await sealedLog()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let held = try RecordSealer.read(dir + "/" + RecordSealer.fileName)
        #expect(held.epoch == 3)
        #expect(held.key == key.evolved(to: 3).key)
        #expect(held.key != key.key && held.key != key.evolved(to: 2).key)
        #expect(try FileManager.default.attributesOfItem(atPath: dir + "/seal.key")[.posixPermissions] as? Int == 0o600)
    }

    @Test("a chain recomputed after an edit passes without the key and fails with it, even re-sealed with the current key")
    func recomputedChain() async throws {
        let (store, raw, key, dir) = try await sealedLog()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try await raw.write { try $0.execute(sql: "UPDATE record SET message = 'nothing happened' WHERE seq = 3") }
        #expect(try store.verify().problem?.seq == 3)
        try await recomputeChain(raw, from: 3)
        #expect(try store.verify().problem == nil, "without the key, a recomputed chain verifies")
        let problem = try #require(try store.verify(key: key).problem)
        #expect(problem.seq == 3 && problem.description.contains("does not match its seal"), "\(problem)")

        // Someone root now holds the current key (epoch 3): re-sealing with it is caught too.
        let current = try RecordSealer.read(dir + "/" + RecordSealer.fileName)
        try await recomputeChain(raw, from: 3, resealWith: current)
        let resealed = try #require(try store.verify(key: key).problem)
        #expect(resealed.seq == 3 && resealed.description.contains("re-sealed later"), "\(resealed)")
    }

    @Test("records before sealing began are counted apart; an unsealed record after sealed ones is named")
    func unsealedRecords() async throws {
        let dir = scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try AuditStore(stateDirectory: dir)
        for i in 1...3 { try await store.append(AuditRecord(kind: .observation, message: "before \(i)")) }
        let key = try AuditStore.setUpSealing(stateDirectory: dir, interval: .seconds(900), replace: false)
        #expect(throws: SealingError.self) { try AuditStore.setUpSealing(stateDirectory: dir, interval: .seconds(900), replace: false) }
        for i in 1...3 { try await store.append(AuditRecord(kind: .observation, message: "after \(i)")) }
        let result = try store.verify(key: key)
        #expect(result.problem == nil && result.unsealed == 3 && result.sealed == 3, "\(result)")
        // The key file removed (to write unsealed records unseen): the first one is named.
        try FileManager.default.removeItem(atPath: dir + "/seal.key")
        try await store.append(AuditRecord(kind: .silence, target: "*", message: "silenced everything"))
        let problem = try #require(try store.verify(key: key).problem)
        #expect(problem.seq == 7 && problem.description.contains("is not sealed"), "\(problem)")
    }

    @Test("a verification key reads back from its text, and malformed ones are refused")
    func keyText() {
        let key = SealingKey.generate(interval: 900, now: 1_800_000_000)
        #expect(SealingKey(text: key.text) == key)
        for bad in ["", "abc/1/2", key.key.hexString + "/x/900", key.key.hexString + "/1800000000/0", String(key.key.hexString.dropLast()) + "/1/1"] {
            #expect(SealingKey(text: bad) == nil, "\(bad)")
        }
    }
}
