import Audit
import Foundation
import GRDBSQLite
import MedicCore
import Testing

@Suite("Audit store (real SQLite)")
struct AuditStoreTests {
    @Test("records come back in order with gapless sequence numbers, host, boot and details")
    func appendAndRead() async throws {
        let dir = scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try AuditStore(stateDirectory: dir)
        let seqs = try await store.append([
            AuditRecord(kind: .observation, target: "a.service", message: "one", details: ["Result": "signal"]),
            AuditRecord(kind: .incidentOpened, target: "a.service", incident: 7, message: "two"),
        ])
        let third = try await store.append(AuditRecord(kind: .stepIntent, target: "b.service", incident: 7, step: "restart", message: "three"))
        #expect(seqs == [1, 2])
        #expect(third == 3)
        let all = try store.records()
        #expect(all.map(\.message) == ["one", "two", "three"])
        #expect(all[0].facts == ["Result": "signal"])
        #expect(!all[0].bootID.isEmpty && !all[0].host.isEmpty)
        #expect(try store.records(AuditQuery(unit: "b.service")).map(\.seq) == [3])
        #expect(try store.records(AuditQuery(incident: 7)).map(\.seq) == [2, 3])
        #expect(try store.records(AuditQuery(incident: 2)).isEmpty, "an incident's records, not the record whose seq has its number")
        #expect(try store.records(AuditQuery(kinds: [.observation, .stepIntent])).map(\.seq) == [1, 3])
        #expect(try store.records(AuditQuery(afterSeq: 2)).map(\.seq) == [3])
    }

    @Test("guard history counts each step intent, but not one a runner's guard refused after it (a fleet budget, capacity): that step never ran")
    func refusedIntentsDoNotCount() async throws {
        let dir = scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try AuditStore(stateDirectory: dir)
        try await store.append([
            AuditRecord(kind: .stepIntent, target: "web.service", incident: 1, step: "reboot", message: "about to reboot", details: ["step": "1/1 reboot"]),
            AuditRecord(kind: .guardStopped, target: "web.service", incident: 1, step: "reboot", message: "reboot stopped: no slot",
                        details: ["step": "1/1 reboot", AuditFact.guardName.name: "fleet-budget", AuditFact.result.name: "refused", AuditFact.notRun.name: "true"]),
            // An engine guard's stop has no intent before it; the same step run later counts.
            AuditRecord(kind: .guardStopped, target: "web.service", incident: 2, step: "reboot", message: "reboot stopped: rate",
                        details: [AuditFact.guardName.name: "rate", AuditFact.result.name: "refused"]),
            AuditRecord(kind: .stepIntent, target: "web.service", incident: 2, step: "reboot", message: "about to reboot", details: ["step": "1/1 reboot"]),
        ])
        let history = try store.guardHistory(within: .seconds(3600), now: .now())
        #expect(history.stepRuns.count == 1 && history.stepRuns.first?.kind == .reboot)
    }

    @Test("what was acknowledged is there when the log is opened again, and reads do not block writes")
    func reopenAndConcurrentRead() async throws {
        let dir = scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        do {
            let store = try AuditStore(stateDirectory: dir)
            for i in 0..<100 { _ = try await store.append(AuditRecord(kind: .decision, message: "r\(i)")) }
        }
        let writer = try AuditStore(stateDirectory: dir)
        let reader = try AuditStore(stateDirectory: dir, readOnly: true)
        #expect(try reader.records().count == 100)
        async let written: Void = {
            for i in 100..<200 { _ = try await writer.append(AuditRecord(kind: .decision, message: "r\(i)")) }
        }()
        // Each read while the writer writes sees a whole, gapless prefix of the log, never a torn one.
        var seen: [Int] = []
        for _ in 0..<50 {
            let messages = try reader.records().map(\.message)
            #expect(messages == (0..<messages.count).map { "r\($0)" })
            seen.append(messages.count)
        }
        try await written
        #expect(seen.allSatisfy { $0 >= 100 } && seen == seen.sorted(), "reads only move forward: \(seen)")
        #expect(try reader.records().map(\.message) == (0..<200).map { "r\($0)" })
    }

    @Test("the database is in WAL mode with synchronous=FULL, in a state directory only root can read")
    func durabilitySettings() throws {
        let dir = scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try AuditStore(stateDirectory: dir + "/state")
        let settings = try store.durability()
        #expect(settings.journalMode == "wal")
        #expect(settings.synchronous == 2)
        let attributes = try FileManager.default.attributesOfItem(atPath: dir + "/state")
        #expect((attributes[.posixPermissions] as? Int) == 0o700)
    }

    @Test("releaseMemory gives back SQLite's caches, and the log goes on: reads and appends after it see every record")
    func releaseMemory() async throws {
        let dir = scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try AuditStore(stateDirectory: dir)
        let details = ["unit": String(repeating: "x", count: 200)]
        for batch in 0..<20 {
            _ = try await store.append((0..<100).map { AuditRecord(kind: .observation, target: "u\(batch)-\($0).service", message: "sampled", details: details) })
        }
        #expect(try store.records().count == 2_000)
        let before = sqlite3_memory_used()
        await store.releaseMemory()
        let after = sqlite3_memory_used()
        // The writer's page cache holds up to 512 KiB and a reader's as much.
        #expect(before - after > 256 << 10, "SQLite held \(before) bytes, \(after) after the release")
        let next = try await store.append(AuditRecord(kind: .decision, message: "after the release"))
        #expect(next == 2_001)
        #expect(try store.records().count == 2_001)
        let verification = try store.verify()
        #expect(verification.problem == nil && verification.records == 2_001)
    }
}
