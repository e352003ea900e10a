import Foundation
import Systemd
import TestHost
import Testing

@Suite("Test host harness", .timeLimit(.minutes(5)))
struct TestHostTests {
    @Test("boots a real systemd whose bus is reachable from outside, and tears it down by PID")
    func bootAndTeardown() async throws {
        let host = try TestHost(name: "boot")
        let pid = try #require(host.systemdPID)
        #expect(kill(pid, 0) == 0)
        #expect(try SystemdManager.systemState(at: host.busAddress) == "running")
        let cgroup = host.cgroupDirectory
        let directory = host.directory
        host.destroy()
        #expect(kill(pid, 0) == -1)
        #expect(!FileManager.default.fileExists(atPath: cgroup))
        #expect(!FileManager.default.fileExists(atPath: directory))
    }

    @Test("runs several hosts at once, each with its own units")
    func severalHosts() async throws {
        async let a = Task { try TestHost(name: "multi-a", binds: [Paths.packageRoot]) }.value
        async let b = Task { try TestHost(name: "multi-b", binds: [Paths.packageRoot]) }.value
        let (hostA, hostB) = try await (a, b)
        defer { hostA.destroy(); hostB.destroy() }
        try hostA.installUnit("only-a.service", try backendUnit(port: freePort()))
        let busA = try SystemBus(address: hostA.busAddress)
        let busB = try SystemBus(address: hostB.busAddress)
        defer { busA.close(); busB.close() }
        let managerA = SystemdManager(bus: busA), managerB = SystemdManager(bus: busB)
        try await managerA.reload()
        try await managerB.reload()
        #expect(try await managerA.startUnit("only-a.service") == .finished("done"))
        #expect(try await managerA.state(of: "only-a.service").activeState == "active")
        #expect(try await managerB.state(of: "only-a.service").activeState == "inactive")
        #expect(hostA.processes(ofUnit: "only-a.service").count == 1)
        #expect(hostB.processes(ofUnit: "only-a.service").isEmpty)
    }

    @Test("a host that reboots is powered on again, with its disk and persistent units kept")
    func rebootAndPowerOn() async throws {
        try await withTestHost("reboot") { host in
            try host.installUnit("kept.service", try backendUnit(port: freePort()), persistent: true)
            try host.installUnit("lost.service", try backendUnit(port: freePort()))
            let bus = try SystemBus(address: host.busAddress)
            let manager = SystemdManager(bus: bus)
            try await manager.reload()
            let firstBoot = try await manager.managerProperty("UserspaceTimestampMonotonic")
            // The connection drops as the host goes down, so the job never reports back.
            _ = try? await manager.startUnit("reboot.target", mode: "replace-irreversibly", timeout: .seconds(2))
            try host.waitForBoot(2)
            bus.close()
            let again = SystemdManager(bus: try SystemBus(address: host.busAddress))
            defer { again.bus.close() }
            #expect(try await again.managerProperty("UserspaceTimestampMonotonic") != firstBoot)
            #expect(try await again.state(of: "kept.service").loadState == "loaded")
            #expect(try await again.state(of: "lost.service").loadState == "not-found")
        }
    }
}
