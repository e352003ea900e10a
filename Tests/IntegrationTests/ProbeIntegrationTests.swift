import Audit
import Foundation
import MedicCore
import Systemd
import TestHost
import Testing

@Suite("Probes end to end, on a real systemd", .serialized, .timeLimit(.minutes(5)))
struct ProbeIntegrationTests {
    @Test("a backend that starts answering 503 while running is found unhealthy, restarted, and verified healthy by its probe")
    func http503() async throws {
        try await withTestHost("probe503") { host in
            let port = freePort()
            let manager = try await installAndStart(host, ["shop.service": """
                [Service]
                ExecStartPre=/bin/rm -f /run/shop-status
                ExecStart=\(try Paths.backend()) --port \(port) --status-file /run/shop-status
                """], start: ["shop.service"])
            defer { manager.bus.close() }
            let medicd = try RunningMedicd.start(on: host, playbook: """
                playbook: shop
                targets:
                  - unit: shop.service
                    probe: { http: "http://127.0.0.1:\(port)/health", every: 200ms, timeout: 150ms, failures: 2, successes: 1 }
                guards: { stabilise: 300ms, backoff: { initial: 100ms } }
                on:
                  - when: unhealthy
                    do: [ restart, { verify: { healthy: within 5s } } ]
                """)
            defer { medicd.process.stop() }
            #expect(await eventually { ((try? medicd.records(kinds: [.observation]).contains { $0.message.hasPrefix("probe passing") }) ?? false) })
            let flipped = Timestamp.now()
            try "503".write(toFile: host.directory + "/run/shop-status", atomically: true, encoding: .utf8)
            #expect(await eventually { ((try? medicd.records(kinds: [.incidentClosed]).count) ?? 0) == 1 }, "\((try? medicd.records().map(\.message)) ?? [])")
            let unhealthy = try #require(try medicd.records(kinds: [.observation]).first { $0.message.hasPrefix("probe failing: HTTP 503") })
            let detectMs = Double(unhealthy.wallMicroseconds - flipped.wallMicroseconds) / 1000
            print(String(format: "503 → unhealthy observation: %.0f ms (window: 2 failures × 200 ms)", detectMs))
            #expect(detectMs < 2000)
            #expect(unhealthy.facts["host.pressure.cpu"] != nil || !FileManager.default.fileExists(atPath: "/proc/pressure/cpu"))
            #expect(try medicd.records(kinds: [.incidentClosed]).first?.facts["outcome"] == "recovered")
            #expect(try medicd.records(kinds: [.observation]).last { $0.message.hasPrefix("probe passing") } != nil)
        }
    }

    @Test("a TCP port that closes is found unhealthy")
    func tcpClosed() async throws {
        try await withTestHost("probetcp") { host in
            let port = freePort()
            let manager = try await installAndStart(host, ["tcp.service": try backendUnit(port: port)], start: ["tcp.service"])
            defer { manager.bus.close() }
            let medicd = try RunningMedicd.start(on: host, playbook: """
                playbook: tcp
                targets:
                  - unit: tcp.service
                    probe: { tcp: "127.0.0.1:\(port)", every: 200ms, timeout: 150ms, failures: 2 }
                guards: { stabilise: 300ms }
                on:
                  - when: unhealthy
                    do: [ start, { verify: { healthy: within 5s } } ]
                """)
            defer { medicd.process.stop() }
            #expect(await eventually { ((try? medicd.records(kinds: [.observation]).contains { $0.message.hasPrefix("probe passing") }) ?? false) })
            // Stopped by an operator, the port closes: the probe notices, and the plan starts it.
            _ = try await manager.stopUnit("tcp.service")
            #expect(await eventually { ((try? medicd.records(kinds: [.observation]).contains { $0.message.hasPrefix("probe failing") }) ?? false) })
            #expect(await eventually { ((try? medicd.records(kinds: [.incidentClosed]).count) ?? 0) == 1 }, "\((try? medicd.records().map(\.message)) ?? [])")
            #expect(try await manager.state(of: "tcp.service").activeState == "active")
        }
    }
}
