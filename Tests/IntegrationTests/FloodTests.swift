import Audit
import Foundation
import MedicCore
import Posix
import Systemd
import TestHost
import Testing

/// Every listener medicd has, flooded alone and all together while a crash is healed: the
/// control socket (slow clients), the metrics port (idle connections), the heartbeat socket (a
/// datagram flood from another unit). Prints the figures side by side.
@Suite("Every listener flooded", .serialized, .timeLimit(.minutes(5)))
struct FloodTests {
    /// One flood: how to start it, and how to stop it.
    private struct Flood {
        var name: String
        var start: () async throws -> Void
        var stop: () async throws -> Void
    }

    /// What one phase measured.
    private struct Figures {
        var name: String
        var healedMs: Double
        var cpuPercent: Double
        var residentMiB: Double
        var descriptors: Int
    }

    @Test("control socket, metrics port and heartbeat socket flooded, alone and together: a crash healed at its usual speed, no false heartbeat-missed, descriptors and memory bounded")
    func everyListenerFlooded() async throws {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        limit.rlim_cur = max(limit.rlim_cur, min(limit.rlim_max, 4096))
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        try await withTestHost("floods") { host in
            let runtime = "/run/medic-flood"
            let beats = "\(try Backend.loadGenerator()) --datagrams \(runtime)/heartbeat.sock --duration-ms 3600000"
            let manager = try await installAndStart(host, [
                "web.service": try backendUnit(port: freePort(), unitSection: "StartLimitIntervalSec=0"),
                // A steady heartbeat every 100 ms, from one long-lived process.
                "hb.service": "[Service]\nExecStart=\(beats) --every-ms 100\n",
                // Another unit sending as fast as the socket takes it.
                "flood.service": "[Service]\nExecStart=\(beats)\n",
            ], start: ["web.service", "hb.service"])
            defer { manager.bus.close() }
            let medicd = try RunningMedicd.start(on: host, playbook: """
                playbook: floods
                targets:
                  - unit: web.service
                  - unit: hb.service
                    heartbeat: { every: 200ms, missed: 3 }
                guards:
                  rate: { restart: 50 in 10m }
                  backoff: { initial: 100ms }
                  stabilise: 300ms
                  flap: 200 in 5m
                on:
                  - when: crashed
                    do: [ restart, { verify: { healthy: within 5s } } ]
                  - when: heartbeat-missed
                    do: [ restart ]
                """, arguments: ["--runtime", host.directory + runtime])
            defer { medicd.process.stop() }

            var held: [Socket] = []
            defer { for socket in held { socket.close() } }
            let control = Flood(name: "control: 200 slow clients", start: {
                for _ in 0..<200 {
                    let socket = try unixConnection(path: medicd.socket)
                    held.append(socket)
                    // Past the 32 served at once, medicd closes the connection: the send may fail.
                    try? socket.send(#"{"command": "sta"#)
                }
            }, stop: {})
            let metrics = Flood(name: "metrics: 1,000 idle connections", start: {
                for _ in 0..<1000 { held.append(try loopbackConnection(port: medicd.metricsPort)) }
            }, stop: {})
            let heartbeat = Flood(name: "heartbeat: datagram flood", start: {
                _ = try await manager.startUnit("flood.service")
            }, stop: {
                _ = try await manager.stopUnit("flood.service")
            })
            let all = Flood(name: "all three at once", start: {
                for flood in [control, metrics, heartbeat] { try await flood.start() }
            }, stop: {
                try await heartbeat.stop()
            })
            let none = Flood(name: "no flood", start: {}, stop: {})

            var table: [Figures] = []
            for flood in [none, control, metrics, heartbeat, all] {
                try await flood.start()
                try await Task.sleep(for: .seconds(1))
                let before = try #require(ProcessCost(pid: medicd.process.pid))
                let began = ContinuousClock.now
                let restarted = { ((try? medicd.records(unit: "web.service", kinds: [.stepResult])) ?? []).filter { $0.step == "restart" && $0.facts["result"] == "succeeded" }.count }
                let restarts = restarted()
                let closed = try medicd.records(unit: "web.service", kinds: [.incidentClosed]).count
                kill(try #require(host.processes(ofUnit: "web.service").first), SIGKILL)
                let healed = await eventually(timeout: .seconds(30)) { restarted() > restarts }
                let took = milliseconds(since: began)
                #expect(healed, "\(flood.name): not healed")
                #expect(await eventually(timeout: .seconds(20)) { ((try? medicd.records(unit: "web.service", kinds: [.incidentClosed]).count) ?? 0) > closed })
                let seconds = Double((ContinuousClock.now - began).components.attoseconds) / 1e18 + Double((ContinuousClock.now - began).components.seconds)
                let after = try #require(ProcessCost(pid: medicd.process.pid), "\(flood.name): medicd is gone\n\(medicd.process.output)")
                table.append(Figures(
                    name: flood.name, healedMs: took, cpuPercent: (after.cpuSeconds - before.cpuSeconds) / seconds * 100,
                    residentMiB: after.residentMiB, descriptors: max(before.descriptors, after.descriptors)))
                try await flood.stop()
                for socket in held { socket.close() }
                held.removeAll()
            }

            print("""
                every listener flooded while web.service is killed (kill -9 → restarted), medicd's figures:
                \("flood".padding(toLength: 34, withPad: " ", startingAt: 0))  healed ms  CPU %  RSS MiB  descriptors
                """ + "\n" + table.map { row in
                    row.name.padding(toLength: 34, withPad: " ", startingAt: 0)
                        + String(format: "  %9.0f  %5.1f  %7.1f  %11d", row.healedMs, row.cpuPercent, row.residentMiB, row.descriptors)
                }.joined(separator: "\n"))

            let baseline = try #require(table.first)
            for row in table.dropFirst() {
                #expect(row.healedMs < max(2000, baseline.healedMs * 4), "\(row.name): healed in \(row.healedMs) ms, \(baseline.healedMs) ms without a flood")
                #expect(row.descriptors < 300, "\(row.name): \(row.descriptors) descriptors")
                #expect(row.residentMiB < baseline.residentMiB + 64, "\(row.name): \(row.residentMiB) MiB")
            }
            // hb.service beat all along: a flood must never make it look silent.
            let heartbeats = try medicd.records(unit: "hb.service", kinds: [.observation])
            #expect(heartbeats.filter { $0.facts["observed"] == "heartbeat-missed" }.isEmpty, "\(heartbeats.map(\.message))")
            #expect(medicd.process.output.contains("datagrams shed") || medicd.process.output.contains("dropped a heartbeat from flood.service"))
            // Afterwards every listener answers again.
            #expect(await eventually(timeout: .seconds(15)) { ((try? medic(["status", "--socket", medicd.socket]))?.status ?? 1) == 0 })
            #expect(await eventually(timeout: .seconds(15)) { (try? httpExchange(port: medicd.metricsPort, "GET /metrics HTTP/1.0\r\n\r\n", timeout: 1).status) == 200 })
            #expect(medicd.process.isRunning)
        }
    }
}
