import Audit
import Foundation
import MedicCore
import Systemd
import TestHost
import Testing

@Suite("Guards and playbooks end to end, on a real systemd", .serialized, .timeLimit(.minutes(5)))
struct GuardTests {
    @Test("a unit that cannot start (bad config) ends in start-limit-hit, and Medic escalates instead of restarting it")
    func startLimitHit() async throws {
        try await withTestHost("startlimit") { host in
            // systemd's own Restart= tries three times, then gives up: start-limit-hit.
            try host.installUnit("bad.service", """
                [Unit]
                StartLimitBurst=3
                StartLimitIntervalSec=60
                [Service]
                Type=exec
                Restart=on-failure
                RestartSec=50ms
                ExecStart=/bin/sh -c 'echo "bad.conf: line 3: unknown option" >&2; exit 78'
                """)
            let manager = SystemdManager(bus: try SystemBus(address: host.busAddress))
            defer { manager.bus.close() }
            try await manager.reload()
            let medicd = try RunningMedicd.start(on: host, playbook: """
                playbook: crash-loop
                targets:
                  - unit: bad.service
                guards: { backoff: { initial: 100ms } }
                receivers: { oncall: { journal: crit } }
                on:
                  - when: crashed(start-limit-hit)
                    do:
                      - collect: { journal: 100 }
                      - notify: oncall
                    escalate:
                      - after: failure
                        do: [ { notify: { to: oncall, message: "bad.service cannot start: check its configuration" } } ]
                """)
            defer { medicd.process.stop() }
            _ = try await manager.startUnit("bad.service")
            let escalated = await eventually(timeout: .seconds(20)) {
                ((try? medicd.records(kinds: [.escalation]).contains { $0.message.contains("needs a human") }) ?? false)
            }
            let log = ((try? medicd.records()) ?? []).map { "\($0.kind) \($0.message)" }.joined(separator: "\n")
            #expect(escalated, "\(log)")
            let opened = try #require(try medicd.records(kinds: [.incidentOpened]).first)
            #expect(opened.message.hasPrefix("crashed(start-limit-hit)"))
            // systemd 252 leaves Result= at the last run's failure and fails the start job.
            #expect(try medicd.records(kinds: [.observation]).contains { $0.message.hasPrefix("start limit hit") })
            #expect(try medicd.records(kinds: [.stepIntent]).allSatisfy { $0.step != "restart" }, "\(log)")
            #expect(try medicd.records(kinds: [.escalation]).contains { $0.facts["level"] == "1" })
            // The page: the escalation and the notifications as markers, no restart bar.
            let page = try checkReportPage(state: medicd.state, incident: try #require(opened.incident))
            #expect(page.marks("marker escalation") >= 1 && page.marks("marker notification") >= 1, "\(page.dom.count)")
            let state = try await manager.state(of: "bad.service")
            #expect(state.activeState == "failed")
            #expect(state.nRestarts == 3)
        }
    }

    @Test("an operator's stop is recorded, not remediated, even when the service exits non-zero on SIGTERM")
    func operatorStop() async throws {
        try await withTestHost("opstop") { host in
            let manager = try await installAndStart(host, ["stubborn.service": """
                [Service]
                ExecStart=/bin/sh -c 'trap "exit 1" TERM; while :; do sleep 0.05; done'
                """], start: ["stubborn.service"])
            defer { manager.bus.close() }
            let medicd = try RunningMedicd.start(on: host, playbook: playbook(unit: "stubborn.service"))
            defer { medicd.process.stop() }
            #expect(try await manager.stopUnit("stubborn.service") == .finished("done"))
            #expect(try await manager.state(of: "stubborn.service").result == "exit-code")
            let seen = await eventually {
                ((try? medicd.records(kinds: [.observation]).contains { $0.message.contains("taken down by a job someone else asked for") }) ?? false)
            }
            #expect(seen, "\((try? medicd.records().map(\.message)) ?? [])")
            try await Task.sleep(for: .milliseconds(500))
            #expect(try medicd.records(kinds: [.incidentOpened]).isEmpty)
            #expect(try await manager.state(of: "stubborn.service").activeState == "failed")
        }
    }

    @Test("SIGHUP reloads the playbooks; an invalid set is refused and the running one keeps healing")
    func reload() async throws {
        try await withTestHost("reload") { host in
            let manager = try await installAndStart(
                host, ["a.service": try backendUnit(port: freePort()), "b.service": try backendUnit(port: freePort())], start: ["a.service", "b.service"])
            defer { manager.bus.close() }
            let medicd = try RunningMedicd.start(on: host, playbook: playbook(unit: "a.service", verify: "100ms"))
            defer { medicd.process.stop() }
            let playbooks = host.directory + "/medicd/playbooks"
            try playbook(unit: "b.service", verify: "100ms").replacingOccurrences(of: "playbook: test", with: "playbook: second")
                .write(toFile: playbooks + "/second.yaml", atomically: true, encoding: .utf8)
            medicd.process.signal(SIGHUP)
            #expect(await eventually { ((try? medicd.records(kinds: [.daemon]).contains { $0.message == "reloaded 2 playbooks" }) ?? false) })
            kill(try #require(host.processes(ofUnit: "b.service").first), SIGKILL)
            #expect(await eventually { ((try? medicd.records(unit: "b.service", kinds: [.incidentClosed]).count) ?? 0) == 1 })

            try "playbook: broken\ntargets: []\n".write(toFile: playbooks + "/third.yaml", atomically: true, encoding: .utf8)
            medicd.process.signal(SIGHUP)
            #expect(await eventually { ((try? medicd.records(kinds: [.daemon]).contains { $0.message.hasPrefix("reload refused: 1 invalid") }) ?? false) })
            #expect(try medicd.records(kinds: [.playbookRefused]).contains { $0.facts["errors"]?.contains("third.yaml:") == true })
            kill(try #require(host.processes(ofUnit: "a.service").first), SIGKILL)
            #expect(await eventually { ((try? medicd.records(unit: "a.service", kinds: [.incidentClosed]).count) ?? 0) == 1 })
        }
    }

    @Test("medic silence holds automatic action; the crash is still recorded")
    func silence() async throws {
        try await withTestHost("silence") { host in
            let manager = try await installAndStart(host, ["web.service": try backendUnit(port: freePort())], start: ["web.service"])
            defer { manager.bus.close() }
            let medicd = try RunningMedicd.start(on: host, playbook: playbook(unit: "web.service"))
            defer { medicd.process.stop() }
            let result = try medic(["silence", "web.service", "--for", "1h", "--reason", "planned maintenance", "--socket", medicd.socket])
            #expect(result.status == 0, "\(result.output)")
            kill(try #require(host.processes(ofUnit: "web.service").first), SIGKILL)
            #expect(await eventually { ((try? medicd.records(kinds: [.guardStopped]).contains { $0.message.contains("silenced until") }) ?? false) })
            #expect(try medicd.records(kinds: [.silence]).first?.message.contains("planned maintenance") == true)
            #expect(try medicd.records(kinds: [.stepResult]).filter { $0.step == "restart" }.isEmpty)
            #expect(try await manager.state(of: "web.service").activeState == "failed")
        }
    }

    @Test("a victim of a failed dependency (systemd's Requires=) is not restarted until the dependency is back")
    func dependency() async throws {
        try await withTestHost("depends") { host in
            let manager = try await installAndStart(host, [
                "db.service": try backendUnit(port: freePort()),
                "app.service": try backendUnit(port: freePort(), unitSection: "Requires=db.service\nAfter=db.service"),
            ], start: ["app.service"])
            defer { manager.bus.close() }
            let medicd = try RunningMedicd.start(on: host, playbook: playbook(unit: "app.service", verify: "100ms"))
            defer { medicd.process.stop() }
            kill(try #require(host.processes(ofUnit: "db.service").first), SIGKILL)
            #expect(await eventually { ((try? medicd.records(unit: "db.service", kinds: [.observation]).contains { $0.message.contains("killed by signal 9") }) ?? false) })
            kill(try #require(host.processes(ofUnit: "app.service").first), SIGKILL)
            #expect(await eventually { ((try? medicd.records(kinds: [.guardStopped]).contains { $0.message.contains("depends on db.service, which is unhealthy") }) ?? false) })
            try await Task.sleep(for: .milliseconds(500))
            #expect(try medicd.records(kinds: [.stepIntent]).filter { $0.step == "restart" }.isEmpty)
            // The dependency comes back (an operator starts it): the victim goes at once.
            _ = try await manager.startUnit("db.service")
            #expect(await eventually { ((try? medicd.records(unit: "app.service", kinds: [.incidentClosed]).count) ?? 0) == 1 }, "\((try? medicd.records().map(\.message)) ?? [])")
            #expect(try await manager.state(of: "app.service").activeState == "active")
        }
    }

    @Test("a restarted daemon keeps its counts: a crash-looping unit is never restarted more often than allowed")
    func countsSurviveRestart() async throws {
        try await withTestHost("counts") { host in
            let manager = try await installAndStart(
                host, ["web.service": try backendUnit(port: freePort(), unitSection: "StartLimitIntervalSec=0")], start: ["web.service"])
            defer { manager.bus.close() }
            let book = playbook(unit: "web.service", verify: "100ms", restarts: "1 in 10m")
            let first = try RunningMedicd.start(on: host, playbook: book)
            kill(try #require(host.processes(ofUnit: "web.service").first), SIGKILL)
            #expect(await eventually { ((try? first.records(kinds: [.incidentClosed]).count) ?? 0) == 1 })
            first.process.stop()

            let second = try RunningMedicd.start(on: host, playbook: book)
            defer { second.process.stop() }
            kill(try #require(host.processes(ofUnit: "web.service").first), SIGKILL)
            #expect(await eventually { ((try? second.records(kinds: [.guardStopped]).count) ?? 0) == 1 })
            #expect(try second.records(kinds: [.guardStopped]).first?.message.contains("1 restarts of web.service in the last 10m") == true)
            #expect(try second.records(kinds: [.stepIntent]).filter { $0.step == "restart" }.count == 1)
            let incidents = Set(try second.records(kinds: [.incidentOpened]).compactMap(\.incident))
            #expect(incidents.count == 2, "incident numbers go on across the restart")
        }
    }
}
