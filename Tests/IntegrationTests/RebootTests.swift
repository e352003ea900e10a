import Audit
import Foundation
import Glibc
import MedicCore
import Systemd
import TestHost
import Testing

@Suite("Reboot: over the bus, after a durable intent, at most once in its window", .serialized, .timeLimit(.minutes(5)))
struct RebootTests {
    /// Reboot the host when app.service crashes, then check it is healthy.
    static let playbook = """
        playbook: reboot
        targets:
          - unit: app.service
        guards: { stabilise: 300ms }
        on:
          - when: crashed
            do:
              - reboot
              - verify: { healthy: within 20s }
        """

    @Test("a playbook reboots a test host; medicd records the reboot and the new boot, closes the incident, and refuses a second reboot in the window")
    func rebootOnce() async throws {
        try await withTestHost("reboot") { host in
            // Enabled in the host's boot target, so it runs again after the reboot.
            try host.installUnit("app.service", try backendUnit(port: freePort()), persistent: true)
            let wants = host.unitsDirectory + "/medic-testhost.target.wants"
            try FileManager.default.createDirectory(atPath: wants, withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(atPath: wants + "/app.service", withDestinationPath: "../app.service")
            let manager = try await installAndStart(host, [:], start: ["app.service"])
            manager.bus.close()
            let medicd = try RunningMedicd.start(on: host, playbook: Self.playbook)
            defer { medicd.process.stop() }
            kill(try #require(host.processes(ofUnit: "app.service").first), SIGKILL)
            try host.waitForBoot(2, timeout: .seconds(30))
            let closed = await eventually(timeout: .seconds(30)) {
                ((try? medicd.records(kinds: [.incidentClosed]).contains { $0.facts["outcome"] == "recovered" }) ?? false)
            }
            var records = try medicd.records()
            #expect(closed, "\(records.map(\.message))\n\(medicd.process.output)")
            let intent = try #require(records.first { $0.kind == "step-intent" && $0.step == "reboot" })
            let result = try #require(records.first { $0.kind == "step-result" && $0.step == "reboot" })
            #expect(intent.seq! < result.seq!)
            #expect(result.facts["result"] == "succeeded", "\(result.message)")
            #expect(result.facts["boot_before"] != nil && result.facts["boot_before"] != result.facts["boot_after"])
            print("reboot: \(result.message)")
            #expect(records.contains { $0.kind == "daemon" && $0.message.hasPrefix("the host booted again") })
            // The page: the reboot as a bar from its intent to its result across the boot.
            let page = try checkReportPage(state: medicd.state, incident: try #require(intent.incident))
            #expect(page.stepMarks.contains(try #require(result.seq)))

            // A second crash inside the window: the reboot is refused, counted across the reboot.
            kill(try #require(host.processes(ofUnit: "app.service").first), SIGKILL)
            let refused = await eventually(timeout: .seconds(10)) {
                ((try? medicd.records(kinds: [.guardStopped]).contains { $0.step == "reboot" }) ?? false)
            }
            records = try medicd.records()
            #expect(refused, "\(records.map(\.message))")
            let stop = try #require(records.first { $0.kind == "guard-stopped" && $0.step == "reboot" })
            print("second reboot: \(stop.message)")
            #expect(stop.message.contains("1 reboots of this host in the last 6h already"))
            #expect(records.contains { $0.kind == "escalation" && $0.incident == stop.incident })
            #expect(host.boots == 2)
        }
    }

    @Test("a medicd killed (-9) in its reboot step: the next boot's medicd finishes the record and closes the incident when the target is healthy")
    func rebootFollowedUpByNextMedicd() async throws {
        try await withTestHost("reboot-next") { host in
            try host.installUnit("app.service", try backendUnit(port: freePort()), persistent: true)
            let manager = try await installAndStart(host, [:], start: ["app.service"])
            defer { manager.bus.close() }
            let playbook = Self.playbook
            // The first medicd writes the intent; it is stopped before it sees the new boot, as a
            // medicd on the host itself is. The host is powered off instead of rebooted, then on.
            let first = try RunningMedicd.start(on: host, playbook: playbook)
            host.powerOffOnNextReboot()
            kill(try #require(host.processes(ofUnit: "app.service").first), SIGKILL)
            #expect(await eventually(timeout: .seconds(10)) {
                ((try? first.records(kinds: [.stepIntent]).contains { $0.step == "reboot" }) ?? false)
            })
            #expect(host.waitForPowerOff(timeout: .seconds(20)))
            // kill -9 in the middle of the reboot step: it is waiting for the new boot.
            first.process.signal(SIGKILL)
            _ = first.process.waitForExit(timeout: .seconds(5))
            #expect(try first.records(kinds: [.stepResult]).contains { $0.step == "reboot" } == false)
            try host.powerOn()
            let restarted = try await installAndStart(host, [:], start: ["app.service"])
            restarted.bus.close()
            let second = try RunningMedicd.start(on: host, playbook: playbook)
            defer { second.process.stop() }
            let closed = await eventually(timeout: .seconds(15)) {
                ((try? second.records(kinds: [.incidentClosed]).contains { $0.facts["outcome"] == "recovered" }) ?? false)
            }
            let records = try second.records()
            #expect(closed, "\(records.map(\.message))")
            #expect(records.contains { $0.kind == "daemon" && $0.message.hasPrefix("the host booted since medicd last ran") })
            let result = try #require(records.first { $0.kind == "step-result" && $0.step == "reboot" })
            #expect(result.facts["result"] == "succeeded" && result.message.contains("the host rebooted"))
            #expect(records.filter { $0.kind == "step-intent" && $0.step == "reboot" }.count == 1, "the reboot was asked for again")
            #expect(records.filter { $0.kind == "incident-opened" }.count == 1, "one incident per (target, rule), across boots")
        }
    }
}
