import Audit
import Foundation
import MedicCore
import Systemd
import TestHost
import Testing

@Suite("Journal patterns, on a real systemd and journald", .timeLimit(.minutes(5)))
struct JournalWatchTests {
    @Test("a unit that logs 'Too many open files' is matched and its playbook runs")
    func tooManyOpenFiles() async throws {
        try await withTestHost("journal") { host in
            let manager = try await installAndStart(host, ["fds.service": """
                [Service]
                ExecStart=/bin/sh -c 'sleep 0.5; while :; do echo "accept(): Too many open files" >&2; sleep 0.05; done'
                """])
            defer { manager.bus.close() }
            let medicd = try RunningMedicd.start(on: host, playbook: """
                playbook: fds
                targets:
                  - unit: fds.service
                guards: { stabilise: 300ms, rate: { restart: 1 in 10m } }
                on:
                  - when: journal "Too many open files"
                    do: [ restart ]
                """, arguments: ["--journal", host.journalDirectory])
            defer { medicd.process.stop() }
            _ = try await manager.startUnit("fds.service")
            #expect(await eventually { ((try? medicd.records(kinds: [.stepIntent]).contains { $0.step == "restart" }) ?? false) },
                    "\((try? medicd.records().map(\.message)) ?? [])\n\(medicd.process.output)")
            let match = try #require(try medicd.records(kinds: [.observation]).first { $0.facts["pattern"] == "Too many open files" })
            #expect(match.facts["MESSAGE"] == "accept(): Too many open files")
            // The flood is reported at most once a second, not once a line.
            try await Task.sleep(for: .seconds(1))
            let matches = try medicd.records(kinds: [.observation]).filter { $0.facts["pattern"] != nil }
            #expect(matches.count <= 3)
        }
    }
}
