import Audit
import Foundation
import MedicCore
import Systemd
import TestHost
import Testing

@Suite("Crash → detected → restarted → audited, on a real systemd", .serialized, .timeLimit(.minutes(5)))
struct CrashRecoveryTests {
    @Test("kill -9 of a backend's main process: medicd records the crash, restarts the unit, audits observation → intent → result")
    func killNine() async throws {
        try await withTestHost("kill9") { host in
            let port = freePort()
            // Five restarts in a few seconds would hit systemd's own start limit (5 in 10s).
            try host.installUnit("web.service", try backendUnit(port: port, unitSection: "StartLimitIntervalSec=0"))
            let manager = SystemdManager(bus: try SystemBus(address: host.busAddress))
            defer { manager.bus.close() }
            try await manager.reload()
            #expect(try await manager.startUnit("web.service") == .finished("done"))
            let medicd = try RunningMedicd.start(on: host, playbook: playbook(unit: "web.service", verify: "200ms", restarts: "100 in 10m", flap: "1000 in 5m"))
            defer { medicd.process.stop() }

            var detect: [Double] = [], recover: [Double] = []
            var events = manager.bus.events.makeAsyncIterator()
            for round in 1...10 {
                let pids = host.processes(ofUnit: "web.service")
                try #require(pids.count == 1)
                let seen = try medicd.records().count
                let killedAt = ContinuousClock.now
                let killedWall = Timestamp.now()
                kill(pids[0], SIGKILL)
                // Follow the unit's own signals until it is active again with a new main process.
                var sawFailure = false
                var activeAgain = false
                while !activeAgain, let event = await events.next() {
                    guard case .unitChanged("web.service", let change) = event else { continue }
                    if change.activeState == "failed" || change.activeState == "activating" { sawFailure = true }
                    if sawFailure, change.activeState == "active" { activeAgain = true }
                }
                recover.append(milliseconds(since: killedAt))
                #expect(activeAgain, "round \(round): web.service not active again")
                #expect(await eventually { ((try? medicd.records(kinds: [.incidentClosed]).count) ?? 0) == round })
                let records = try medicd.records().dropFirst(seen)
                let crash = try #require(records.first { $0.kind == "observation" && $0.message.contains("killed by signal 9") })
                detect.append(Double(crash.wallMicroseconds - killedWall.wallMicroseconds) / 1000)
                let incident = try #require(records.first { $0.kind == "incident-opened" })
                let intent = try #require(records.first { $0.kind == "step-intent" && $0.step == "restart" })
                let result = try #require(records.first { $0.kind == "step-result" && $0.step == "restart" })
                let closed = try #require(records.first { $0.kind == "incident-closed" })
                #expect(crash.seq! < incident.seq! && incident.seq! < intent.seq! && intent.seq! < result.seq! && result.seq! < closed.seq!)
                #expect(crash.facts["Result"] == "signal")
                #expect(crash.facts["ExecMainStatus"] == "9")
                #expect(result.facts["result"] == "succeeded")
                #expect(result.facts["MainPID"] != crash.facts["ExecMainPID"])
                #expect(closed.facts["outcome"] == "recovered")
                #expect(incident.incident != nil && [crash, intent, result, closed].dropFirst().allSatisfy { $0.incident == incident.incident })
                #expect(try await manager.state(of: "web.service").activeState == "active")
            }
            // The same kill against systemd's own Restart=always, RestartSec=0, for comparison,
            // after the same idle time as medicd's rounds (an idle VM wakes up more slowly:
            // systemd's start job takes ~2.5 ms back to back, 7–20 ms after 300 ms of idling).
            try host.installUnit("baseline.service", try backendUnit(
                port: freePort(), unitSection: "StartLimitIntervalSec=0", serviceSection: "Restart=always\nRestartSec=0"))
            try await manager.reload()
            _ = try await manager.startUnit("baseline.service")
            var baseline: [Double] = []
            for _ in 1...10 {
                try await Task.sleep(for: .seconds(1))
                let pids = host.processes(ofUnit: "baseline.service")
                try #require(pids.count == 1)
                let killedAt = ContinuousClock.now
                kill(pids[0], SIGKILL)
                var restarting = false
                while let event = await events.next() {
                    guard case .unitChanged("baseline.service", let change) = event else { continue }
                    if change.activeState == "activating" || change.activeState == "failed" { restarting = true }
                    if restarting, change.activeState == "active" { break }
                }
                baseline.append(milliseconds(since: killedAt))
            }
            print("kill -9 → observation recorded (ms): \(summary(detect))")
            print("kill -9 → unit active again through medicd (ms): \(summary(recover))")
            print("kill -9 → unit active again through systemd's Restart=always, RestartSec=0 (ms): \(summary(baseline))")
        }
    }

    @Test("a backend that exits with status 1 is restarted")
    func exitStatusOne() async throws {
        try await withTestHost("exit1") { host in
            let port = freePort()
            // Exits with status 1 after 300 ms the first time only (a marker in the host's /run
            // says it ran).
            let marker = "/run/medic-exit1-ran"
            try host.installUnit("api.service", """
                [Service]
                ExecStart=/bin/sh -c 'if [ -e \(marker) ]; then exec \(try Paths.backend()) --port \(port); fi; touch \(marker); sleep 0.3; exit 1'
                """)
            let manager = SystemdManager(bus: try SystemBus(address: host.busAddress))
            defer { manager.bus.close() }
            try await manager.reload()
            let medicd = try RunningMedicd.start(on: host, playbook: playbook(unit: "api.service", verify: "500ms"))
            defer { medicd.process.stop() }
            _ = try await manager.startUnit("api.service")
            #expect(await eventually { ((try? medicd.records(kinds: [.incidentClosed]).count) ?? 0) == 1 })
            let crash = try #require(try medicd.records(kinds: [.observation]).first { $0.message.contains("exited with status 1") })
            #expect(crash.facts["Result"] == "exit-code")
            let closed = try #require(try medicd.records(kinds: [.incidentClosed]).first)
            #expect(closed.facts["outcome"] == "recovered")
            #expect(closed.facts["time_to_detect_ms"] != nil, "systemd's exit timestamp gives the time to detect")
            #expect(try await manager.state(of: "api.service").activeState == "active")
        }
    }

    @Test("a backend that keeps failing ends in a refused restart, not an endless loop")
    func keepsFailing() async throws {
        try await withTestHost("flapping") { host in
            try host.installUnit("flaky.service", """
                [Service]
                ExecStart=\(try Paths.backend()) --port \(freePort()) --exit-after-ms 400 --exit-code 3
                """)
            let manager = SystemdManager(bus: try SystemBus(address: host.busAddress))
            defer { manager.bus.close() }
            try await manager.reload()
            let medicd = try RunningMedicd.start(on: host, playbook: playbook(unit: "flaky.service", verify: "100ms"))
            defer { medicd.process.stop() }
            _ = try await manager.startUnit("flaky.service")
            let refused = await eventually(timeout: .seconds(20)) {
                ((try? medicd.records(kinds: [.guardStopped]).contains { $0.facts["result"] == "refused" }) ?? false)
            }
            #expect(refused, "no refused restart recorded:\n\(medicd.process.output)")
            // Nothing more happens after the refusal: three restarts, a human called, the unit
            // left failed until the slow retry (every 10 minutes).
            try await Task.sleep(for: .seconds(1))
            let restarts = try medicd.records(kinds: [.stepResult]).filter { $0.step == "restart" }
            #expect(restarts.filter { $0.facts["result"] == "succeeded" }.count == 3)
            #expect(try medicd.records(kinds: [.guardStopped]).count == 1)
            #expect(try await manager.state(of: "flaky.service").activeState == "failed")
            let escalation = try #require(try medicd.records(kinds: [.escalation]).last)
            #expect(escalation.message.contains("needs a human"))
            #expect(escalation.message.contains("trying again every 10m"))
        }
    }
}
