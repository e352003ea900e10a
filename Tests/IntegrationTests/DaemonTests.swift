import Audit
import Foundation
import MedicCore
import Systemd
import TestHost
import Testing

@Suite("medicd as a daemon", .serialized, .timeLimit(.minutes(5)))
struct DaemonTests {
    @Test("runs as units/medic.service inside a host: READY=1, STATUS=, healing, and its audit trail in the journal")
    func asSystemdUnit() async throws {
        try await withTestHost("unit") { host in
            let (work, manager) = try await startMedicUnit(host, playbook: playbook(unit: "web.service", verify: "300ms"))
            defer { manager.bus.close() }
            let medic = try await manager.state(of: "medic.service")
            #expect(medic.activeState == "active")
            #expect(medic.statusText?.hasPrefix("watching 1 targets") == true)

            let pid = try #require(host.processes(ofUnit: "web.service").first)
            kill(pid, SIGKILL)
            let store = try AuditStore(stateDirectory: work + "/state", readOnly: true)
            #expect(await eventually { ((try? store.records(AuditQuery(kinds: [.incidentClosed])).count) ?? 0) == 1 })
            #expect(try store.records(AuditQuery(kinds: [.incidentClosed])).first?.facts["outcome"] == "recovered")
            #expect(await eventually { (try? await manager.state(of: "medic.service").statusText)?.contains("1 recovered") == true })

            // The journal holds the mirrored audit records and medicd's own log lines, with the
            // priorities medicd gave them.
            let found = await eventually {
                let entries = (try? JournalReader(directory: host.journalDirectory)
                    .recentEntries(unit: "medic.service", limit: 200, fields: ["MESSAGE", "PRIORITY", "MEDIC_KIND", "MESSAGE_ID"])) ?? []
                return entries.contains { $0.fields["MEDIC_KIND"] == "incident-opened" && $0.fields["MESSAGE_ID"] == JournalMirror.messageIDs[.incidentOpened] }
                    && entries.contains { $0.message.hasPrefix("incident") && $0.message.contains("opened") && $0.fields["PRIORITY"] == "5" }
            }
            #expect(found, "journal of medic.service lacks the mirrored records or the log lines")

            // systemctl reload medic: the playbooks are reloaded.
            #expect(try await manager.reloadUnit("medic.service") == .finished("done"))
            #expect(await eventually { ((try? store.records(AuditQuery(kinds: [.daemon])).contains { $0.message == "reloaded 1 playbooks" && $0.actor == "SIGHUP" }) ?? false) })

            // SIGTERM: medicd stops cleanly and records it.
            #expect(try await manager.stopUnit("medic.service") == .finished("done"))
            #expect(try await manager.state(of: "medic.service").result == "success")
            #expect(try store.records(AuditQuery(kinds: [.daemon])).last?.message == "medicd stopped")
        }
    }

    @Test("a medicd that stops pinging its watchdog (frozen) is killed and restarted by systemd")
    func watchdogRestart() async throws {
        try await withTestHost("watchdog") { host in
            let (_, manager) = try await startMedicUnit(host, playbook: playbook(unit: "web.service"), service: "WatchdogSec=1s\nTimeoutAbortSec=1s")
            defer { manager.bus.close() }
            let before = try #require(try await manager.state(of: "medic.service").mainPID)
            // Frozen: alive, but its engine makes no progress and nothing pings.
            kill(try #require(host.processes(ofUnit: "medic.service").first), SIGSTOP)
            let restarted = await eventually(timeout: .seconds(20)) {
                let state = try? await manager.state(of: "medic.service")
                return state?.activeState == "active" && state?.mainPID != before && (state?.nRestarts ?? 0) >= 1
            }
            let after = try? await manager.state(of: "medic.service")
            #expect(restarted, "\(after.map { "\($0)" } ?? "")")
        }
    }

    @Test("units/medic.service passes systemd-analyze verify")
    func unitVerifies() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let unit = try String(contentsOfFile: Paths.packageRoot + "/units/medic.service", encoding: .utf8)
        try unit.replacingOccurrences(of: "/usr/local/bin/medicd", with: Paths.medicd).write(toFile: dir + "/medic.service", atomically: true, encoding: .utf8)
        let verify = try ChildProcess("/usr/bin/systemd-analyze", ["verify", dir + "/medic.service"], logPath: dir + "/verify.log")
        #expect(verify.waitForExit(timeout: .seconds(30)) == 0, "\(verify.output)")
        #expect(verify.output.isEmpty, "\(verify.output)")
    }

    @Test("reconnects when the bus goes away (dbus restarted) and keeps healing")
    func reconnectsAfterDbusRestart() async throws {
        try await withTestHost("reconnect") { host in
            let manager = try await installAndStart(host, ["web.service": try backendUnit(port: freePort())], start: ["web.service"])
            defer { manager.bus.close() }
            let medicd = try RunningMedicd.start(on: host, playbook: playbook(unit: "web.service", verify: "300ms"))
            defer { medicd.process.stop() }
            // Restarting dbus drops every client, ours included.
            _ = try? await manager.restartUnit("dbus.service", timeout: .seconds(5))
            manager.bus.close()
            #expect(await eventually { ((try? medicd.records(kinds: [.daemon]).contains { $0.message.hasPrefix("system bus reconnected") }) ?? false) })
            let pid = try #require(host.processes(ofUnit: "web.service").first)
            kill(pid, SIGKILL)
            #expect(await eventually { ((try? medicd.records(kinds: [.incidentClosed]).count) ?? 0) == 1 }, "\(medicd.process.output)")
            #expect(try medicd.records(kinds: [.daemon]).contains { $0.message.hasPrefix("lost the system bus") })
            #expect(try medicd.records(kinds: [.incidentClosed]).first?.facts["outcome"] == "recovered")
        }
    }

    @Test("keeps receiving systemd's signals after systemd re-executes itself")
    func survivesDaemonReexec() async throws {
        try await withTestHost("reexec") { host in
            let manager = try await installAndStart(host, ["web.service": try backendUnit(port: freePort())], start: ["web.service"])
            defer { manager.bus.close() }
            let medicd = try RunningMedicd.start(on: host, playbook: playbook(unit: "web.service", verify: "300ms"))
            defer { medicd.process.stop() }
            try host.runInside(["systemctl", "daemon-reexec"])
            let pid = try #require(host.processes(ofUnit: "web.service").first)
            kill(pid, SIGKILL)
            #expect(await eventually { ((try? medicd.records(kinds: [.incidentClosed]).count) ?? 0) == 1 }, "\(medicd.process.output)")
            #expect(try medicd.records(kinds: [.incidentClosed]).first?.facts["outcome"] == "recovered")
        }
    }

    @Test("scripts/install on a fresh host: binaries, unit, default config, examples disabled, completions, man pages, enabled and running")
    func install() async throws {
        try await withTestHost("install") { host in
            let installed = try host.runInside(["/bin/bash", Paths.packageRoot + "/scripts/install", "--from", Paths.products])
            #expect(installed.contains("Medic \(MedicVersion.string) is installed"), "\(installed)")
            #expect(try host.runInside(["systemctl", "is-active", "medic.service"]).hasPrefix("active"))
            #expect(try host.runInside(["systemctl", "is-enabled", "medic.service"]).hasPrefix("enabled"))
            #expect(try host.runInside(["stat", "-c", "%U %a", "/etc/medic/medic.yaml", "/etc/medic/playbooks"]) == "root 644\nroot 755\n")
            let shipped = try String(contentsOfFile: Paths.packageRoot + "/config/medic.yaml", encoding: .utf8)
            #expect(try host.runInside(["cat", "/etc/medic/medic.yaml"]) == shipped)
            // The examples are there to copy, not loaded.
            #expect(try host.runInside(["ls", "/usr/local/share/medic/examples/playbooks"]).contains("web-backend.yaml"))
            #expect(try host.runInside(["ls", "-A", "/etc/medic/playbooks"]).isEmpty)
            #expect(try host.runInside(["cat", "/usr/local/share/bash-completion/completions/medic"]).contains("-F _medic medic"))
            #expect(try host.runInside(["ls", "/usr/local/share/man/man1"]).contains("medic.1"))
            #expect(try host.runInside(["cat", "/usr/local/share/man/man1/medic.1"]).contains(".Nm medic"))
            #expect(try host.runInside(["/usr/local/bin/medic", "--version"]) == "\(MedicVersion.string)\n")

            // An operator enables a playbook and reloads; medic status (over the control socket) shows it.
            try host.runInside(["/bin/sh", "-c", "printf 'playbook: web\\ntargets: [ { unit: web.service } ]\\non:\\n  - when: crashed\\n    do: [ restart ]\\n' > /etc/medic/playbooks/web.yaml"])
            try host.runInside(["/usr/local/bin/medic", "check"])
            try host.runInside(["systemctl", "reload", "medic.service"])
            #expect(await eventually { ((try? host.runInside(["/usr/local/bin/medic", "status"])) ?? "").contains("playbooks: web") })
            let scrape = try httpExchange(port: 9466, "GET /metrics HTTP/1.0\r\n\r\n")
            #expect(scrape.body.contains("medic_build_info{version=\"\(MedicVersion.string)\"} 1"), "\(scrape.body)")
            try host.runInside(["systemctl", "stop", "medic.service"])
        }
    }

    @Test("exits non-zero naming file, line and column when the config is invalid")
    func invalidConfig() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        chmod(dir, 0o755)
        try "playbooks: relative/dir\n".write(toFile: dir + "/medic.yaml", atomically: true, encoding: .utf8)
        let run = try ChildProcess(Paths.medicd, ["--config", dir + "/medic.yaml", "--state", dir + "/state", "--bus", "unix:path=\(dir)/bus"], logPath: dir + "/out")
        #expect(run.waitForExit(timeout: .seconds(10)) == 1)
        #expect(run.output.contains("\(dir)/medic.yaml:1:12: 'playbooks' must be an absolute path"), "\(run.output)")
    }

    @Test("exits non-zero naming the problem when the playbook directory does not exist")
    func missingPlaybookDirectory() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let run = try ChildProcess(Paths.medicd, ["--playbooks", dir + "/nope", "--state", dir + "/state", "--bus", "unix:path=\(dir)/bus"], logPath: dir + "/out")
        let status = run.waitForExit(timeout: .seconds(10))
        #expect(status != nil && status != 0)
        #expect(run.output.contains("playbook directory \(dir)/nope does not exist"))
    }

    @Test("exits non-zero naming the bus when it cannot reach it")
    func unreachableBus() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/playbooks", withIntermediateDirectories: true)
        let run = try ChildProcess(Paths.medicd, ["--playbooks", dir + "/playbooks", "--state", dir + "/state", "--bus", "unix:path=\(dir)/no-bus"], logPath: dir + "/out")
        let status = run.waitForExit(timeout: .seconds(10))
        #expect(status != nil && status != 0)
        #expect(run.output.contains("cannot reach the system bus at unix:path=\(dir)/no-bus"))
        #expect(run.output.contains("ENOENT"))
    }
}
