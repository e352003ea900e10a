import Audit
import Foundation
import MedicCore
import Systemd
import TestHost
import Testing

@Suite("Heartbeats to medicd's socket, on a real systemd", .serialized, .timeLimit(.minutes(5)))
struct HeartbeatTests {
    @Test("a process that stops heartbeating is reported heartbeat-missed and restarted; another unit cannot beat for it")
    func missedHeartbeat() async throws {
        try await withTestHost("heartbeat") { host in
            let socket = "/run/medic-hb/heartbeat.sock"
            let manager = try await installAndStart(host, [
                // Beats every 100 ms for a second, then hangs (alive, silent).
                "hb.service": """
                    [Service]
                    Environment=NOTIFY_SOCKET=\(socket)
                    ExecStart=/bin/sh -c 'for i in 1 2 3 4 5 6 7 8 9 10; do systemd-notify WATCHDOG=1; sleep 0.1; done; exec sleep 1000'
                    """,
                // Another unit beats all along: its beats must not count for hb.service.
                "intruder.service": """
                    [Service]
                    Environment=NOTIFY_SOCKET=\(socket)
                    ExecStart=/bin/sh -c 'while :; do systemd-notify WATCHDOG=1; sleep 0.1; done'
                    """,
            ])
            defer { manager.bus.close() }
            let medicd = try RunningMedicd.start(on: host, playbook: """
                playbook: hung
                targets:
                  - unit: hb.service
                    heartbeat: { every: 200ms, missed: 3 }
                guards: { stabilise: 300ms }
                on:
                  - when: heartbeat-missed
                    do: [ restart, { verify: { healthy: within 5s } } ]
                """, arguments: ["--runtime", host.directory + "/run/medic-hb"])
            defer { medicd.process.stop() }
            _ = try await manager.startUnit("hb.service")
            _ = try await manager.startUnit("intruder.service")
            #expect(await eventually(timeout: .seconds(15)) { ((try? medicd.records(kinds: [.incidentClosed]).count) ?? 0) >= 1 },
                    "\((try? medicd.records().map(\.message)) ?? [])\n\(medicd.process.output)")
            let missed = try #require(try medicd.records(kinds: [.observation]).first { $0.message.hasPrefix("no heartbeat for") })
            print("heartbeat missed: reported \(missed.facts["late_ms"] ?? "?") ms after the 600 ms window ended")
            #expect(Int(missed.facts["late_ms"] ?? "1000")! < 100)
            #expect(try medicd.records(kinds: [.observation]).contains { $0.message == "heartbeats arrive again" })
            #expect(medicd.process.output.contains("dropped a heartbeat from intruder.service"))
        }
    }

    @Test("a unit whose watchdog pings stop is reported heartbeat-late before systemd's watchdog kills it")
    func watchdogLate() async throws {
        try await withTestHost("wdlate") { host in
            let manager = try await installAndStart(host, ["wd.service": """
                [Service]
                Type=notify
                NotifyAccess=all
                WatchdogSec=2s
                ExecStart=/bin/sh -c 'systemd-notify --ready; for i in 1 2 3 4 5; do systemd-notify WATCHDOG=1; sleep 0.1; done; exec sleep 1000'
                """])
            defer { manager.bus.close() }
            let medicd = try RunningMedicd.start(on: host, playbook: """
                playbook: early
                targets:
                  - unit: wd.service
                guards: { stabilise: 300ms }
                on:
                  - when: heartbeat-late
                    do: [ { collect: { journal: 50 } } ]
                  - when: crashed(watchdog)
                    do: [ restart ]
                """)
            defer { medicd.process.stop() }
            _ = try await manager.startUnit("wd.service")
            #expect(await eventually(timeout: .seconds(10)) { ((try? medicd.records(kinds: [.observation]).contains { $0.facts["Result"] == "watchdog" }) ?? false) },
                    "\((try? medicd.records().map(\.message)) ?? [])")
            let observations = try medicd.records(kinds: [.observation])
            let late = try #require(observations.first { $0.message.hasPrefix("watchdog ping late") })
            let killed = try #require(observations.first { $0.facts["Result"] == "watchdog" })
            #expect(late.seq! < killed.seq!)
            print("heartbeat-late warned \(Double(killed.wallMicroseconds - late.wallMicroseconds) / 1000) ms before systemd's watchdog kill")
        }
    }
}
