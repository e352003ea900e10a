import Foundation
import Systemd
import TestHost
import Testing

@Suite("libsystemd from Swift, against a real systemd", .timeLimit(.minutes(5)))
struct SystemdBusTests {
    @Test("GetUnit refuses a unit that is not loaded, naming systemd's error; LoadUnit loads it")
    func getAndLoadUnit() async throws {
        try await withTestHost("getunit") { host in
            try host.installUnit("lazy.service", try backendUnit(port: freePort()))
            let manager = SystemdManager(bus: try SystemBus(address: host.busAddress))
            defer { manager.bus.close() }
            try await manager.reload()
            do {
                _ = try await manager.getUnit("lazy.service")
                Issue.record("GetUnit found a unit that was never loaded")
            } catch let error as SystemdError {
                #expect(error.busErrorName == "org.freedesktop.systemd1.NoSuchUnit")
                #expect(error.errnoName == "ENOENT")
                #expect(error.description.hasPrefix("sd_bus_call(org.freedesktop.systemd1.Manager.GetUnit) failed: ENOENT"))
            }
            let path = try await manager.loadUnit("lazy.service")
            #expect(path == "/org/freedesktop/systemd1/unit/lazy_2eservice")
            // An inactive unit nothing refers to is unloaded again soon; a running one stays.
            _ = try await manager.startUnit("lazy.service")
            #expect(try await manager.getUnit("lazy.service") == path)
        }
    }

    @Test("start, stop and restart report their jobs' results; properties follow")
    func jobs() async throws {
        try await withTestHost("jobs") { host in
            try host.installUnit("job.service", try backendUnit(port: freePort()))
            try host.installUnit("broken.service", "[Service]\nType=exec\nExecStart=/nonexistent/binary\n")
            let manager = SystemdManager(bus: try SystemBus(address: host.busAddress))
            defer { manager.bus.close() }
            try await manager.reload()
            #expect(try await manager.startUnit("job.service") == .finished("done"))
            let first = try await manager.state(of: "job.service")
            #expect(first.activeState == "active" && first.subState == "running")
            #expect(first.mainPID != nil && first.mainPID != 0)
            #expect(first.invocationID?.count == 32)
            #expect(try await manager.restartUnit("job.service") == .finished("done"))
            let second = try await manager.state(of: "job.service")
            #expect(second.mainPID != first.mainPID)
            #expect(second.invocationID != first.invocationID)
            #expect(try await manager.stopUnit("job.service") == .finished("done"))
            #expect(try await manager.state(of: "job.service").activeState == "inactive")
            // A Type=exec unit whose binary does not exist fails to start; its job says so.
            #expect(try await manager.startUnit("broken.service") == .finished("failed"))
            let broken = try await manager.state(of: "broken.service")
            #expect(broken.activeState == "failed")
            #expect(broken.result == "exit-code")
            #expect(broken.execMainStatus == 203)
        }
    }

    @Test("waiting for a state times out with nil, and resolves on the signal")
    func waitForState() async throws {
        try await withTestHost("wait") { host in
            let manager = try await installAndStart(host, ["w.service": try backendUnit(port: freePort())], start: ["w.service"])
            defer { manager.bus.close() }
            #expect(try await manager.waitForActiveState(of: "w.service", timeout: .milliseconds(100)) { $0 == "failed" } == nil)
            async let failed = manager.waitForActiveState(of: "w.service", timeout: .seconds(5)) { $0 == "failed" }
            try await Task.sleep(for: .milliseconds(50))
            try await manager.killUnit("w.service", signal: SIGKILL)
            #expect(try await failed == "failed")
        }
    }

    @Test("reading hundreds of units at once: each as it reads alone, a unit not loaded is loaded, an unknown one is not-found, a bad name fails naming it")
    func batchRead() async throws {
        try await withTestHost("batch") { host in
            try host.installUnit("idle@.service", "[Service]\nExecStart=/bin/sleep infinity\n")
            try host.installUnit("lazy.service", try backendUnit(port: freePort()))
            try host.runInside(["systemctl", "daemon-reload"])
            // More than the window of calls in flight, so the window refills.
            let running = (1...200).map { "idle@\($0).service" }
            try host.runInside(["systemctl", "start"] + running)
            let manager = SystemdManager(bus: try SystemBus(address: host.busAddress))
            defer { manager.bus.close() }
            let states = try await manager.states(of: running + ["lazy.service", "missing.service"])
            #expect(states.count == 202)
            #expect(running.allSatisfy { states[$0]?.activeState == "active" && states[$0]?.subState == "running" })
            #expect(Set(running.compactMap { states[$0]?.mainPID }).count == 200)
            #expect(states["idle@7.service"]?.controlGroup == "/system.slice/system-idle.slice/idle@7.service")
            let alone = try await manager.state(of: "idle@7.service")
            #expect(states["idle@7.service"] == alone)
            #expect(states["lazy.service"]?.loadState == "loaded" && states["lazy.service"]?.activeState == "inactive")
            #expect(states["missing.service"]?.loadState == "not-found")
            do {
                _ = try await manager.states(of: ["idle@1.service", "no such unit"])
                Issue.record("a unit name systemd refuses was read")
            } catch let error as SystemdError {
                #expect(error.call == "GetAll(no such unit)")
                #expect(error.busErrorName != nil)
            }
        }
    }
}
