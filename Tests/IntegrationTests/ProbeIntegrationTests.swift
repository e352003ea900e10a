import Audit
import Foundation
import MedicCore
import Systemd
import TestHost
import Testing

/// A backend that answers its probe with what /run/shop-status says (200 when it is absent; a
/// restart removes it).
private func shopUnit(port: Int) throws -> String {
    """
    [Service]
    ExecStartPre=/bin/rm -f /run/shop-status
    ExecStart=\(try Paths.backend()) --port \(port) --status-file /run/shop-status
    """
}

/// shop.service probed every 200 ms over HTTP, restarted and verified when unhealthy.
private func shopPlaybook(port: Int) -> String {
    """
    playbook: shop
    targets:
      - unit: shop.service
        probe: { http: "http://127.0.0.1:\(port)/health", every: 200ms, timeout: 150ms, failures: 2, successes: 1 }
    guards: { stabilise: 300ms, backoff: { initial: 100ms } }
    on:
      - when: unhealthy
        do: [ restart, { verify: { healthy: within 5s } } ]
    """
}

@Suite("Probes end to end, on a real systemd", .serialized, .timeLimit(.minutes(5)))
struct ProbeIntegrationTests {
    @Test("a backend that starts answering 503 while running is found unhealthy, restarted, and verified healthy by its probe")
    func http503() async throws {
        try await withTestHost("probe503") { host in
            let port = freePort()
            let manager = try await installAndStart(host, ["shop.service": try shopUnit(port: port)], start: ["shop.service"])
            defer { manager.bus.close() }
            let medicd = try RunningMedicd.start(on: host, playbook: shopPlaybook(port: port))
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

    @Test("a reload starts a probe it adds and stops one it removes: added, a 503 is healed; removed, a 503 is ignored")
    func reloadAddsAndRemovesProbe() async throws {
        try await withTestHost("probe-reload") { host in
            let port = freePort()
            let manager = try await installAndStart(host, ["shop.service": try shopUnit(port: port)], start: ["shop.service"])
            defer { manager.bus.close() }
            let withoutProbe = """
                playbook: shop
                targets:
                  - unit: shop.service
                guards: { stabilise: 300ms, backoff: { initial: 100ms } }
                on:
                  - when: crashed
                    do: [ restart ]
                """
            let withProbe = shopPlaybook(port: port)
            let medicd = try RunningMedicd.start(on: host, playbook: withoutProbe)
            defer { medicd.process.stop() }
            let file = (medicd.state as NSString).deletingLastPathComponent + "/playbooks/test.yaml"
            let status = host.directory + "/run/shop-status"

            try withProbe.write(toFile: file, atomically: true, encoding: .utf8)
            let added = try medic(["reload", "--socket", medicd.socket])
            #expect(added.status == 0 && added.output.contains("detectors: started probe shop.service"), "\(added.output)")
            #expect(await eventually { ((try? medicd.records(kinds: [.observation]).contains { $0.message.hasPrefix("probe passing") }) ?? false) })
            try "503".write(toFile: status, atomically: true, encoding: .utf8)
            #expect(await eventually { ((try? medicd.records(kinds: [.incidentClosed]).count) ?? 0) == 1 }, "\((try? medicd.records().map(\.message)) ?? [])")
            #expect(try medicd.records(kinds: [.incidentClosed]).first?.facts["outcome"] == "recovered")

            try withoutProbe.write(toFile: file, atomically: true, encoding: .utf8)
            let removed = try medic(["reload", "--socket", medicd.socket])
            #expect(removed.status == 0 && removed.output.contains("detectors: stopped probe shop.service"), "\(removed.output)")
            let before = try medicd.audit.lastSeq()
            try "503".write(toFile: status, atomically: true, encoding: .utf8)
            try await Task.sleep(for: .seconds(2))
            let after = try medicd.records().filter { ($0.seq ?? 0) > before }
            #expect(!after.contains { $0.message.hasPrefix("probe failing") || $0.kind == "incident-opened" }, "\(after.map(\.message))")
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
