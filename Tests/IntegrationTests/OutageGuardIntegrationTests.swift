import Audit
import Foundation
import Glibc
import MedicCore
import Systemd
import TestHost
import Testing

/// "Never make an outage worse", on a real systemd: globs, systemd's own dependencies, fresh
/// evidence after a restart, an interrupted plan that then fails, and what a crash is called.
@Suite("Guards that never make an outage worse, on a real systemd", .serialized, .timeLimit(.minutes(5)))
struct OutageGuardIntegrationTests {
    @Test("3 of 10 units of a glob killed at once: no storm, all three restarted at once")
    func globStorm() async throws {
        try await withTestHost("globstorm") { host in
            let units = (1...10).map { "acc@\($0).service" }
            let manager = try await installAndStart(host, ["acc@.service": "[Service]\nExecStart=/bin/sleep infinity\n"], start: units)
            defer { manager.bus.close() }
            let medicd = try RunningMedicd.start(on: host, playbook: """
                playbook: acc
                targets: [ { unit: "acc@*.service" } ]
                guards: { storm: 30% in 1m, stabilise: 300ms, backoff: { initial: 100ms } }
                on:
                  - when: crashed
                    do: [ restart ]
                """)
            defer { medicd.process.stop() }
            for unit in units.prefix(3) { try await manager.killUnit(unit, signal: SIGKILL) }
            let healed = await eventually(timeout: .seconds(10)) {
                ((try? medicd.records(kinds: [.incidentClosed]).filter { $0.facts["outcome"] == "recovered" }.count) ?? 0) == 3
            }
            let records = try medicd.records()
            #expect(healed, "\(records.map(\.message))")
            #expect(!records.contains { $0.message.hasPrefix("storm") }, "3 of 10 is 30%: no storm")
            #expect(records.filter { $0.kind == "step-result" && $0.step == "restart" && $0.facts["result"] == "succeeded" }.count == 3)
            for unit in units { #expect(try await manager.state(of: unit).activeState == "active", "\(unit)") }
        }
    }

    @Test("a crashed unit that others Requires= is started, not restarted: its dependants are never stopped")
    func startNotRestart() async throws {
        try await withTestHost("requires") { host in
            var units = ["db.service": "[Service]\nExecStart=/bin/sleep infinity\n"]
            let apps = (1...3).map { "app\($0).service" }
            for app in apps { units[app] = "[Unit]\nRequires=db.service\nAfter=db.service\n[Service]\nExecStart=/bin/sleep infinity\n" }
            let manager = try await installAndStart(host, units, start: apps)
            defer { manager.bus.close() }
            var before: [String: String] = [:]
            for app in apps { before[app] = try await manager.state(of: app).invocationID }
            let medicd = try RunningMedicd.start(on: host, playbook: playbook(unit: "db.service", verify: "0s"))
            defer { medicd.process.stop() }
            try await manager.killUnit("db.service", signal: SIGKILL)
            let recovered = await eventually(timeout: .seconds(10)) {
                ((try? medicd.records(kinds: [.incidentClosed]).contains { $0.facts["outcome"] == "recovered" }) ?? false)
            }
            let records = try medicd.records()
            #expect(recovered, "\(records.map(\.message))")
            let step = try #require(records.first { $0.kind == "step-result" && $0.step == "restart" })
            #expect(step.facts["job_type"]?.hasPrefix("start") == true, "\(step.message) \(step.facts)")
            #expect(step.facts["affected_jobs"] == nil, "\(step.facts)")
            for app in apps {
                let state = try await manager.state(of: app)
                #expect(state.activeState == "active" && state.invocationID == before[app], "\(app) was stopped or restarted: \(state)")
            }
            #expect(!records.contains { $0.kind == "incident-opened" && $0.target != "db.service" })
        }
    }

    @Test("a restart of a running unit records the jobs systemd passed on to what Requires= it, as Medic's own")
    func affectedJobsRecorded() async throws {
        try await withTestHost("affected") { host in
            let manager = try await installAndStart(host, [
                "db.service": "[Service]\nExecStart=/bin/sleep infinity\n",
                "app.service": "[Unit]\nRequires=db.service\nAfter=db.service\n[Service]\nExecStart=/bin/sleep infinity\n",
            ], start: ["app.service"])
            defer { manager.bus.close() }
            let medicd = try RunningMedicd.start(on: host, playbook: """
                playbook: db
                targets: [ { unit: db.service }, { unit: app.service } ]
                guards: { stabilise: 300ms }
                on:
                  - when: crashed
                    do: [ restart ]
                """)
            defer { medicd.process.stop() }
            let run = try medic(["run", "db", "--target", "db.service", "--socket", medicd.socket])
            #expect(run.status == 0, "\(run.output)")
            let done = await eventually(timeout: .seconds(10)) {
                ((try? medicd.records(kinds: [.stepResult]).contains { $0.step == "restart" }) ?? false)
            }
            let records = try medicd.records()
            #expect(done)
            let step = try #require(records.first { $0.kind == "step-result" && $0.step == "restart" })
            #expect(step.facts["affected_jobs"]?.contains("app.service") == true, "\(step.message) \(step.facts)")
            try await Task.sleep(for: .milliseconds(500))
            #expect(!records.contains { $0.target == "app.service" && $0.message.contains("someone else asked for") }, "Medic's own job is not someone else's")
            #expect(try medicd.records(kinds: [.incidentOpened]).filter { $0.target == "app.service" }.isEmpty)
        }
    }

    @Test("healthy before it serves: after a restart, verify waits for a probe of the new process to pass")
    func freshEvidence() async throws {
        try await withTestHost("fresh") { host in
            let port = freePort()
            // Listens two seconds after it starts, as a backend warming a cache would.
            let manager = try await installAndStart(host, [
                "slowweb.service": "[Service]\nExecStart=/bin/sh -c 'sleep 2; exec \(try Paths.backend()) --port \(port)'\n",
            ], start: ["slowweb.service"])
            defer { manager.bus.close() }
            #expect(await eventually(timeout: .seconds(5)) { (try? httpExchange(port: port, "GET /health HTTP/1.0\r\n\r\n", timeout: 1).status) == 200 })
            let medicd = try RunningMedicd.start(on: host, playbook: """
                playbook: web
                targets:
                  - unit: slowweb.service
                    probe: { http: "http://127.0.0.1:\(port)/health", every: 200ms, timeout: 150ms, failures: 2, successes: 1 }
                guards: { stabilise: 1s }
                on:
                  - when: crashed or unhealthy
                    do: [ restart, { verify: { healthy: within 10s } } ]
                """)
            defer { medicd.process.stop() }
            try await Task.sleep(for: .milliseconds(600))
            for pid in host.processes(ofUnit: "slowweb.service") { kill(pid, SIGKILL) }
            let closed = await eventually(timeout: .seconds(15)) {
                ((try? medicd.records(kinds: [.incidentClosed]).isEmpty == false) ?? false)
            }
            let serving = (try? httpExchange(port: port, "GET /health HTTP/1.0\r\n\r\n", timeout: 1).status) == 200
            let records = try medicd.records()
            #expect(closed, "\(records.map(\.message))")
            #expect(serving, "the incident closed while the backend did not answer")
            let restarted = try #require(records.first { $0.kind == "step-result" && $0.step == "restart" })
            let verified = try #require(records.first { $0.kind == "step-result" && $0.step == "verify" })
            let waited = millisecondsBetween(restarted, verified)
            print("fresh evidence: verify passed \(Int(waited)) ms after the restart (the backend listens 2 s after it starts)")
            #expect(waited >= 1500, "verify passed \(waited) ms after the restart, before the backend listened")
            let close = try #require(records.last { $0.kind == "incident-closed" })
            #expect(close.facts["outcome"] == "recovered")
            #expect((close.facts["time_to_recover_ms"].flatMap(Int.init) ?? 0) >= 1500)
        }
    }

    @Test("killed during a restart that then fails: the next medicd judges it when the unit fails, and calls a human")
    func interruptedPlanFails() async throws {
        try await withTestHost("interrupted") { host in
            // Once /run/broken exists, every start fails after a second (a bad config, say).
            let manager = try await installAndStart(host, ["frail.service": """
                [Service]
                ExecStartPre=/bin/sh -c 'sleep 1; [ ! -e /run/broken ]'
                ExecStart=/bin/sleep infinity
                """], start: ["frail.service"])
            defer { manager.bus.close() }
            let book = """
                playbook: frail
                targets: [ { unit: frail.service } ]
                guards: { stabilise: 300ms, backoff: { initial: 100ms }, rate: { restart: 2 in 10m } }
                on:
                  - when: crashed
                    do: [ { restart: { timeout: 10s } }, { verify: { healthy: within 5s } } ]
                """
            let first = try RunningMedicd.start(on: host, playbook: book)
            FileManager.default.createFile(atPath: host.directory + "/run/broken", contents: Data())
            kill(try #require(host.processes(ofUnit: "frail.service").first), SIGKILL)
            #expect(await eventually(timeout: .seconds(5)) {
                ((try? first.records(kinds: [.stepIntent]).contains { $0.step == "restart" }) ?? false)
            })
            first.process.signal(SIGKILL)
            _ = first.process.waitForExit(timeout: .seconds(5))
            let second = try RunningMedicd.start(on: host, playbook: book)
            defer { second.process.stop() }
            let called = await eventually(timeout: .seconds(20)) {
                ((try? second.records(kinds: [.stepIntent]).contains { $0.step == "notify" && $0.message.contains("journal:crit") }) ?? false)
            }
            let records = try second.records()
            #expect(called, "\(records.map(\.message))\n\(second.process.output)")
            let takenUp = try #require(records.first { $0.kind == "decision" && $0.message.hasPrefix("taking up incident") })
            let judged = try #require(records.first { $0.kind == "step-result" && $0.step == "verify" && $0.facts["result"] == "failed" }, "\(records.map { "\($0.kind) \($0.message)" }.joined(separator: "\n"))")
            #expect(millisecondsBetween(takenUp, judged) < 5000, "judged when the unit failed, not after a minute: \(judged.message)")
            #expect(records.filter { $0.kind == "incident-opened" }.count == 1, "the taken-up incident is the only one")
            #expect(records.contains { $0.kind == "escalation" && $0.message.contains("needs a human") })
        }
    }

    @Test("a unit whose ExecStartPre= fails is reported by the command that failed")
    func execStartPreNamed() async throws {
        try await withTestHost("startpre") { host in
            let manager = try await installAndStart(host, ["pre.service": """
                [Service]
                ExecStartPre=/bin/sh -c 'exit 4'
                ExecStart=/bin/sleep infinity
                """])
            defer { manager.bus.close() }
            let medicd = try RunningMedicd.start(on: host, playbook: playbook(unit: "pre.service", restarts: "1 in 10m"))
            defer { medicd.process.stop() }
            _ = try await manager.startUnit("pre.service")
            let seen = await eventually(timeout: .seconds(10)) {
                ((try? medicd.records(kinds: [.observation]).contains { $0.message.contains("ExecStartPre=") }) ?? false)
            }
            let observations = try medicd.records(kinds: [.observation]).map(\.message)
            #expect(seen, "\(observations)")
            #expect(observations.contains { $0.contains("ExecStartPre=/bin/sh -c exit 4 exited with status 4") }, "\(observations)")
            #expect(!observations.contains { $0.contains("main process 0") }, "\(observations)")
        }
    }
}

