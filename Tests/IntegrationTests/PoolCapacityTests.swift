import Actions
import Foundation
import MedicCore
import TestHost
import Testing

@Suite("The capacity guard counts what serves", .serialized, .timeLimit(.minutes(2)))
struct PoolCapacityTests {
    @Test("a server the balancer's own checks already keep out is taken out without counting against capacity; the last one serving is kept")
    func downIsNotCapacity() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // s1 and s2 have nothing listening: HAProxy's checks mark them DOWN; s3 serves.
        let (backends, ports) = try startBackends(1, in: directory)
        defer { for backend in backends { _ = backend.stop() } }
        let haproxy = try HAProxy(directory: directory + "/haproxy", backendPorts: [freePort(), freePort()] + ports, checks: HAProxy.Checks(parameters: "inter 100ms fall 1 rise 1"))
        defer { haproxy.stop() }
        #expect(await eventually(timeout: .seconds(5)) {
            let status = (try? haproxy.serverStatus()) ?? [:]
            return status["s1"]?.hasPrefix("DOWN") == true && status["s2"]?.hasPrefix("DOWN") == true && status["s3"]?.hasPrefix("UP") == true
        })
        let member = { (server: String) in PoolMembership(haproxy: haproxy.socket, backend: "app", server: server, capacity: PoolCapacity(share: 0.5, count: 1)) }
        let action = PoolAction(pool: Balancers())
        let down = await action.run(.maint, member: member("s1"), timeout: .seconds(2))
        #expect(down.succeeded && down.details["capacity"]?.contains("already keep it out") == true, "\(down)")
        let last = await action.run(.maint, member: member("s3"), timeout: .seconds(2))
        #expect(!last.succeeded && last.summary.contains("would leave 0 of 3 servers in service"), "\(last)")
        #expect(try haproxy.serverStatus()["s3"]?.hasPrefix("UP") == true)
    }
}
