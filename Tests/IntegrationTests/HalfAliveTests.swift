import Audit
import Foundation
import MedicCore
import Posix
import Systemd
import TestHost
import Testing

/// medicd never lingers half alive: a service that ends is restarted in place, or medicd exits
/// non-zero for systemd to restart it, and the watchdog is pinged only while all of it runs.
@Suite("Never half alive", .serialized, .timeLimit(.minutes(5)))
struct HalfAliveTests {
    @Test("with its standard output broken (a journald that refused the stream), medicd starts, says READY=1 and goes on healing")
    func standardOutputBroken() async throws {
        try await withTestHost("no-stdout") { host in
            let manager = try await installAndStart(host, ["web.service": try backendUnit(port: freePort())], start: ["web.service"])
            defer { manager.bus.close() }
            // Standard output is a pipe nobody reads: every write fails with EPIPE. (perl is in
            // Debian's essential set; its exec keeps the process, so the PID stays medicd's.)
            let medicd = try RunningMedicd.start(
                on: host, playbook: playbook(unit: "web.service", verify: "0s"),
                launcher: ["/usr/bin/perl", "-e", "pipe(my $r, my $w) or die; close $r; open(STDOUT, '>&', $w) or die; close $w; exec @ARGV or die", "--"])
            defer { medicd.process.stop() }
            kill(try #require(host.processes(ofUnit: "web.service").first), SIGKILL)
            let healed = await eventually(timeout: .seconds(15)) {
                ((try? medicd.records(kinds: [.stepResult]).contains { $0.step == "restart" && $0.facts["result"] == "succeeded" }) ?? false)
            }
            #expect(healed)
            #expect(medicd.process.isRunning)
        }
    }

    @Test("with its descriptors used up by floods, medicd goes on healing, and its listeners accept again once the floods end")
    func descriptorsExhausted() async throws {
        try await withTestHost("no-fds") { host in
            let manager = try await installAndStart(host, ["web.service": try backendUnit(port: freePort())], start: ["web.service"])
            defer { manager.bus.close() }
            // A hard limit of 64 descriptors, which medicd cannot raise.
            let medicd = try RunningMedicd.start(
                on: host, playbook: playbook(unit: "web.service", verify: "0s"), launcher: ["/usr/bin/prlimit", "--nofile=64:64", "--"])
            defer { medicd.process.stop() }
            var held: [Socket] = []
            defer { for socket in held { socket.close() } }
            for _ in 0..<100 { if let socket = try? unixConnection(path: medicd.socket) { held.append(socket) } }
            for _ in 0..<200 { if let socket = try? loopbackConnection(port: medicd.metricsPort) { held.append(socket) } }
            try await Task.sleep(for: .milliseconds(500))
            let descriptors = ProcessCost(pid: medicd.process.pid)?.descriptors ?? 0
            kill(try #require(host.processes(ofUnit: "web.service").first), SIGKILL)
            let healed = await eventually(timeout: .seconds(15)) {
                ((try? medicd.records(kinds: [.stepResult]).contains { $0.step == "restart" && $0.facts["result"] == "succeeded" }) ?? false)
            }
            #expect(healed, "medicd at \(descriptors) of 64 descriptors did not heal: \(medicd.process.output)")
            for socket in held { socket.close() }
            held.removeAll()
            #expect(await eventually(timeout: .seconds(20)) { ((try? medic(["status", "--socket", medicd.socket]))?.status ?? 1) == 0 }, "\(medicd.process.output)")
            #expect(await eventually(timeout: .seconds(20)) { (try? httpExchange(port: medicd.metricsPort, "GET /metrics HTTP/1.0\r\n\r\n", timeout: 1).status) == 200 })
            #expect(medicd.process.isRunning)
        }
    }

    @Test("a notify socket nobody reads (a PID 1 that is stuck) does not stop medicd: STATUS= lines wait on a thread of their own")
    func unreadNotifySocket() async throws {
        try await withTestHost("notify-full") { host in
            let manager = try await installAndStart(host, ["web.service": try backendUnit(port: freePort(), unitSection: "StartLimitIntervalSec=0")], start: ["web.service"])
            defer { manager.bus.close() }
            // medicd.notify is read only for READY=1: its queue (10 datagrams) fills at once.
            let medicd = try RunningMedicd.start(on: host, playbook: playbook(unit: "web.service", verify: "0s", restarts: "100 in 10m", flap: "1000 in 5m"))
            defer { medicd.process.stop() }
            for round in 1...6 {
                kill(try #require(host.processes(ofUnit: "web.service").first), SIGKILL)
                #expect(await eventually { ((try? medicd.records(kinds: [.incidentClosed]).count) ?? 0) == round }, "round \(round): not healed")
            }
            #expect(try medic(["status", "--socket", medicd.socket]).status == 0)
        }
    }

    @Test("exec steps that run for long on several targets at once never hold up the healing of another")
    func longExecStepsDoNotBlock() async throws {
        try await withTestHost("long-exec") { host in
            let slow = (1...4).map { "slow\($0).service" }
            var units = ["web.service": try backendUnit(port: freePort())]
            for unit in slow { units[unit] = "[Service]\nExecStart=/bin/sleep 1000\n" }
            let manager = try await installAndStart(host, units, start: ["web.service"] + slow)
            defer { manager.bus.close() }
            let medicd = try RunningMedicd.start(on: host, playbook: playbook(unit: "web.service", verify: "0s"), arguments: [])
            defer { medicd.process.stop() }
            // Each slow unit's crash runs a script that takes 10 s, four at once (two playbooks
            // of two units, so that four crashes are no storm).
            for (index, pair) in [Array(slow.prefix(2)), Array(slow.suffix(2))].enumerated() {
                try """
                    playbook: slow\(index)
                    targets: [ \(pair.map { "{ unit: \($0) }" }.joined(separator: ", ")) ]
                    on:
                      - when: crashed
                        do: [ { exec: { command: [/bin/sleep, "10"], timeout: 1m } } ]
                    """.write(toFile: medicd.work + "/playbooks/slow\(index).yaml", atomically: true, encoding: .utf8)
            }
            #expect(try medic(["reload", "--socket", medicd.socket]).status == 0)
            for unit in slow { kill(try #require(host.processes(ofUnit: unit).first), SIGKILL) }
            #expect(await eventually { ((try? medicd.records(kinds: [.stepIntent]).filter { $0.step == "exec" }.count) ?? 0) == 4 })
            let killed = ContinuousClock.now
            kill(try #require(host.processes(ofUnit: "web.service").first), SIGKILL)
            let healed = await eventually(timeout: .seconds(20)) {
                ((try? medicd.records(unit: "web.service", kinds: [.stepResult]).contains { $0.step == "restart" && $0.facts["result"] == "succeeded" }) ?? false)
            }
            let took = milliseconds(since: killed)
            print("4 exec steps of 10 s running: kill -9 → restarted in \(Int(took)) ms")
            // At its usual speed (tens of ms); with the scripts waited for on the shared pool it took ~1 s.
            #expect(healed && took < 500, "\(took) ms")
            #expect(try medic(["status", "--socket", medicd.socket]).status == 0)
        }
    }

    @Test("a detector that keeps failing is restarted in place, stops the watchdog pings while down, then ends medicd with status 1")
    func failingDetector() async throws {
        try await withTestHost("failing") { host in
            let manager = try await installAndStart(host, ["hb.service": "[Service]\nExecStart=/bin/sleep 1000\n"], start: ["hb.service"])
            defer { manager.bus.close() }
            // The heartbeat socket cannot be made: its directory would be under a file.
            let medicd = try RunningMedicd.start(on: host, playbook: """
                playbook: hb
                targets:
                  - unit: hb.service
                    heartbeat: { every: 1s, missed: 3 }
                on:
                  - when: heartbeat-missed
                    do: [ restart ]
                """, arguments: ["--runtime", "/dev/null/medic"], environment: ["WATCHDOG_USEC": "400000"])
            defer { medicd.process.stop() }
            #expect(await eventually { ((try? medicd.records(kinds: [.daemon]).contains { $0.message.hasPrefix("heartbeats failed") && $0.message.hasSuffix("restarting it in 1 s") }) ?? false) })
            _ = medicd.notify.received()
            try await Task.sleep(for: .seconds(1))
            #expect(!medicd.notify.received().contains { $0.contains("WATCHDOG=1") }, "pinged systemd's watchdog with a detector down")
            #expect(medicd.process.waitForExit(timeout: .seconds(45)) == 1, "\(medicd.process.output)")
            #expect(try medicd.records(kinds: [.daemon]).contains { $0.message.contains("medicd exits so that systemd restarts it") })
        }
    }
}
