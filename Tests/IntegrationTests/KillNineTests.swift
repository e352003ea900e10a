import Audit
import Foundation
import Glibc
import GRDB
import MedicCore
import Systemd
import TestHost
import Testing

@Suite("kill -9 of medicd in the middle of a step", .serialized, .timeLimit(.minutes(5)))
struct KillNineTests {
    @Test("killed during a restart: the next medicd records the step as interrupted, never runs it again, and closes the incident once the unit is healthy")
    func killedDuringRestart() async throws {
        try await withTestHost("kill9") { host in
            // A restart that takes a second and a half, so medicd is killed while it runs.
            let manager = try await installAndStart(host, ["slow.service": try backendUnit(
                port: freePort(), serviceSection: "ExecStartPre=/bin/sleep 1.5")], start: ["slow.service"])
            defer { manager.bus.close() }
            let playbook = """
                playbook: slow
                targets:
                  - unit: slow.service
                guards: { stabilise: 300ms }
                on:
                  - when: crashed
                    do:
                      - restart: { timeout: 10s }
                      - verify: { healthy: within 5s }
                """
            let first = try RunningMedicd.start(on: host, playbook: playbook)
            kill(try #require(host.processes(ofUnit: "slow.service").first), SIGKILL)
            #expect(await eventually(timeout: .seconds(5)) {
                ((try? first.records(kinds: [.stepIntent]).contains { $0.step == "restart" }) ?? false)
            })
            first.process.signal(SIGKILL)
            _ = first.process.waitForExit(timeout: .seconds(5))
            #expect(try first.records(kinds: [.stepResult]).isEmpty, "the restart had not finished when medicd was killed")

            let second = try RunningMedicd.start(on: host, playbook: playbook)
            defer { second.process.stop() }
            let closed = await eventually(timeout: .seconds(15)) {
                ((try? second.records(kinds: [.incidentClosed]).contains { $0.facts["outcome"] == "recovered" }) ?? false)
            }
            let records = try second.records()
            #expect(closed, "\(records.map(\.message))\n\(second.process.output)")
            let interrupted = try #require(records.first { $0.kind == "step-result" && $0.step == "restart" })
            #expect(interrupted.facts["result"] == "interrupted" && interrupted.message.contains("it is not run again"), "\(interrupted.message)")
            #expect(records.filter { $0.kind == "step-intent" && $0.step == "restart" }.count == 1, "the restart ran twice")
            #expect(records.contains { $0.kind == "decision" && $0.message.hasPrefix("taking up incident") })
            #expect(try second.audit.verify().problem == nil)
        }
    }
}

@Suite("An audit log that cannot be written", .serialized, .timeLimit(.minutes(5)))
struct UnwritableAuditTests {
    @Test("while the database is locked past its timeout, medicd detects but runs no step; once it can write, everything is recorded in order and the restart runs")
    func lockedDatabase() async throws {
        try await withTestHost("locked") { host in
            let manager = try await installAndStart(host, ["web.service": try backendUnit(port: freePort())], start: ["web.service"])
            defer { manager.bus.close() }
            let medicd = try RunningMedicd.start(on: host, playbook: playbook(unit: "web.service", verify: "0s"))
            defer { medicd.process.stop() }
            // Another process holds the write lock, as a stuck backup or a careless sqlite3 would.
            let lock = try AuditLogLock(state: medicd.state)
            defer { lock.release() }
            kill(try #require(host.processes(ofUnit: "web.service").first), SIGKILL)
            #expect(await eventually(timeout: .seconds(10)) { medicd.process.output.contains("audit log write failed") })
            try await Task.sleep(for: .seconds(1))
            #expect(try await manager.state(of: "web.service").activeState != "active", "a step ran without its intent on record")
            lock.release()
            let recovered = await eventually(timeout: .seconds(20)) {
                ((try? medicd.records(kinds: [.incidentClosed]).contains { $0.facts["outcome"] == "recovered" }) ?? false)
            }
            let records = try medicd.records()
            #expect(recovered, "\(records.map(\.message))\n\(medicd.process.output)")
            let kinds = records.filter { $0.target == "web.service" }.map(\.kind)
            let opened = try #require(kinds.firstIndex(of: "incident-opened"))
            let intent = try #require(kinds.firstIndex(of: "step-intent"))
            let result = try #require(kinds.firstIndex(of: "step-result"))
            #expect(kinds[opened - 1] == "observation" && opened < intent && intent < result, "\(kinds)")
            #expect(records.contains { $0.kind == "daemon" && $0.message.hasPrefix("the audit log is writable again") })
            #expect(try medicd.audit.verify().problem == nil)
            #expect(try await manager.state(of: "web.service").activeState == "active")
        }
    }
}

extension UnwritableAuditTests {
    @Test("a full file system under the state directory: no step runs blind; freed, the backlog is written in order and the restart runs")
    func fullFileSystem() async throws {
        try await withTestHost("diskfull") { host in
            let state = host.directory + "/medicd/state"
            try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
            let mount = Process()
            mount.executableURL = URL(fileURLWithPath: "/bin/mount")
            mount.arguments = ["-t", "tmpfs", "-o", "size=4m,mode=0700", "medic-test-state", state]
            try mount.run()
            mount.waitUntilExit()
            try #require(mount.terminationStatus == 0)
            defer {
                let umount = Process()
                umount.executableURL = URL(fileURLWithPath: "/bin/umount")
                umount.arguments = ["-l", state]
                try? umount.run()
                umount.waitUntilExit()
            }
            let manager = try await installAndStart(host, ["web.service": try backendUnit(port: freePort())], start: ["web.service"])
            defer { manager.bus.close() }
            let medicd = try RunningMedicd.start(on: host, playbook: playbook(unit: "web.service", verify: "0s"))
            defer { medicd.process.stop() }
            // Fill the file system to the last block.
            let filler = state + "/filler"
            let fd = open(filler, O_WRONLY | O_CREAT, 0o600)
            let chunk = [UInt8](repeating: 0, count: 65_536)
            while write(fd, chunk, chunk.count) > 0 {}
            while write(fd, chunk, 1) > 0 {}
            close(fd)
            kill(try #require(host.processes(ofUnit: "web.service").first), SIGKILL)
            #expect(await eventually(timeout: .seconds(10)) { medicd.process.output.contains("audit log write failed") }, "\(medicd.process.output)")
            try await Task.sleep(for: .seconds(1))
            #expect(try await manager.state(of: "web.service").activeState != "active", "a step ran without its intent on record")
            unlink(filler)
            let recovered = await eventually(timeout: .seconds(20)) {
                ((try? medicd.records(kinds: [.incidentClosed]).contains { $0.facts["outcome"] == "recovered" }) ?? false)
            }
            let records = try medicd.records()
            #expect(recovered, "\(records.map(\.message))\n\(medicd.process.output)")
            #expect(records.contains { $0.kind == "daemon" && $0.message.hasPrefix("the audit log is writable again") })
            #expect(try medicd.audit.verify().problem == nil)
        }
    }
}
