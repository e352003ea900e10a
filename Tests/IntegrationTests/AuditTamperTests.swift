import Audit
import Foundation
import GRDB
import MedicCore
import Systemd
import TestHost
import Testing

/// The audit log tried by someone covering their tracks, and the state that changes what Medic
/// does, which lives in the chain only.
@Suite("Tampering with the audit log", .serialized, .timeLimit(.minutes(5)))
struct AuditTamperTests {
    /// Edits record `seq` and recomputes the chain from it onward, as someone with the file but
    /// no key would, so that the chain alone verifies again.
    private func editAndRecomputeChain(_ raw: DatabaseQueue, at seq: Int64, message: String) async throws {
        try await raw.write { db in
            try db.execute(sql: "UPDATE record SET message = ? WHERE seq = ?", arguments: [message, seq])
            var previous = try String.fetchOne(db, sql: "SELECT hash FROM record WHERE seq = ?", arguments: [seq - 1])!
            for var record in try StoredRecord.filter(Column("seq") >= seq).order(Column("seq")).fetchAll(db) {
                record.prevHash = previous
                record.hash = AuditChain.hash(record, previous: previous)
                try record.update(db)
                previous = record.hash
            }
        }
    }

    /// Kills web.service and waits until the audit log says what happened: a restart, or a hold.
    private func crash(_ host: TestHost, _ medicd: RunningMedicd, expecting what: String) async throws -> Bool {
        let before = try medicd.records(kinds: [.guardStopped, .stepResult]).count
        kill(try #require(host.processes(ofUnit: "web.service").first), SIGKILL)
        return await eventually {
            let new = ((try? medicd.records(kinds: [.guardStopped, .stepResult])) ?? []).dropFirst(before)
            return new.contains { what == "restart" ? $0.step == "restart" && $0.facts["result"] == "succeeded" : $0.message.contains(what) }
        }
    }

    @Test("silences and pauses survive a restart of medicd, rebuilt from the chain; one put into the log outside the chain holds nothing")
    func holdsFromTheChainOnly() async throws {
        try await withTestHost("holds") { host in
            let manager = try await installAndStart(host, ["web.service": try backendUnit(port: freePort())], start: ["web.service"])
            defer { manager.bus.close() }
            let book = playbook(unit: "web.service", verify: "300ms")
            var medicd = try RunningMedicd.start(on: host, playbook: book)
            defer { medicd.process.stop() }
            #expect(try medic(["silence", "web.service", "--for", "1h", "--reason", "deploy", "--socket", medicd.socket]).status == 0)

            // A new medicd on the same state: still silenced.
            medicd.process.stop()
            medicd = try RunningMedicd.start(on: host, playbook: book)
            #expect(try await crash(host, medicd, expecting: "silenced until"), "\(medicd.process.output)")
            #expect(try medic(["unsilence", "web.service", "--socket", medicd.socket]).status == 0)
            #expect(await eventually { ((try? medicd.records(kinds: [.incidentClosed]).count) ?? 0) == 1 }, "the held restart runs once unsilenced")

            #expect(try medic(["pause", "web.service", "--socket", medicd.socket]).status == 0)
            medicd.process.stop()
            medicd = try RunningMedicd.start(on: host, playbook: book)
            #expect(try await crash(host, medicd, expecting: "web.service is paused"), "\(medicd.process.output)")
            #expect(try medic(["resume", "web.service", "--socket", medicd.socket]).status == 0)
            #expect(await eventually { (try? await manager.state(of: "web.service").activeState) == "active" })

            // A silence written straight into the log's table, as root with sqlite3 could.
            medicd.process.stop()
            let raw = try DatabaseQueue(path: medicd.state + "/" + AuditStore.fileName)
            let forged: Int64 = try await raw.write { db in
                let now = Timestamp.now().wallMicroseconds
                let details = #"{"author":"uid 0 (root)","end_us":"\#(now + 3_600_000_000)","reason":"nothing to see","start_us":"\#(now)"}"#
                try db.execute(
                    sql: """
                        INSERT INTO record (wallMicroseconds, monotonicNanoseconds, bootID, host, kind, target, message, details, actor, prevHash, hash)
                        VALUES (?, 0, '', '', 'silence', 'web.service', 'silenced web.service', ?, 'uid 0 (root)', (SELECT hash FROM record ORDER BY seq DESC LIMIT 1), 'made up')
                        """, arguments: [now, details])
                return db.lastInsertedRowID
            }
            try raw.close()
            medicd = try RunningMedicd.start(on: host, playbook: book)
            #expect(try medicd.records(kinds: [.daemon]).contains { $0.message.hasPrefix("ignored record \(forged), a silence or pause that is not part of the audit chain") })
            #expect(try await crash(host, medicd, expecting: "restart"), "the forged silence holds nothing: \(medicd.process.output)")
        }
    }

    @Test("records cut from the end, or a chain recomputed after an edit, are caught by the journal's witnesses; without them the chain alone says intact")
    func witness() async throws {
        try await withTestHost("witness") { host in
            let (work, manager) = try await startMedicUnit(host, playbook: playbook(unit: "web.service", verify: "300ms"))
            defer { manager.bus.close() }
            let store = try AuditStore(stateDirectory: work + "/state", readOnly: true)
            kill(try #require(host.processes(ofUnit: "web.service").first), SIGKILL)
            #expect(await eventually { ((try? store.records(AuditQuery(kinds: [.incidentClosed])).count) ?? 0) == 1 })
            #expect(try await manager.stopUnit("medic.service") == .finished("done"))
            let last = try store.lastSeq()
            let verify = { (extra: [String]) in try medic(["audit", "verify", "--state", work + "/state"] + extra) }
            let witnessed = await eventually {
                ((try? verify(["--journal", host.journalDirectory]).output) ?? "").contains("witnessed \(last) records up to \(last)")
            }
            #expect(witnessed, "\((try? verify(["--journal", host.journalDirectory]).output) ?? "")")

            // The last three records deleted: the chain alone cannot tell.
            let raw = try DatabaseQueue(path: work + "/state/" + AuditStore.fileName)
            try await raw.write { try $0.execute(sql: "DELETE FROM record WHERE seq > ?", arguments: [last - 3]) }
            #expect(try verify(["--no-journal"]).status == 0)
            let cut = try verify(["--journal", host.journalDirectory])
            #expect(cut.status == 1, "\(cut.output)")
            #expect(cut.output.contains("TAMPERED at record \(last - 2): the log ends at record \(last - 3), but the journal witnessed record \(last - 2)"), "\(cut.output)")

            // A record edited and the chain recomputed from it: the chain verifies, its witness does not.
            try await editAndRecomputeChain(raw, at: 5, message: "nothing happened")
            #expect(try verify(["--no-journal"]).status == 0)
            let edited = try verify(["--journal", host.journalDirectory])
            #expect(edited.status == 1 && edited.output.contains("TAMPERED at record 5: record 5 differs from its witness"), "\(edited.output)")
        }
    }

    @Test("medic audit setup-keys while medicd runs: what it writes from then on is sealed, and verify --key proves it and catches a recomputed chain")
    func sealingFromTheCLI() async throws {
        try await withTestHost("sealing") { host in
            let manager = try await installAndStart(host, ["web.service": try backendUnit(port: freePort())], start: ["web.service"])
            defer { manager.bus.close() }
            let medicd = try RunningMedicd.start(on: host, playbook: playbook(unit: "web.service", verify: "300ms"))
            defer { medicd.process.stop() }
            let setup = try medic(["audit", "setup-keys", "--state", medicd.state, "--interval", "1s"])
            #expect(setup.status == 0, "\(setup.output)")
            let key = try #require(setup.output.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.first { SealingKey(text: $0) != nil })
            #expect(try medic(["audit", "setup-keys", "--state", medicd.state]).output.contains("already holds a sealing key"))
            let before = try medicd.audit.lastSeq()
            kill(try #require(host.processes(ofUnit: "web.service").first), SIGKILL)
            #expect(await eventually { ((try? medicd.records(kinds: [.incidentClosed]).count) ?? 0) == 1 })
            medicd.process.stop()

            let verify = { (extra: [String]) in try medic(["audit", "verify", "--state", medicd.state, "--no-journal"] + extra) }
            let proved = try verify(["--key", key])
            #expect(proved.status == 0, "\(proved.output)")
            #expect(proved.output.contains("\(before) earlier records were written before sealing began"), "\(proved.output)")
            #expect(try verify(["--key", "nonsense"]).output.contains("is not a verification key"))

            // The restart's intent edited into a no-op and the chain recomputed from it.
            let intent = try #require(try medicd.records(kinds: [.stepIntent]).first?.seq)
            let raw = try DatabaseQueue(path: medicd.state + "/" + AuditStore.fileName)
            try await editAndRecomputeChain(raw, at: intent, message: "nothing was done")
            #expect(try verify([]).status == 0)
            let caught = try verify(["--key", key])
            #expect(caught.status == 1 && caught.output.contains("TAMPERED at record \(intent): record \(intent) does not match its seal"), "\(caught.output)")
        }
    }
}
