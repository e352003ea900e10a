import Audit
import Foundation
import MedicCore
import Systemd
import TestHost
import Testing

@Suite("Resource limits end to end, on a real systemd", .timeLimit(.minutes(5)))
struct ResourceIntegrationTests {
    @Test("a unit that leaks memory past its limit, held for its duration, is restarted, and the limit clears")
    func memoryLeak() async throws {
        try await withTestHost("leak") { host in
            let manager = try await installAndStart(host, ["leak.service": """
                [Service]
                ExecStart=\(try Paths.backend()) --port \(freePort()) --leak-mb-per-s 100
                """])
            defer { manager.bus.close() }
            let medicd = try RunningMedicd.start(on: host, playbook: """
                playbook: leak
                targets:
                  - unit: leak.service
                guards: { stabilise: 200ms, rate: { restart: 1 in 10m } }
                on:
                  - when: memory > 60MiB for 300ms
                    do: [ restart, { verify: { healthy: within 5s } } ]
                """, arguments: ["--sample-interval", "100ms", "--cgroup-root", host.cgroupDirectory])
            defer { medicd.process.stop() }
            _ = try await manager.startUnit("leak.service")
            let exceeded = await eventually(timeout: .seconds(10)) {
                ((try? medicd.records(kinds: [.observation]).contains { $0.message.hasPrefix("limit held: memory > 60MiB for 300ms") }) ?? false)
            }
            #expect(exceeded, "\((try? medicd.records().map(\.message)) ?? [])\n\(medicd.process.output)")
            let held = try #require(try medicd.records(kinds: [.observation]).first { $0.message.hasPrefix("limit held") })
            #expect(held.facts["sources"]?.contains("memory=proc") == true, "inside a test host there is no memory controller: \(held.facts)")
            #expect(Double(held.facts["memory_bytes"] ?? "0")! > 60 * 1_048_576)
            #expect(try medicd.records(kinds: [.stepIntent]).contains { $0.step == "restart" })
            #expect(await eventually { ((try? medicd.records(kinds: [.observation]).contains { $0.message.hasPrefix("limit cleared") }) ?? false) })
            let statm = (try? String(contentsOfFile: "/proc/\(medicd.process.pid)/statm", encoding: .utf8))?.split(separator: " ") ?? []
            if statm.count > 1, let pages = Double(statm[1]) {
                print(String(format: "medicd resident memory while sampling and healing: %.1f MiB", pages * 4096 / 1_048_576))
            }
        }
    }
}
