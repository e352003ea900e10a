import Foundation
import GRDB
import MedicCore
import Testing

@testable import Audit

/// Silences and pauses live in the chain only, and the daemon's view is rebuilt from it.
@Suite("Holds rebuilt from the chain")
struct AuditHoldsTests {
    private func silenceRecord(_ pattern: String, for duration: Duration, at now: Timestamp = .now(), by author: String = "uid 0 (root)") -> AuditRecord {
        let silence = Silence(pattern: pattern, start: now, end: now.adding(duration), reason: "deploy", author: author)
        return AuditRecord(kind: .silence, time: now, target: pattern, message: "silenced \(pattern)", details: silence.details, actor: author)
    }

    private func command(_ name: String, _ target: String?) -> AuditRecord {
        AuditRecord(kind: .humanCommand, target: target, message: name, details: ["command": name], actor: "uid 1000 (alice)")
    }

    @Test("silence, unsilence, pause, resume and the flap guard's pause replay into what is in force")
    func replay() async throws {
        let dir = scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try AuditStore(stateDirectory: dir)
        try await store.append(silenceRecord("web.service", for: .seconds(3600)))
        try await store.append(silenceRecord("db.service", for: .seconds(3600)))
        try await store.append(silenceRecord("old.service", for: .seconds(1), at: Timestamp.now().adding(.seconds(-10))))
        try await store.append(AuditRecord(kind: .silence, target: "db.service", message: "unsilenced db.service", details: ["command": "unsilence"]))
        try await store.append(command("pause", "a.service"))
        try await store.append(command("pause", "b.service"))
        try await store.append(command("resume", "a.service"))
        try await store.append(AuditRecord(kind: .guardStopped, target: "flappy.service", message: "flapping", details: ["paused": "true"]))
        let holds = try store.holds(now: .now())
        #expect(holds.silences.map(\.silence.pattern) == ["web.service"])
        #expect(holds.silences.first?.silence.author == "uid 0 (root)")
        #expect(Set(holds.paused.keys) == ["b.service", "flappy.service"])
        #expect(holds.ignored.isEmpty)

        try await store.append(command("pause", nil))
        #expect(Set(try store.holds(now: .now()).paused.keys) == ["*", "b.service", "flappy.service"])
        try await store.append(command("resume", nil))
        #expect(try store.holds(now: .now()).paused.isEmpty)
    }

    @Test("a silence put into the log by hand, outside the chain, holds nothing and is named")
    func forgedSilenceIgnored() async throws {
        let dir = scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try AuditStore(stateDirectory: dir)
        for i in 1...3 { try await store.append(AuditRecord(kind: .observation, message: "observation \(i)")) }
        let raw = try DatabaseQueue(path: dir + "/" + AuditStore.fileName)
        // As someone with the file would: a row with made-up hashes, at the end and in a gap.
        let forged = StoredRecord(silenceRecord("web.service", for: .seconds(3600)), host: "h", bootID: "b")
        try await raw.write { db in
            var atEnd = forged
            atEnd.prevHash = try String.fetchOne(db, sql: "SELECT hash FROM record WHERE seq = 3")!
            atEnd.hash = "0000"
            try atEnd.insert(db)
            try db.execute(sql: "DELETE FROM record WHERE seq = 2")
            var inGap = forged
            inGap.seq = 2
            inGap.prevHash = try String.fetchOne(db, sql: "SELECT hash FROM record WHERE seq = 1")!
            inGap.hash = AuditChain.hash(inGap, previous: inGap.prevHash)
            try inGap.insert(db)
        }
        let holds = try store.holds(now: .now())
        #expect(holds.silences.isEmpty)
        #expect(holds.ignored.map(\.seq) == [2, 4], "\(holds.ignored)")
        #expect(holds.ignored.first?.why == "record 3 does not follow it")
        #expect(holds.ignored.last?.why == "its content does not match its hash")
        #expect(try store.verify().problem?.seq == 3)
    }

    @Test("pruning carries the silences and pauses still in force into the kept chain, and only those")
    func pruningKeepsHolds() async throws {
        let dir = scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try AuditStore(stateDirectory: dir)
        let now = Timestamp.now()
        let dayAgo = now.adding(.seconds(-86_400))
        try await store.append(silenceRecord("web.service", for: .seconds(30 * 86_400), at: dayAgo, by: "uid 1000 (alice)"))
        try await store.append(silenceRecord("over.service", for: .seconds(60), at: dayAgo))
        var pause = command("pause", "db.service")
        pause.time = dayAgo
        try await store.append(pause)
        for i in 1...20 { try await store.append(AuditRecord(kind: .observation, time: dayAgo, message: "old \(i)")) }
        try await store.append(AuditRecord(kind: .observation, message: "new"))
        let before = try store.holds(now: now)

        let result = try await store.prune(before: now.wallMicroseconds - 3_600_000_000, maxBytes: nil)
        #expect(result.pruned == 23)
        #expect(try store.verify().problem == nil)
        let after = try store.holds(now: now)
        #expect(after.silences.map(\.silence) == before.silences.map(\.silence))
        #expect(after.silences.first?.silence.author == "uid 1000 (alice)")
        #expect(Set(after.paused.keys) == ["db.service"])
        let carried = try store.records(AuditQuery(kinds: [.silence, .humanCommand]))
        #expect(carried.map { $0.facts["carried_from"] } == ["1", "3"])
        #expect(carried.allSatisfy { $0.actor == "medicd" })
    }
}
