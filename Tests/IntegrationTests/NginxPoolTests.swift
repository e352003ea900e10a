import Actions
import Foundation
import Glibc
import MedicCore
import TestHost
import Testing

@Suite("nginx as a pool: the upstream file Medic keeps, checked and reloaded, against a real nginx", .serialized, .timeLimit(.minutes(3)))
struct NginxPoolTests {
    @Test("maint marks the server down and nginx stops sending to it once its new workers are up; ready unmarks it; the capacity guard keeps the last one in")
    func pool() async throws {
        try await withNginx(backends: 2) { nginx in try await checkPool(nginx) }
    }

    private func checkPool(_ nginx: Nginx) async throws {
        let servers = try lines(nginx)
        let web1 = membership(nginx, server: servers[0], capacity: PoolCapacity(share: 0, count: 1))
        var web2 = web1
        web2.server = servers[1]
        let action = PoolAction(pool: Balancers())
        let out = await action.run(.maint, member: web1, timeout: .seconds(5))
        #expect(out.succeeded && out.summary.contains("app/\(web1.server) taken out of service"), "\(out)")
        #expect(try String(contentsOfFile: nginx.upstreams, encoding: .utf8).contains("server \(web1.server) max_fails=1 fail_timeout=1s down; # medic: down"))
        // The step is done when nginx's new workers serve: no request reaches web1 from then on.
        let answers = try (0..<20).map { _ in try nginx.get().body }
        #expect(answers.allSatisfy { $0.contains("web2") }, "\(answers)")
        let refused = await action.run(.maint, member: web2, timeout: .seconds(5))
        #expect(!refused.succeeded && refused.summary.contains("at least 1 must stay"), "\(refused)")
        let back = await action.run(.ready, member: web1, timeout: .seconds(5))
        #expect(back.succeeded && back.summary.contains("returned to service"), "\(back)")
        #expect(try String(contentsOfFile: nginx.upstreams, encoding: .utf8) == servers.map { "server \($0) max_fails=1 fail_timeout=1s;" }.joined(separator: "\n") + "\n")
        let after = try (0..<20).map { _ in try nginx.get().body }
        #expect(after.contains { $0.contains("web1") } && after.contains { $0.contains("web2") }, "\(after)")
    }

    @Test("a change nginx -t refuses puts the previous file back and fails with nginx's words; nginx keeps serving; a person's 'down' is never undone")
    func refusals() async throws {
        try await withNginx(backends: 2) { nginx in try await checkRefusals(nginx) }
    }

    private func checkRefusals(_ nginx: Nginx) async throws {
        let servers = try lines(nginx)
        // A person left a broken line in the file that nginx has not loaded yet.
        let broken = try String(contentsOfFile: nginx.upstreams, encoding: .utf8) + "server 127.0.0.1:9 weight=heavy;\n"
        try broken.write(toFile: nginx.upstreams, atomically: true, encoding: .utf8)
        let web1 = membership(nginx, server: servers[0])
        let failed = await PoolAction(pool: Balancers()).run(.maint, member: web1, timeout: .seconds(5))
        #expect(!failed.succeeded && failed.summary.contains("nginx -t refused the configuration") && failed.summary.contains("weight"), "\(failed)")
        #expect(try String(contentsOfFile: nginx.upstreams, encoding: .utf8) == broken, "the file is back as it was")
        #expect(try nginx.get().status == 200)

        let person = servers.map { "server \($0) down;" }.joined(separator: "\n") + "\n"
        try person.write(toFile: nginx.upstreams, atomically: true, encoding: .utf8)
        let pool = NginxPool()
        await #expect(throws: PoolError.self) { try await pool.set(web1, to: .ready) }
        let kept = await PoolAction(pool: Balancers(), held: [PoolAction.key(web1)]).run(.ready, member: web1, timeout: .seconds(5))
        #expect(!kept.succeeded && kept.summary.contains("down by a person's hand"), "\(kept)")
        #expect(try String(contentsOfFile: nginx.upstreams, encoding: .utf8) == person)
    }

    @Test("two changes to one upstream file at once are serialised: neither mark is lost")
    func concurrent() async throws {
        try await withNginx(backends: 3) { nginx in
            let servers = try lines(nginx)
            let pool = NginxPool()
            async let first: Void = pool.set(membership(nginx, server: servers[0]), to: .maint)
            async let second: Void = pool.set(membership(nginx, server: servers[1]), to: .maint)
            _ = try await (first, second)
            let marked = try await pool.servers(of: membership(nginx, server: servers[0])).filter { $0.admin == .maint }.map(\.name)
            #expect(marked == [servers[0], servers[1]])
        }
    }

    private func membership(_ nginx: Nginx, server: String, capacity: PoolCapacity = PoolCapacity()) -> PoolMembership {
        PoolMembership(balancer: .nginx(upstreamFile: nginx.upstreams, config: nginx.config, pidFile: nginx.pidFile), backend: "app", server: server, capacity: capacity)
    }

    /// The addresses of the upstream file's servers, in order.
    private func lines(_ nginx: Nginx) throws -> [String] {
        try String(contentsOfFile: nginx.upstreams, encoding: .utf8).split(separator: "\n").map { String($0.split(separator: " ")[1]) }
    }

    /// Backends web1… and nginx in front of them; all stopped by PID.
    private func withNginx(backends count: Int, _ body: (Nginx) async throws -> Void) async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (backends, ports) = try startBackends(count, in: directory)
        defer { for backend in backends { _ = backend.stop() } }
        let nginx = try Nginx(directory: directory + "/nginx", backendPorts: ports)
        defer { nginx.stop() }
        try await nginx.ready()
        try await body(nginx)
    }
}
